"""What happens to each item of a batch: outcomes, results, and the errors that stop a batch."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_signzy.exceptions import SignzyError
from airflow_provider_signzy.ledger import SignzyNotSentError
from airflow_provider_signzy.utils.call_pacing import CallsStopped

#: What happened to an item: sent and answered 2xx in this try; replayed from an earlier try's success;
#: refused by Signzy without effect (4xx, rate limit, never reached it), or not sent (the batch stopped);
#: sent, outcome unknown (not resent); could not be built (a placeholder the item lacks).
SUCCEEDED_NOW, REPLAYED, REFUSED, UNKNOWN, INVALID = "succeeded", "replayed", "refused", "unknown", "invalid"
#: Counted apart from ``refused`` (its results say ``refused``, with an error that starts "not sent").
NOT_SENT = "not_sent"


class SignzyBatchStoppedError(SignzyError):
    """The batch stopped before every item was sent: Signzy was unreachable, the task was asked to stop, or
    the call ledger could not record a window. ``results`` holds every item's result (the ones not sent
    are ``refused``, their ``error`` starting with "not sent"); nothing unknown was added by stopping, so
    Airflow's retries may run (with the call ledger, a retry sends only what was not sent or was refused)."""

    def __init__(self, message: str, *, results: list[dict[str, Any]], reason: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.results = results
        self.reason = reason


class SignzyBatchInterruptedError(SignzyBatchStoppedError, AirflowFailException):
    """A paid batch without a call ledger (Airflow before 3.3) that stopped after sending some items: a
    retry would send them again, so this fails the task without Airflow's retries, naming what was sent."""


@dataclass
class _Call:
    index: int
    body: Any
    path: str = ""
    identity: str = ""
    result: dict[str, Any] = field(default_factory=dict)


def item_result(
    index: int, outcome: str, *, status: int | None = None, response: Any = None, error: str | None = None
) -> dict[str, Any]:
    return {
        "index": index,
        "ok": outcome in (SUCCEEDED_NOW, REPLAYED),
        "outcome": outcome,
        "status": status,
        "response": response,
        "error": error,
    }


def _not_sent_reason(error: SignzyNotSentError) -> str:
    """An item's error for a call that was not sent: "not sent: " and why (the batch stopped, a login failed)."""
    if isinstance(error.cause, CallsStopped):
        return f"not sent: {error.cause.reason}"
    return f"not sent: {error}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
