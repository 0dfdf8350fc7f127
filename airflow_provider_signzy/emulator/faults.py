"""Fault injection: what the emulator answers instead of (or besides) the real thing.

A rule matches requests by method and path (``fnmatch`` pattern) and holds a queue of faults, one per
matching request, in order; ``null`` in the queue lets one request through. Every matching rule counts
each request; the first rule with a fault for it answers. ``every: N`` applies the
rule's single fault to every N-th matching request instead, ``times`` times at most. A fault is a dict:

- ``status`` (+ optional ``code``, ``message``, ``body``, ``content_type``, ``retry_after``): answer
  this instead of acting. 502 and 504 come as nginx HTML pages unless ``body`` is given.
- ``delay``: seconds to wait before handling the request (it is then handled normally).
- ``drop``: ``"after"`` acts on the request, then closes the connection with no answer;
  ``"before"`` closes it without acting.
- ``hold``: seconds; acts on the request, then holds the answer that long before sending it (a paid
  call in flight: the charge is made, the client still waits). ``GET /_emulator/state`` lists the
  answers held now (``held``: route, the client's port, seconds held) and counts those sent
  (``held_answers_sent``) and those whose client was gone first (``held_answers_undelivered``: it
  timed out or its process was killed; the emulator notices within 0.1 s, stops holding and sends
  nothing). Not combined with ``status`` or ``drop``.
"""

from __future__ import annotations

import fnmatch
import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FaultRule:
    path: str
    method: str | None = None
    queue: list[dict[str, Any] | None] = field(default_factory=list)
    every: int | None = None
    times: int | None = None
    fault: dict[str, Any] | None = None
    seen: int = 0

    @classmethod
    def from_json(cls, spec: dict[str, Any]) -> FaultRule:
        if not isinstance(spec.get("path"), str):
            raise ValueError("a fault rule needs a 'path' pattern")
        method = spec.get("method")
        every = spec.get("every")
        if every is not None:
            if not isinstance(spec.get("fault"), dict) or int(every) < 1:
                raise ValueError("'every' needs a positive number and a 'fault'")
            every = int(every)
        queue = spec.get("faults", [])
        if not isinstance(queue, list) or not all(f is None or isinstance(f, dict) for f in queue):
            raise ValueError("'faults' must be a list of fault objects (or null)")
        for fault in [*queue, spec.get("fault")]:
            if fault:
                _check_fault(fault)
        return cls(
            path=spec["path"],
            method=method.upper() if isinstance(method, str) else None,
            queue=list(queue),
            every=every,
            times=spec.get("times"),
            fault=spec.get("fault"),
        )

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and fnmatch.fnmatchcase(path, self.path)

    def exhausted(self) -> bool:
        if self.every is not None:
            return self.times is not None and self.times <= 0
        return not self.queue

    def take(self) -> dict[str, Any] | None:
        self.seen += 1
        if self.every is not None:
            if self.seen % self.every or (self.times is not None and self.times <= 0):
                return None
            if self.times is not None:
                self.times -= 1
            return self.fault
        return self.queue.pop(0)


def _check_fault(fault: dict[str, Any]) -> None:
    unknown = set(fault) - {
        "status",
        "code",
        "message",
        "body",
        "content_type",
        "retry_after",
        "delay",
        "drop",
        "hold",
    }
    if unknown:
        raise ValueError(f"unknown fault keys: {sorted(unknown)}")
    if fault.get("drop") not in (None, "before", "after"):
        raise ValueError("'drop' is 'before' or 'after'")
    if "hold" in fault:
        hold = fault["hold"]
        if isinstance(hold, bool) or not isinstance(hold, int | float) or hold <= 0:
            raise ValueError("'hold' is a positive number of seconds")
        if fault.get("status") or fault.get("drop"):
            raise ValueError("'hold' acts, then answers late: it does not combine with 'status' or 'drop'")


def fault_kind(fault: dict[str, Any]) -> str:
    """A short name for counting served faults: ``status-502``, ``drop-after``, ``hold``, ``delay``."""
    if fault.get("drop"):
        return f"drop-{fault['drop']}"
    if fault.get("status"):
        return f"status-{fault['status']}"
    if fault.get("hold"):
        return "hold"
    return "delay"


class FaultPlan:
    """The rules in force, consulted once per API request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []

    def add(self, spec: dict[str, Any]) -> None:
        rule = FaultRule.from_json(spec)
        with self._lock:
            self._rules.append(rule)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def take(self, method: str, path: str) -> dict[str, Any] | None:
        if not self._rules:  # fast path: no lock when nothing is planned
            return None
        # Every matching rule counts the request (so "every N-th" means every N-th request it matches);
        # the first rule whose turn it is answers.
        chosen = None
        with self._lock:
            for rule in self._rules:
                if not rule.exhausted() and rule.matches(method, path):
                    fault = rule.take()
                    if chosen is None and fault is not None:
                        chosen = fault
        return chosen

    def describe(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {
                    "path": r.path,
                    "method": r.method,
                    "pending": len(r.queue),
                    "every": r.every,
                    "times": r.times,
                }
                for r in self._rules
                if not r.exhausted()
            ]
