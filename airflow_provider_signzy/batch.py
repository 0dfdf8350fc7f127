"""Many Signzy calls in one task: concurrent, paced, resumable, and each paid call sent at most once.

:class:`SignzyBatch` is the engine of :class:`~airflow_provider_signzy.operators.batch.SignzyBatchOperator`
and works as well from a TaskFlow task. One hook (thread-safe: a session per thread, one re-login for all)
and one token serve every call; a :class:`~airflow_provider_signzy.pacing.CallPacer` bounds the rate,
makes every thread back off together when Signzy answers with a rate limit, and is the batch's gate: a
circuit breaker that trips after ``circuit_breaker`` calls in a row could not reach Signzy (or got a
5xx), a SIGTERM, or a ledger write that failed closes it, and no call starts after that. Non-idempotent
calls go through the :class:`~airflow_provider_signzy.ledger.BatchLedger` (one scope per batch run): a
retried task replays the answers of calls that succeeded, does not send calls whose outcome is unknown,
and sends the rest.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import re
import signal
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_signzy import metrics
from airflow_provider_signzy.envelope import answer_value
from airflow_provider_signzy.exceptions import SignzyError
from airflow_provider_signzy.ledger import (
    KEEP_UNKNOWN,
    REPLAY,
    SENDING,
    SUCCEEDED,
    BatchLedger,
    SignzyNotSentError,
    answer_of,
    body_digest,
    earlier_outcome,
    failure_fields,
    not_sent,
    ranges,
    replayed_response,
    unreachable,
)
from airflow_provider_signzy.pacing import CallPacer, CallsStopped
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
# seconds of calls of unknown outcome, and a fast batch is not slowed by its ledger. A window's record
# is kept to about three quarters of the store's value limit when it can be; a bigger one is split.
WINDOW_SECONDS = 1.0
MIN_WINDOW = 16
MAX_WINDOW = 1000
MAX_WINDOW_BYTES = 48_000
PROGRESS_EVERY = 5.0
#: Calls in a row that could not reach Signzy or got a 5xx (after their retries) that stop a batch.
CIRCUIT_BREAKER = 5

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


class SignzyBatch:
    """Send one call per item and return one result per item, in input order.

    :param hook: the hook to call with (its connection, retry policy and sessions).
    :param endpoint: path under the Base URL; ``{patron_id}`` is the token's patron and ``{field}`` the
        item's ``field``. Errors and log lines show the endpoint with ``{field}`` as is: an item's fields
        may be personal data.
    :param token: the token to use (the run's); None: the hook's own, revoked when the hook closes.
    :param window: calls whose ledger entries are written together (two store writes per window); None:
        about a second of calls at the rate so far.
    :param ledger_key: names this batch's scope in the call ledger (default: the method and endpoint, and
        which batch on them this is in the task: the first, the second, ...). Give one per chunk when a
        task sends its items in chunks whose order may change between tries.
    :param call_key: names each item for the ledger instead of a digest of its body: the name of an item
        field (``"customer_id"``) or ``callable(item) -> str``. Give one when bodies change between tries
        for the same call (a timestamp in them).
    :param circuit_breaker: stop the batch after this many calls in a row could not reach Signzy or got a
        5xx answer, after their retries (None: never). The items not sent are ``refused``, and
        :meth:`run` raises :class:`SignzyBatchStoppedError`.

    :meth:`run` raises :class:`SignzyBatchStoppedError` when the batch stopped before the end (its circuit
    breaker, a SIGTERM, a ledger write that failed), and re-raises what interrupted it (a timeout, an
    exception); without a call ledger a paid batch that had sent items raises
    :class:`SignzyBatchInterruptedError` instead (no Airflow retries: they would pay again).
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
        ledger_key: str | None = None,
        call_key: str | Callable[[Any], Any] | None = None,
        circuit_breaker: int | None = CIRCUIT_BREAKER,
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
        self.ledger_key = ledger_key
        self.call_key = call_key
        self.progress_every = progress_every
        self.log = log or hook.log
        self.pacer = CallPacer(max_calls_per_second, breaker=circuit_breaker or None)
        self.ledger: BatchLedger | None = None
        self.counts: Counter[str] = Counter()
        self._accounted: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._started_calls = self._finished_calls = 0
        self._retries_before = 0
        self._bytes_per_call = 0.0
        self._started = time.monotonic()
        self._next_progress = self._started + progress_every
        self._total = self._settled_before = 0

    # -- the run --

    def run(self, items: Sequence[Any]) -> list[dict[str, Any]]:
        self.hook.pacer = self.pacer
        self._retries_before = self.hook.account.retries
        try:
            # The login comes first, before any ledger entry: a login that fails sent nothing.
            patron = (self.token or self.hook.get_token()).user_id
            # What errors and retry log lines show: the item fields stay {field} (they may be personal data).
            self._shown_path = self.endpoint.replace("{patron_id}", patron)
            calls = self._prepare(items, patron)
            if not self.idempotent:
                self.ledger = BatchLedger.open(
                    method=self.method,
                    endpoint=self.endpoint,
                    ledger_key=self.ledger_key,
                    cipher_factory=lambda: TokenCipher.for_connection(self.hook.config.extra, self.hook.signzy_conn_id),
                    log=self.log,
                )
            to_send = self._resume(calls)
            self._started = time.monotonic()
            self._next_progress = self._started + self.progress_every
            self._total = len(calls)
            self._settled_before = len(calls) - len(to_send)
            with self._stop_on_sigterm():
                self._send_all(calls, to_send)
        finally:
            self.hook.pacer = None
            self._settle_accounts()
        self._log_progress(final=True)
        results = [c.result for c in calls]
        if self.pacer.stopped is not None:
            raise self._stopped(calls, results, self.pacer.stopped)
        return results

    def _send_all(self, calls: list[_Call], to_send: list[_Call]) -> None:
        pool = ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="signzy-batch")
        in_flight: deque[tuple[int, list[_Call], list[Future[Any]]]] = deque()
        position = 0
        try:
            size = self.window or self._min_window
            for number in itertools.count():
                chunk = to_send[position : position + size]
                if not chunk or self.pacer.closed or not self._open_window(number, chunk):
                    break
                position += len(chunk)
                in_flight.append((number, chunk, [pool.submit(self._send, c) for c in chunk]))
                if len(in_flight) > 1:  # keep one window sending while the older one is recorded
                    self._finish(*in_flight[0])
                    in_flight.popleft()
                    size = self.window or self._adaptive_window()
            while in_flight:
                self._finish(*in_flight[0])
                in_flight.popleft()
        except BaseException as exc:
            # Interrupted (a timeout, an exception): close the gate first, so no thread waiting for its turn
            # or in a back-off sends after this; calls not started are never sent, and what the windows in
            # flight know is recorded, so a later try resends only what provably did not go out. (A SIGKILL
            # records nothing: those windows stay "sending", reported as unknown.)
            self.pacer.close(f"the batch was interrupted ({type(exc).__name__})")
            pool.shutdown(wait=True, cancel_futures=True)
            self._record_interrupted(in_flight)
            self._mark_not_sent(to_send[position:], self.pacer.stopped or "")
            if self._would_repay():
                raise self._stopped(
                    calls, [c.result for c in calls], f"was interrupted ({type(exc).__name__})", interrupted=True
                ) from exc
            raise
        finally:
            pool.shutdown(wait=True)
        self._mark_not_sent(to_send[position:], self.pacer.stopped or "")

    @contextlib.contextmanager
    def _stop_on_sigterm(self) -> Iterator[None]:
        """While the batch runs, SIGTERM closes its gate (then runs the handler that was there: Airflow's)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.getsignal(signal.SIGTERM)

        def stop(signum: int, frame: Any) -> None:
            self.pacer.close("the task was asked to stop (SIGTERM)")
            if callable(previous):
                previous(signum, frame)
            elif previous in (signal.SIG_DFL, None):
                raise SystemExit(128 + signum)  # as the default would end it, but through the recording path

        signal.signal(signal.SIGTERM, stop)
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)

    def _prepare(self, items: Sequence[Any], patron: str) -> list[_Call]:
        calls, seen = [], Counter[str]()
        for index, body in enumerate(items):
            call = _Call(index, body)
            try:
                call.path = self._path_for(body, patron)
                key = self._item_key(body)
            except KeyError as missing:
                call.result = item_result(
                    index, INVALID, error=f"item {index} has no field {missing} {self._needed_by(missing)}"
                )
                self.counts[INVALID] += 1
            else:
                digest = body_digest(body, self.query_params, key)
                # A call_key names the item whatever its path; otherwise the path it is sent to is part of it.
                where = "/" + (self.endpoint if key is not None else call.path).lstrip("/").split("?", 1)[0]
                identity = hashlib.sha256(f"{self.method} {where} {digest}".encode()).hexdigest()
                seen[identity] += 1
                call.identity = f"{identity[:32]}:{seen[identity]}"  # the n-th identical call of the batch
            calls.append(call)
        return calls

    def _needed_by(self, missing: KeyError) -> str:
        if isinstance(self.call_key, str) and missing.args and missing.args[0] == self.call_key:
            return "for call_key"
        return f"for the endpoint {self.endpoint!r}"

    def _item_key(self, body: Any) -> str | None:
        if self.call_key is None:
            return None
        if callable(self.call_key):
            return str(self.call_key(body))
        if not isinstance(body, dict) or self.call_key not in body:
            raise KeyError(self.call_key)
        return str(body[self.call_key])

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

    # -- one call, on a worker thread --

    def _send(self, call: _Call) -> Any:
        if self.pacer.closed:  # the batch stopped before this call's turn: never sent
            return self._not_sent_error(self.pacer.stopped or "")
        with self._lock:
            self._started_calls += 1
        try:
            response = self.hook.call(
                self.method,
                call.path,
                token=self.token,
                json=call.body,
                params=self.query_params,
                headers=self.headers,
                idempotent=self.idempotent,
                shown_path=self._shown_path,
            )
        except Exception as exc:  # a result, not a reason to stop the batch (the breaker decides that)
            if not isinstance(exc, SignzyNotSentError):
                self.pacer.call_done(unreachable=unreachable(exc))
            return exc
        else:
            self.pacer.call_done(unreachable=False)
            return response
        finally:
            with self._lock:
                self._finished_calls += 1

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
            (SUCCEEDED_NOW, metrics.SUCCEEDED),
            (REPLAYED, metrics.REPLAYED),
            (REFUSED, metrics.REFUSED),
            (UNKNOWN, metrics.UNKNOWN),
            (NOT_SENT, metrics.NOT_SENT),
        ):
            delta = self.counts[outcome] - self._accounted[outcome]
            if delta > 0:
                if not paid and outcome in (REFUSED, UNKNOWN):
                    metric = metrics.FAILED
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


def _not_sent_reason(error: SignzyNotSentError) -> str:
    """An item's error for a call that was not sent: "not sent: " and why (the batch stopped, a login failed)."""
    if isinstance(error.cause, CallsStopped):
        return f"not sent: {error.cause.reason}"
    return f"not sent: {error}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
