"""The batch engine: :class:`SignzyBatch` prepares the items, sends them on a pool of threads, and stops."""

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
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow_provider_signzy.batch.outcomes import INVALID, _Call, item_result
from airflow_provider_signzy.batch.recording import BatchRecording
from airflow_provider_signzy.ledger import BatchLedger, SignzyNotSentError, body_digest, unreachable
from airflow_provider_signzy.utils.call_pacing import CallPacer
from airflow_provider_signzy.utils.fernet_cipher import SignzyCipher
from airflow_provider_signzy.utils.retry_policy import IDEMPOTENT_METHODS

if TYPE_CHECKING:
    import requests

    from airflow_provider_signzy.hooks.signzy import SignzyHook
    from airflow_provider_signzy.utils.access_token import SignzyToken

PLACEHOLDER = re.compile(r"\{(\w+)\}")
PROGRESS_EVERY = 5.0
#: Calls in a row that could not reach Signzy or got a 5xx (after their retries) that stop a batch.
CIRCUIT_BREAKER = 5


class SignzyBatch(BatchRecording):
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
    :param anonymous: send no patron token (Signzy's snoops carry the identity's token in the body).
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
        anonymous: bool = False,
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
        self.anonymous = anonymous
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
            patron = "" if self.anonymous else (self.token or self.hook.get_token()).user_id
            # What errors and retry log lines show: the item fields stay {field} (they may be personal data).
            self._shown_path = self.endpoint.replace("{patron_id}", patron)
            calls = self._prepare(items, patron)
            if not self.idempotent:
                self.ledger = BatchLedger.open(
                    method=self.method,
                    endpoint=self.endpoint,
                    ledger_key=self.ledger_key,
                    cipher_factory=lambda: SignzyCipher.for_connection(
                        self.hook.config.extra, self.hook.signzy_conn_id
                    ),
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
                anonymous=self.anonymous,
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
