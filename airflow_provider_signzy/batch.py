"""Many Signzy calls in one task: concurrent, paced, resumable, and each paid call sent at most once.

:class:`SignzyBatch` is the engine of :class:`~airflow_provider_signzy.operators.batch.SignzyBatchOperator`
and works as well from a TaskFlow task. One hook (thread-safe: a session per thread, one re-login for all)
and one token serve every call; a :class:`~airflow_provider_signzy.pacing.CallPacer` bounds the rate and
makes every thread back off together when Signzy answers with a rate limit. Non-idempotent calls go
through the :class:`~airflow_provider_signzy.ledger.BatchLedger`: a retried task replays the answers of
calls that succeeded, does not send calls whose outcome is unknown, and sends the rest.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow_provider_signzy.envelope import answer_value
from airflow_provider_signzy.ledger import (
    NOT_ACTED,
    SENDING,
    SUCCEEDED,
    BatchLedger,
    answer_of,
    call_identity,
    failure_fields,
    replayed_response,
)
from airflow_provider_signzy.pacing import CallPacer
from airflow_provider_signzy.privacy.scrub import scrub
from airflow_provider_signzy.retry import IDEMPOTENT_METHODS
from airflow_provider_signzy.token import TokenCipher

if TYPE_CHECKING:
    import requests

    from airflow_provider_signzy.hooks.signzy import SignzyHook
    from airflow_provider_signzy.token import SignzyToken

PLACEHOLDER = re.compile(r"\{(\w+)\}")
# Calls whose "sending" entries are written at once (two store writes per window). By default a window
# holds about a second of calls at the rate so far, so a try killed mid-batch leaves at most about two
# seconds of calls of unknown outcome, and a fast batch is not slowed by its ledger.
# A window's record stays under Airflow's [state_store] max_value_storage_bytes (64 KiB by default).
WINDOW_SECONDS = 1.0
MIN_WINDOW = 16
MAX_WINDOW = 1000
MAX_WINDOW_BYTES = 48_000
PROGRESS_EVERY = 5.0

#: What happened to an item: sent and answered 2xx in this try; replayed from an earlier try's success;
#: refused by Signzy without effect (4xx, rate limit, never reached it); sent, outcome unknown (not resent);
#: could not be built (a placeholder the item lacks).
SUCCEEDED_NOW, REPLAYED, REFUSED, UNKNOWN, INVALID = "succeeded", "replayed", "refused", "unknown", "invalid"


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


class SignzyBatch:
    """Send one call per item and return one result per item, in input order.

    :param hook: the hook to call with (its connection, retry policy and sessions).
    :param endpoint: path under the Base URL; ``{patron_id}`` is the token's patron and ``{field}`` the
        item's ``field``. Errors and log lines show the endpoint with ``{field}`` as is: an item's fields
        may be personal data.
    :param token: the token to use (the run's); None: the hook's own, revoked when the hook closes.
    :param window: calls whose ledger entries are written together (two store writes per window); None:
        about a second of calls at the rate so far.
    """

    def __init__(
        self,
        hook: SignzyHook,
        *,
        endpoint: str,
        method: str = "POST",
        token: SignzyToken | None = None,
        max_concurrency: int = 8,
        max_calls_per_second: float | None = None,
        idempotent: bool | None = None,
        query_params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        response_filter: Callable[[requests.Response], Any] | None = None,
        window: int | None = None,
        progress_every: float = PROGRESS_EVERY,
        log: Any = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.hook = hook
        self.endpoint = endpoint
        self._shown_path = endpoint
        self.method = method.upper()
        self.token = token
        self.max_concurrency = max_concurrency
        self.idempotent = self.method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        self.query_params = query_params
        self.headers = headers
        self.response_filter = response_filter
        self.window = max(1, window) if window is not None else None
        self.progress_every = progress_every
        self.log = log or hook.log
        self.pacer = CallPacer(max_calls_per_second)
        self.ledger: BatchLedger | None = None
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._started_calls = self._finished_calls = 0
        self._bytes_per_call = 0.0

    # -- the run --

    def run(self, items: Sequence[Any]) -> list[dict[str, Any]]:
        self.hook.pacer = self.pacer
        patron = (self.token or self.hook.get_token()).user_id
        # What errors and retry log lines show: the item fields stay {field} (they may be personal data).
        self._shown_path = self.endpoint.replace("{patron_id}", patron)
        calls = self._prepare(items, patron)
        if not self.idempotent:
            self.ledger = BatchLedger.open(
                method=self.method,
                endpoint=self.endpoint,
                cipher_factory=lambda: TokenCipher.for_connection(self.hook.config.extra, self.hook.signzy_conn_id),
                log=self.log,
            )
        to_send = self._resume(calls)
        self._started = time.monotonic()
        self._next_progress = self._started + self.progress_every
        self._total = len(calls)
        self._settled_before = len(calls) - len(to_send)
        try:
            pool = ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="signzy-batch")
            try:
                in_flight: deque[tuple[int, list[_Call], list[Future[Any]]]] = deque()
                position, size = 0, self.window or self._min_window
                for number in itertools.count():
                    chunk = to_send[position : position + size]
                    if not chunk:
                        break
                    position += len(chunk)
                    sent_at = _now()
                    self._write_window(number, {c.identity: self._sending_entry(c, sent_at) for c in chunk})
                    in_flight.append((number, chunk, [pool.submit(self._send, c) for c in chunk]))
                    if len(in_flight) > 1:  # keep one window sending while the older one is recorded
                        self._finish(*in_flight[0])
                        in_flight.popleft()
                        size = self.window or self._adaptive_window()
                while in_flight:
                    self._finish(*in_flight[0])
                    in_flight.popleft()
            except BaseException:
                # Interrupted (a timeout, SIGTERM): calls not started yet are never sent, and what the
                # windows in flight know is recorded, so a later try resends only what provably did not
                # go out. (A SIGKILL records nothing: those windows stay "sending", reported as unknown.)
                pool.shutdown(wait=True, cancel_futures=True)
                self._record_interrupted(in_flight)
                raise
            finally:
                pool.shutdown(wait=True)
        finally:
            self.hook.pacer = None
        self._log_progress(final=True)
        return [c.result for c in calls]

    def _prepare(self, items: Sequence[Any], patron: str) -> list[_Call]:
        calls, seen = [], Counter[str]()
        for index, body in enumerate(items):
            call = _Call(index, body)
            try:
                call.path = self._path_for(body, patron)
            except KeyError as missing:
                call.result = item_result(
                    index, INVALID, error=f"item {index} has no field {missing} for the endpoint {self.endpoint!r}"
                )
                self.counts[INVALID] += 1
            else:
                identity = call_identity(self.method, call.path, body, self.query_params)
                seen[identity] += 1
                call.identity = f"{identity[:32]}:{seen[identity]}"  # the n-th identical call of the batch
            calls.append(call)
        return calls

    def _path_for(self, body: Any, patron: str) -> str:
        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            if name == "patron_id":
                return patron
            if not isinstance(body, dict) or name not in body:
                raise KeyError(name)
            return quote(str(body[name]), safe="")

        return PLACEHOLDER.sub(fill, self.endpoint)

    def _resume(self, calls: list[_Call]) -> list[_Call]:
        """The calls to send in this try; the rest get their results from the ledger of earlier tries."""
        earlier = self.ledger.earlier_entries() if self.ledger is not None else {}
        to_send = []
        for call in calls:
            if call.result:
                continue
            entry = earlier.get(call.identity)
            state = entry.get("state") if entry else None
            if entry is None or state == NOT_ACTED:
                to_send.append(call)
            elif state == SUCCEEDED:
                self._replayed(call, entry)
            else:
                what = (
                    "its answer never arrived" if state != SENDING else "that try ended before its answer was recorded"
                )
                call.result = item_result(
                    call.index,
                    UNKNOWN,
                    status=entry.get("status"),
                    error=f"sent by try {entry.get('try')} at {entry.get('sent_at')}, and {what}: Signzy may have "
                    "acted on it and it may have been charged, so it is not sent again",
                )
                self.counts[UNKNOWN] += 1
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
        response = replayed_response(entry["answer"]) if entry.get("answer") else None
        if response is None:
            call.result = item_result(
                call.index, REPLAYED, status=entry.get("status"), error="succeeded earlier; its answer was not kept"
            )
        else:
            call.result = item_result(call.index, REPLAYED, status=response.status_code, response=self._parse(response))
        self.counts[REPLAYED] += 1

    # -- one call, on a worker thread --

    def _send(self, call: _Call) -> Any:
        with self._lock:
            self._started_calls += 1
        try:
            return self.hook.call(
                self.method,
                call.path,
                token=self.token,
                json=call.body,
                params=self.query_params,
                headers=self.headers,
                idempotent=self.idempotent,
                shown_path=self._shown_path,
            )
        except Exception as exc:  # a result, not a reason to stop the batch
            return exc
        finally:
            with self._lock:
                self._finished_calls += 1

    # -- the ledger and the results, on the main thread --

    def _sending_entry(self, call: _Call, sent_at: str) -> dict[str, Any]:
        try_number = self.ledger.scope.try_number if self.ledger is not None else None
        return {"state": SENDING, "try": try_number, "index": call.index, "sent_at": sent_at}

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
        fits = int(MAX_WINDOW_BYTES / self._bytes_per_call) if self._bytes_per_call else MAX_WINDOW
        return min(MAX_WINDOW, fits, max(self._min_window, int(rate * WINDOW_SECONDS)))

    def _finish(self, number: int, chunk: list[_Call], futures: list[Future[Any]]) -> None:
        pending = set(futures)
        while pending:  # wakes for the progress line only: waking per finished call costs O(n^2)
            _, pending = wait(pending, timeout=max(0.05, self._next_progress - time.monotonic()))
            self._log_progress()
        self._record(number, chunk, futures)

    def _record_interrupted(self, in_flight: deque[tuple[int, list[_Call], list[Future[Any]]]]) -> None:
        try:
            for window in in_flight:
                self._record(*window)
        except Exception as exc:  # best effort: the "sending" entries stand, and say "unknown"
            self.log.warning("Could not record the interrupted Signzy batch windows: %s", exc)

    def _record(self, number: int, chunk: list[_Call], futures: list[Future[Any]]) -> None:
        entries: dict[str, dict[str, Any]] = {}
        finished_at = _now()
        for call, future in zip(chunk, futures, strict=True):
            base: dict[str, Any] = {"try": self.ledger.scope.try_number if self.ledger else None, "index": call.index}
            if future.cancelled():
                entries[call.identity] = {**base, "state": NOT_ACTED, "detail": "never sent: the try was interrupted"}
                continue
            outcome = future.result()
            if isinstance(outcome, Exception):
                fields = failure_fields(outcome)
                unknown = fields.pop("may_have_acted")
                entries[call.identity] = {**base, **fields}
                call.result = item_result(
                    call.index, UNKNOWN if unknown else REFUSED, status=fields["status"], error=str(outcome)
                )
                self.counts[UNKNOWN if unknown else REFUSED] += 1
            else:
                entries[call.identity] = {
                    **base,
                    "state": SUCCEEDED,
                    "finished_at": finished_at,
                    "status": outcome.status_code,
                    "answer": answer_of(outcome),  # BatchLedger.write keeps it encrypted, or drops it
                }
                call.result = item_result(call.index, SUCCEEDED_NOW, status=outcome.status_code)
                try:
                    call.result["response"] = self._parse(outcome)
                except Exception as exc:  # the call succeeded: the ledger says so; the item reports the filter
                    # The filter's message may quote the answer it choked on: scrub it like Signzy's own.
                    error = scrub(f"response_filter failed: {type(exc).__name__}: {exc}")
                    call.result.update(ok=False, error=error)
                self.counts[SUCCEEDED_NOW] += 1
        self._write_window(number, entries)

    def _parse(self, response: requests.Response) -> Any:
        return answer_value(response, self.response_filter)

    # -- progress --

    def _log_progress(self, *, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now < self._next_progress:
            return
        self._next_progress = now + self.progress_every
        with self._lock:
            started, finished = self._started_calls, self._finished_calls
        done = self._settled_before + finished
        rate = finished / max(now - self._started, 1e-6)
        eta = f"{(self._total - done) / rate:.0f}s" if rate > 0 and not final else "-"
        errors = self.counts[REFUSED] + self.counts[UNKNOWN] + self.counts[INVALID]
        self.log.info(
            "Signzy batch %s: %d/%d done, %.1f calls/s, %d retries, %d rate-limited, %d errors, ETA %s",
            "finished" if final else "progress",
            done,
            self._total,
            rate,
            max(0, self.pacer.attempts - started),
            self.pacer.rate_limited,
            errors,
            eta,
        )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
