"""How a batch reports: its progress line, its accounts (the summary line, metrics), and why it stopped."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from airflow_provider_signzy.batch.outcomes import (
    INVALID,
    NOT_SENT,
    REFUSED,
    REPLAYED,
    SUCCEEDED_NOW,
    UNKNOWN,
    SignzyBatchInterruptedError,
    SignzyBatchStoppedError,
    _Call,
)
from airflow_provider_signzy.ledger import BatchLedger, ranges
from airflow_provider_signzy.utils import call_metrics

if TYPE_CHECKING:
    from airflow_provider_signzy.hooks.signzy import SignzyHook
    from airflow_provider_signzy.utils.call_pacing import CallPacer


class BatchReporting:
    """The reporting part of :class:`~airflow_provider_signzy.batch.SignzyBatch`, which sets this state."""

    hook: SignzyHook
    method: str
    endpoint: str
    idempotent: bool
    log: Any
    pacer: CallPacer
    ledger: BatchLedger | None
    counts: Counter[str]
    progress_every: float
    _accounted: Counter[str]
    _lock: threading.Lock
    _started: float
    _next_progress: float
    _finished_calls: int
    _total: int
    _settled_before: int
    _retries_before: int

    # -- when the batch stops --

    def _sent_indices(self, calls: list[_Call]) -> list[int]:
        """Items of this run that Signzy acted on or may have: sent and answered, or of unknown outcome."""
        return [c.index for c in calls if c.result.get("outcome") in (SUCCEEDED_NOW, UNKNOWN)]

    def _would_repay(self) -> bool:
        """True when a retry would send items again that Signzy acted on: a paid batch without a ledger."""
        if self.ledger is not None or self.idempotent:
            return False
        return bool(self.counts[SUCCEEDED_NOW] + self.counts[UNKNOWN])

    def _stopped(
        self, calls: list[_Call], results: list[dict[str, Any]], reason: str, *, interrupted: bool = False
    ) -> SignzyBatchStoppedError:
        not_sent_ix = [c.index for c in calls if (c.result.get("error") or "").startswith("not sent")]
        counts = self.counts
        summary = (
            f"{counts[SUCCEEDED_NOW]} succeeded, {counts[REPLAYED]} replayed, {counts[UNKNOWN]} unknown, "
            f"{counts[REFUSED]} refused, {len(not_sent_ix)} not sent"
            + (f" (items {ranges(not_sent_ix)})" if not_sent_ix else "")
        )
        where = f"Signzy batch {self.method} {self.endpoint}"
        if self._would_repay():
            sent = self._sent_indices(calls)
            message = (
                f"{where} {reason if interrupted else 'stopped: ' + reason} after {len(sent)} of {len(calls)} items "
                f"were sent (items {ranges(sent)}); {summary}. There is no call ledger here (Airflow before 3.3): "
                "a retry would send those items again, and Signzy may charge them twice, so this task does not "
                "retry. Check them in Signzy, and send the items not sent in a new batch (another task or run)"
            )
            return SignzyBatchInterruptedError(
                message, results=results, reason=reason, method=self.method, conn_id=self.hook.signzy_conn_id
            )
        if self.ledger is not None:
            then = (
                "A retry of this task sends the items not sent and the refused ones; the call ledger replays the rest"
            )
        elif self.idempotent:
            then = "A retry of this task sends every item again (the calls are idempotent)"
        else:
            then = "Nothing that Signzy acted on was sent, so a retry of this task may send every item"
        message = f"{where} stopped: {reason}. {summary}. {then}"
        return SignzyBatchStoppedError(
            message, results=results, reason=reason, method=self.method, conn_id=self.hook.signzy_conn_id
        )

    # -- accounting and progress --

    def _settle_accounts(self) -> None:
        """Count this batch's outcomes so far into the hook's account (the summary line, the metrics)."""
        paid = not self.idempotent
        account = self.hook.account
        for outcome, metric in (
            (SUCCEEDED_NOW, call_metrics.SUCCEEDED),
            (REPLAYED, call_metrics.REPLAYED),
            (REFUSED, call_metrics.REFUSED),
            (UNKNOWN, call_metrics.UNKNOWN),
            (NOT_SENT, call_metrics.NOT_SENT),
        ):
            delta = self.counts[outcome] - self._accounted[outcome]
            if delta > 0:
                if not paid and outcome in (REFUSED, UNKNOWN):
                    metric = call_metrics.FAILED
                account.settled(self.method, self.endpoint, metric, paid=paid, count=delta)
                self._accounted[outcome] += delta
        account.flush()

    def _log_progress(self, *, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now < self._next_progress:
            return
        self._next_progress = now + self.progress_every
        with self._lock:
            finished = self._finished_calls
        done = self._settled_before + finished
        rate = finished / max(now - self._started, 1e-6)
        eta = f"{(self._total - done) / rate:.0f}s" if rate > 0 and not final else "-"
        errors = self.counts[REFUSED] + self.counts[UNKNOWN] + self.counts[INVALID] + self.counts[NOT_SENT]
        self.log.info(
            "Signzy batch %s: %d/%d done, %.1f calls/s, %d retries, %d rate-limited, %d errors, ETA %s",
            "finished" if final else "progress",
            done,
            self._total,
            rate,
            self.hook.account.retries - self._retries_before,
            self.pacer.rate_limited,
            errors,
            eta,
        )
        if not final:
            self._settle_accounts()
