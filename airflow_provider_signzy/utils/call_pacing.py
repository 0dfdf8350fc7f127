"""Pacing the calls of many threads: a client-side limit, and one shared back-off on rate limits.

Every thread asks :meth:`CallPacer.before_call` before an attempt and reports how it went. The batch
slows down as a whole when Signzy answers with a rate limit (429, or its rate-limit 403), instead of every
thread hammering on its own. The first limit holds every thread for its ``Retry-After`` and starts pacing
at the rate that was getting through. A later one (at most one a second counts) sets the pace to 95 % of
the calls that got through in the last second, which is then about the limit, and at least 15 % lower.
Between limits the pace climbs: by half every half second until a limit is met while paced, then by a
tenth back up to that 95 %, where it stays; after 30 quiet seconds it tries a little higher.
``max_calls_per_second`` caps the pace throughout. The rate-limited call itself is retried by the hook's
retry policy, after its ``Retry-After``.

The pacer is also the batch's gate. :meth:`CallPacer.close` (a circuit breaker that tripped, a SIGTERM, a
ledger write that failed) wakes every thread that waits for its turn or sleeps in a retry's back-off,
and they raise :class:`CallsStopped` instead of sending. The circuit breaker counts calls that could
not reach Signzy or got a 5xx (after their retries): ``breaker`` of them in a row close the gate.
"""

from __future__ import annotations

import threading
import time
from collections import deque

CUT = 0.85  # the most a later rate limit leaves of the pace
PLATEAU = 0.95  # share of the rate that got through when the last limit was met: the pace to keep
STEP_SECONDS = 0.5
EPISODE_SECONDS = 1.0  # rate limits this close together are one episode: one cut
REPROBE_AFTER = 30.0


class CallsStopped(Exception):
    """The gate is closed: this attempt was not sent (the reason says why)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CallPacer:
    """Thread-safe pacing for one batch of calls, its circuit breaker and its stop.

    :param max_calls_per_second: a client-side cap (None: no cap until Signzy answers with a rate limit).
    :param breaker: consecutive calls that could not reach Signzy or got a 5xx after which the gate closes
        (None: never).
    """

    def __init__(self, max_calls_per_second: float | None = None, *, breaker: int | None = None) -> None:
        if max_calls_per_second is not None and max_calls_per_second <= 0:
            raise ValueError("max_calls_per_second must be positive")
        if breaker is not None and breaker < 1:
            raise ValueError("the circuit breaker needs at least 1 call")
        self.breaker = breaker
        self.unreachable_in_a_row = 0
        #: Why the gate closed (None: open).
        self.stopped: str | None = None
        self.cap = max_calls_per_second
        self.rate = max_calls_per_second  # calls per second now; None = unpaced
        self.ceiling: float | None = None  # calls that got through in the second before the last limit
        self.rate_limited = 0
        self.attempts = 0
        self._clock = time.monotonic
        self._lock = threading.Condition()
        self._next_slot = 0.0
        self._resume_at = 0.0
        self._last_change = self._clock()
        self._last_cut = float("-inf")
        self._successes: deque[float] = deque()

    def before_call(self) -> None:
        """Wait for this call's turn: after any shared back-off, and spaced by the pace.

        Raises :class:`CallsStopped` once the gate is closed, also while waiting.
        """
        with self._lock:
            self.attempts += 1
            while True:  # a waiting thread looks again when the pace changes: it may have to wait longer
                if self.stopped is not None:
                    raise CallsStopped(self.stopped)
                now = self._clock()
                self._climb(now)
                start = max(now, self._resume_at, self._next_slot)
                if start <= now:
                    if self.rate is not None:
                        self._next_slot = now + 1.0 / self.rate
                    return
                self._lock.wait(start - now)

    def sleep(self, seconds: float) -> None:
        """A retry's back-off: returns after ``seconds``, or raises :class:`CallsStopped` when the gate closes."""
        with self._lock:
            deadline = self._clock() + seconds
            while self.stopped is None:
                left = deadline - self._clock()
                if left <= 0:
                    return
                self._lock.wait(left)
            raise CallsStopped(self.stopped)

    def close(self, reason: str) -> None:
        """Close the gate: no attempt starts after this; waiting threads wake and raise. The first reason stays."""
        with self._lock:
            if self.stopped is None:
                self.stopped = reason
            self._lock.notify_all()

    @property
    def closed(self) -> bool:
        return self.stopped is not None

    def call_done(self, *, unreachable: bool) -> None:
        """A call ended (after its retries): ``unreachable`` when it could not reach Signzy or got a 5xx."""
        with self._lock:
            self.unreachable_in_a_row = self.unreachable_in_a_row + 1 if unreachable else 0
            if self.breaker is not None and self.unreachable_in_a_row >= self.breaker and self.stopped is None:
                self.stopped = (
                    f"Signzy was unreachable: {self.unreachable_in_a_row} calls in a row could not connect or got "
                    "a 5xx answer, after their retries (the circuit breaker)"
                )
                self._lock.notify_all()

    def on_success(self) -> None:
        with self._lock:
            now = self._clock()
            self._successes.append(now)
            while self._successes and self._successes[0] < now - 1.0:
                self._successes.popleft()

    def on_rate_limited(self, retry_after: float | None) -> None:
        """Slow every thread down: see the module's description."""
        with self._lock:
            now = self._clock()
            self.rate_limited += 1
            if now - self._last_cut < EPISODE_SECONDS:
                return
            self._last_cut = self._last_change = now
            got_through = float(sum(1 for t in self._successes if t >= now - 1.0))
            if self.rate is None:  # the first limit: hold everyone, then pace at what got through
                self._resume_at = now + (retry_after if retry_after else 1.0)
                self.rate = self._capped(max(1.0, got_through))
            else:  # paced for a while: what got through in the last second is about the limit
                self.ceiling = max(1.0, got_through)
                self.rate = self._capped(max(1.0, min(self.rate * CUT, PLATEAU * self.ceiling)))
            self._next_slot = max(self._next_slot, now + 1.0 / self.rate)
            self._lock.notify_all()

    def _climb(self, now: float) -> None:
        if self.rate is None or now < self._resume_at or now - self._last_change < STEP_SECONDS:
            return
        if self.ceiling is None:
            raised = self.rate * 1.5
        elif self.rate < PLATEAU * self.ceiling:
            raised = min(self.rate * 1.1, PLATEAU * self.ceiling)
        elif now - self._last_cut > REPROBE_AFTER:
            self.ceiling *= 1.05
            raised = self.rate
        else:
            return
        self.rate = self._capped(raised)
        self._last_change = now

    def _capped(self, rate: float) -> float:
        return min(rate, self.cap) if self.cap is not None else rate
