"""Many Signzy calls in one task: concurrent, paced, resumable, and each paid call sent at most once.

:class:`SignzyBatch` is the engine of :class:`~airflow_provider_signzy.operators.batch.SignzyBatchOperator`
and works as well from a TaskFlow task. One hook (thread-safe: a session per thread, one re-login for all)
and one token serve every call; a :class:`~airflow_provider_signzy.utils.call_pacing.CallPacer` bounds the rate,
makes every thread back off together when Signzy answers with a rate limit, and is the batch's gate: a
circuit breaker that trips after ``circuit_breaker`` calls in a row could not reach Signzy (or got a
5xx), a SIGTERM, or a ledger write that failed closes it, and no call starts after that. Non-idempotent
calls go through the :class:`~airflow_provider_signzy.ledger.BatchLedger` (one scope per batch run): a
retried task replays the answers of calls that succeeded, does not send calls whose outcome is unknown,
and sends the rest.
"""

from __future__ import annotations

from airflow_provider_signzy.batch.engine import CIRCUIT_BREAKER, PLACEHOLDER, PROGRESS_EVERY, SignzyBatch
from airflow_provider_signzy.batch.outcomes import (
    INVALID,
    NOT_SENT,
    REFUSED,
    REPLAYED,
    SUCCEEDED_NOW,
    UNKNOWN,
    SignzyBatchInterruptedError,
    SignzyBatchStoppedError,
    item_result,
)
from airflow_provider_signzy.batch.recording import MAX_WINDOW, MAX_WINDOW_BYTES, MIN_WINDOW, WINDOW_SECONDS

__all__ = [
    "CIRCUIT_BREAKER",
    "INVALID",
    "MAX_WINDOW",
    "MAX_WINDOW_BYTES",
    "MIN_WINDOW",
    "NOT_SENT",
    "PLACEHOLDER",
    "PROGRESS_EVERY",
    "REFUSED",
    "REPLAYED",
    "SUCCEEDED_NOW",
    "UNKNOWN",
    "WINDOW_SECONDS",
    "SignzyBatch",
    "SignzyBatchInterruptedError",
    "SignzyBatchStoppedError",
    "item_result",
]
