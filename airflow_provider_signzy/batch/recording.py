"""How a batch keeps its call ledger: windows of "sending" entries, outcomes, and a later try's resume."""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import Future, wait
from typing import TYPE_CHECKING, Any

from airflow_provider_signzy.batch.outcomes import (
    INVALID,
    NOT_SENT,
    REFUSED,
    REPLAYED,
    SUCCEEDED_NOW,
    UNKNOWN,
    _Call,
    _not_sent_reason,
    _now,
    item_result,
)
from airflow_provider_signzy.batch.reporting import BatchReporting
from airflow_provider_signzy.ledger import (
    KEEP_UNKNOWN,
    REPLAY,
    SENDING,
    SUCCEEDED,
    SignzyNotSentError,
    answer_of,
    earlier_outcome,
    failure_fields,
    not_sent,
    replayed_response,
)
from airflow_provider_signzy.privacy.scrub import scrub
from airflow_provider_signzy.utils.call_pacing import CallsStopped
from airflow_provider_signzy.utils.error_envelope import answer_value

if TYPE_CHECKING:
    from collections.abc import Callable

    import requests

# Calls whose "sending" entries are written at once (two store writes per window). By default a window
# holds about a second of calls at the rate so far, so a try killed mid-batch leaves at most about two
# seconds of calls of unknown outcome, and a fast batch is not slowed by its ledger. A window's record
# is kept to about three quarters of the store's value limit when it can be; a bigger one is split.
WINDOW_SECONDS = 1.0
MIN_WINDOW = 16
MAX_WINDOW = 1000
MAX_WINDOW_BYTES = 48_000


class BatchRecording(BatchReporting):
    """The ledger part of :class:`~airflow_provider_signzy.batch.SignzyBatch`, which sets this state."""

    max_concurrency: int
    window: int | None
    response_filter: Callable[[requests.Response], Any] | None
    _shown_path: str
    _bytes_per_call: float

    def _resume(self, calls: list[_Call]) -> list[_Call]:
        """The calls to send in this try; the rest get their results from the ledger of earlier tries."""
        earlier = self.ledger.earlier_entries() if self.ledger is not None else {}
        to_send = []
        for call in calls:
            if call.result:
                continue
            entry = earlier.get(call.identity)
            action, why = earlier_outcome(entry)
            if action == REPLAY:
                assert entry is not None
                self._replayed(call, entry)
            elif action == KEEP_UNKNOWN:
                assert entry is not None
                call.result = item_result(call.index, UNKNOWN, status=entry.get("status"), error=why)
                self.counts[UNKNOWN] += 1
            else:
                to_send.append(call)
        if len(to_send) < len(calls):
            self.log.info(
                "Signzy batch resumes: %d of %d items to send; %d replayed from earlier tries, %d of unknown "
                "outcome not sent again, %d invalid",
                len(to_send),
                len(calls),
                self.counts[REPLAYED],
                self.counts[UNKNOWN],
                self.counts[INVALID],
            )
        return to_send

    def _replayed(self, call: _Call, entry: dict[str, Any]) -> None:
        self.counts[REPLAYED] += 1
        if not entry.get("answer"):
            # As a single call refuses to: it was paid, and this try cannot give its answer.
            call.result = item_result(
                call.index,
                REPLAYED,
                status=entry.get("status"),
                error=f"succeeded in try {entry.get('try')} at {entry.get('finished_at')}, but its answer was not "
                "kept (no Fernet key to encrypt it): it is not sent again, and this try cannot return its answer",
            )
            call.result["ok"] = False
            return
        response = replayed_response(entry["answer"])
        call.result = item_result(call.index, REPLAYED, status=response.status_code)
        self._keep_response(call, response)

    def _not_sent_error(self, reason: str) -> SignzyNotSentError:
        return not_sent(
            CallsStopped(reason),
            method=self.method,
            path=self._shown_path,
            conn_id=self.hook.signzy_conn_id,
            why="the batch stopped",
        )

    # -- the ledger and the results, on the main thread --

    def _sending_entry(self, call: _Call, sent_at: str) -> dict[str, Any]:
        try_number = self.ledger.scope.try_number if self.ledger is not None else None
        return {"state": SENDING, "try": try_number, "index": call.index, "sent_at": sent_at}

    def _open_window(self, number: int, chunk: list[_Call]) -> bool:
        """Write the window's "sending" entries; False (and the gate closed) when the ledger cannot."""
        if self.ledger is None:
            return True
        sent_at = _now()
        try:
            self._write_window(number, {c.identity: self._sending_entry(c, sent_at) for c in chunk})
        except Exception as exc:
            self.log.warning("The Signzy call ledger could not record window %d before sending it: %s", number, exc)
            self.pacer.close(
                f"the call ledger could not record window {number} before sending it ({type(exc).__name__}, "
                "after retries)"
            )
            return False
        return True

    def _write_window(self, number: int, calls: dict[str, dict[str, Any]]) -> None:
        if self.ledger is not None and calls:
            stored = self.ledger.write(number, calls)
            self._bytes_per_call = max(self._bytes_per_call, stored / len(calls))

    @property
    def _min_window(self) -> int:
        return max(MIN_WINDOW, 2 * self.max_concurrency)

    def _adaptive_window(self) -> int:
        """About ``WINDOW_SECONDS`` of calls at the rate so far: few store writes, little left unknown."""
        with self._lock:
            finished = self._finished_calls
        rate = finished / max(time.monotonic() - self._started, 1e-6)
        limit = self.ledger.limit if self.ledger is not None else 0
        budget = min(MAX_WINDOW_BYTES, int(limit * 0.75)) if limit else MAX_WINDOW_BYTES
        fits = int(budget / self._bytes_per_call) if self._bytes_per_call else MAX_WINDOW
        return max(1, min(MAX_WINDOW, fits, max(self._min_window, int(rate * WINDOW_SECONDS))))

    def _finish(self, number: int, chunk: list[_Call], futures: list[Future[Any]]) -> None:
        pending = set(futures)
        while pending:  # wakes for the progress line only: waking per finished call costs O(n^2)
            _, pending = wait(pending, timeout=max(0.05, self._next_progress - time.monotonic()))
            self._log_progress()
        self._record(number, chunk, futures)

    def _record_interrupted(self, in_flight: deque[tuple[int, list[_Call], list[Future[Any]]]]) -> None:
        for window in in_flight:
            self._record(*window)

    def _record(self, number: int, chunk: list[_Call], futures: list[Future[Any]]) -> None:
        entries: dict[str, dict[str, Any]] = {}
        finished_at = _now()
        for call, future in zip(chunk, futures, strict=True):
            base: dict[str, Any] = {"try": self.ledger.scope.try_number if self.ledger else None, "index": call.index}
            outcome = self._not_sent_error(self.pacer.stopped or "") if future.cancelled() else future.result()
            if isinstance(outcome, Exception):
                fields = failure_fields(outcome)
                unknown = fields.pop("may_have_acted")
                entries[call.identity] = {**base, **fields}
                if not call.result:
                    error = _not_sent_reason(outcome) if isinstance(outcome, SignzyNotSentError) else str(outcome)
                    call.result = item_result(
                        call.index, UNKNOWN if unknown else REFUSED, status=fields["status"], error=error
                    )
                    if unknown:
                        self.counts[UNKNOWN] += 1
                    else:
                        self.counts[NOT_SENT if isinstance(outcome, SignzyNotSentError) else REFUSED] += 1
            else:
                entries[call.identity] = {
                    **base,
                    "state": SUCCEEDED,
                    "finished_at": finished_at,
                    "status": outcome.status_code,
                    "answer": answer_of(outcome),  # BatchLedger.write keeps it encrypted, or drops it
                }
                if not call.result:
                    call.result = item_result(call.index, SUCCEEDED_NOW, status=outcome.status_code)
                    self._keep_response(call, outcome)
                    self.counts[SUCCEEDED_NOW] += 1
        try:
            self._write_window(number, entries)
        except Exception as exc:  # the answers are in hand: return them; a later try reports them unknown
            self.log.warning(
                "The Signzy call ledger could not record the outcomes of window %d (%d items; %s, after retries): "
                "this try returns their answers, and a later try of this task will report them as of unknown "
                "outcome and not send them again",
                number,
                len(chunk),
                type(exc).__name__,
            )

    def _keep_response(self, call: _Call, response: requests.Response) -> None:
        try:
            call.result["response"] = answer_value(response, self.response_filter)
        except Exception as exc:  # the call succeeded: the ledger says so; the item reports the filter
            # The filter's message may quote the answer it choked on: scrub it like Signzy's own.
            call.result.update(ok=False, error=scrub(f"response_filter failed: {type(exc).__name__}: {exc}"))

    def _mark_not_sent(self, calls: list[_Call], reason: str) -> None:
        """Items whose window was never opened: no ledger entry, so a later try sends them."""
        for call in calls:
            if not call.result:
                call.result = item_result(call.index, REFUSED, error=f"not sent: {reason}")
                self.counts[NOT_SENT] += 1
