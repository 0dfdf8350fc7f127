"""What a task's Signzy calls came to: one summary line in the task log, and Airflow metrics.

Metrics go through Airflow's own stats API (``Stats`` from the common compat provider: Airflow 3.3's
``airflow.sdk.observability.stats``, 3.2's ``airflow.sdk.observability.stats.Stats``, 3.0/3.1's
``airflow.stats.Stats``), so whatever the deployment set up (StatsD, Datadog, OpenTelemetry) receives them:

- ``signzy.calls``: calls settled, tagged ``method``, ``endpoint`` (a template, never a filled path) and
  ``outcome`` (``succeeded``, ``replayed``, ``refused``, ``unknown``, ``not_sent``; ``failed`` for a
  failed call that is safe to send again, such as a GET);
- ``signzy.paid_calls``: paid (non-idempotent) calls this try sent that Signzy acted on or may have
  (``succeeded`` plus ``unknown``): what Signzy may bill; tagged ``method``, ``endpoint``, ``outcome``;
- ``signzy.retries``: attempts retried by the retry policy, tagged ``method``, ``endpoint``, ``reason``
  (a status code or an error kind);
- ``signzy.rate_limited``: answers that were a rate limit (429, or Signzy's rate-limit 403).

No ids and no personal data in names or tags: a path the provider was not given as a template is
reduced to one by :func:`endpoint_template`. Counts are kept in the task and sent in bulk when the hook
closes (and by a batch at each progress line), not one network packet per call.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from typing import Any

CALLS = "signzy.calls"
PAID_CALLS = "signzy.paid_calls"
RETRIES = "signzy.retries"
RATE_LIMITED = "signzy.rate_limited"

SUCCEEDED, REPLAYED, REFUSED, UNKNOWN, NOT_SENT, FAILED = (
    "succeeded",
    "replayed",
    "refused",
    "unknown",
    "not_sent",
    "failed",
)

#: A path segment kept as it is: a plain lower-case word (``identities``), an API version (``v2``), or a
#: template placeholder (``{patron_id}``). Anything else (ids, PANs, e-mail addresses) becomes ``{value}``.
_PLAIN_SEGMENT = re.compile(r"[a-z][a-z_-]{0,39}|v\d{1,2}|\{\w+\}")


def endpoint_template(path: str) -> str:
    """``/api/v2/patrons/5f1c.../identities`` -> ``/api/v2/patrons/{value}/identities``; no query string."""
    segments = path.split("?", 1)[0].split("/")
    return "/".join(s if not s or _PLAIN_SEGMENT.fullmatch(s) else "{value}" for s in segments)


class CallAccount:
    """Counts of one hook's calls (thread-safe): the summary line's totals and the metrics not yet sent."""

    def __init__(self, log: Any) -> None:
        self.log = log
        self._lock = threading.Lock()
        self._pending: Counter[tuple[str, tuple[tuple[str, str], ...]]] = Counter()
        #: Paid calls by outcome since the hook opened (the summary line).
        self.paid: Counter[str] = Counter()
        self.retries = 0
        self.rate_limited = 0

    def settled(self, method: str, endpoint: str, outcome: str, *, paid: bool, count: int = 1) -> None:
        """``count`` calls to ``endpoint`` (a template) ended with ``outcome``."""
        if count <= 0:
            return
        tags = (("endpoint", endpoint), ("method", method), ("outcome", outcome))
        with self._lock:
            self._pending[(CALLS, tags)] += count
            if paid:
                self.paid[outcome] += count
                if outcome in (SUCCEEDED, UNKNOWN):
                    self._pending[(PAID_CALLS, tags)] += count

    def retried(self, method: str, path: str, exc: BaseException | None) -> None:
        reason = str(getattr(exc, "status", None) or type(exc).__name__)
        tags = (("endpoint", endpoint_template(path)), ("method", method), ("reason", reason))
        with self._lock:
            self.retries += 1
            self._pending[(RETRIES, tags)] += 1

    def rate_limited_once(self, method: str, path: str) -> None:
        tags = (("endpoint", endpoint_template(path)), ("method", method))
        with self._lock:
            self.rate_limited += 1
            self._pending[(RATE_LIMITED, tags)] += 1

    def flush(self) -> None:
        """Send the counts kept so far through Airflow's stats API (never fails the task)."""
        with self._lock:
            pending, self._pending = self._pending, Counter()
        if not pending:
            return
        try:
            from airflow.providers.common.compat.sdk import Stats

            for (name, tags), count in pending.items():
                Stats.incr(name, count, tags=dict(tags))
        except Exception as exc:  # metrics are a report, never a reason to fail a paid call's task
            self.log.debug("Could not send Signzy metrics: %s", exc)

    def summary(self) -> str | None:
        """The task's one line about its paid calls, or None when it made none."""
        with self._lock:
            paid = Counter(self.paid)
        if not paid:
            return None
        line = (
            f"Signzy paid calls: sent {paid[SUCCEEDED]}, replayed {paid[REPLAYED]}, refused {paid[REFUSED]}, "
            f"unknown {paid[UNKNOWN]}"
        )
        if paid[NOT_SENT]:
            line += f", not sent {paid[NOT_SENT]}"
        return (
            line + f" (Signzy may bill {paid[SUCCEEDED] + paid[UNKNOWN]}: the sent ones and the unknown ones; "
            "replayed answers came from the call ledger and were not paid again)"
        )

    def close(self) -> None:
        """Log the summary line (once) and send what metrics are left."""
        line = self.summary()
        if line is not None:
            self.log.info("%s", line)
            with self._lock:
                self.paid.clear()
        self.flush()
