"""The call ledger: a paid Signzy call is sent at most once per task, across Airflow's own retries.

This module owns the paid-call policy end to end, for single calls (:func:`request`, which
``SignzyHook.request`` is) and batches (:class:`BatchLedger`); the hook is the transport.

Before a non-idempotent call leaves, an entry saying "sending" is written to Airflow's task state store;
once the answer is in, the outcome replaces it. The store is scoped to (DAG run, task, map index) and
survives retries, heartbeat-timeout retries and ``airflow tasks clear`` (Airflow 3.3+), so a later try
of the same call finds the entry and:

- ``succeeded``: does not send; the stored answer is replayed as the response;
- ``not-acted`` (refused before Signzy acted: a 4xx answer, a rate limit, a connection never made, a login
  that failed before or after a 401): sends;
- ``sending`` (the try died mid-call), ``unknown`` (lost answer, read timeout, 5xx), or an entry that
  cannot be read: does not send and fails the task without retries
  (:class:`~airflow_provider_signzy.exceptions.SignzyOutcomeUnknownError`).

What is acted on: the token is obtained (login, renewal) *before* "sending" is written, and the one
re-login after a 401 happens after the entry says "not acted"; so only the paid request itself can make
an outcome unknown. The answer in hand is never dropped: when the outcome cannot be recorded (after the
store-write retries of :func:`~airflow_provider_signzy.retry.build_store_retrying`), the call still
returns it, and the log says (without the answer) that the ledger could not record it.

**One record format** (version :data:`LEDGER_VERSION`), for single calls and batch windows alike::

    {"v": 2, "kind": "call" | "window", "state": ..., "try": n, "enc": "fernet" | "zlib", "data": "..."}

``data`` is the record's content as compressed JSON, Fernet-encrypted with the token's key (``enc:
fernet``); without any key it is only compressed and holds no answers (``enc: zlib``). In the clear: the
kind, a single call's state, the try, a window's item count: nothing about a customer. Paths are kept as a
digest. A record bigger than the store's ``[state_store] max_value_storage_bytes`` is split: its data goes
to ``<key>:p1``, ``<key>:p2``, ... (written first) and the record names how many parts and their digest.
On read, the version is checked; a record that is not a dict, has another version, misses a part or
cannot be decrypted is *unreadable*, and an unreadable record counts as unknown, never as "never sent".

A different body (or ``call_key``) is a different call. The n-th identical call of a try matches the n-th
of the next try, so a task that sends the same call twice on purpose keeps both; likewise the n-th batch
on an endpoint (or with a ``ledger_key``) of a try is its own scope. Before Airflow 3.3 there is no store:
an unknown outcome still fails the task without retries, but a worker killed mid-call is retried by
Airflow and the call is sent again (the README's table says what holds where).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import requests
from requests.structures import CaseInsensitiveDict

from airflow_provider_signzy import metrics
from airflow_provider_signzy.exceptions import (
    SignzyConnectionError,
    SignzyError,
    SignzyOutcomeUnknownError,
    SignzyServerError,
)
from airflow_provider_signzy.retry import IDEMPOTENT_METHODS, build_store_retrying

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_signzy.hooks.signzy import SignzyHook
    from airflow_provider_signzy.token import SignzyToken, TokenCipher

LEDGER_KEY_PREFIX = "signzy-call:"
BATCH_KEY_PREFIX = "signzy-batch:"
LEDGER_VERSION = 2
SENDING, SUCCEEDED, NOT_ACTED, UNKNOWN = "sending", "succeeded", "not-acted", "unknown"
CALL, WINDOW, PART = "call", "window", "part"
#: ``Response.reason`` of an answer replayed from the ledger instead of sent.
REPLAYED_REASON = "Replayed from the Signzy call ledger"
#: Airflow's default ``[state_store] max_value_storage_bytes``, used where the setting cannot be read.
DEFAULT_STORE_LIMIT = 65535
#: Room left in a value for the record's own fields around its data.
_RECORD_OVERHEAD = 400

_ordinals: dict[tuple[Any, ...], int] = {}
_ordinals_lock = threading.Lock()


class SignzyNotSentError(SignzyError):
    """A call Signzy did not act on, and that was not sent (again): sending it later is safe.

    Raised when the login before a call fails, when the login after a 401 (which Signzy answers without
    acting) fails, and for a batch's calls that were not sent because the batch stopped (its circuit
    breaker, a SIGTERM, a ledger write that failed). ``cause`` is what stopped it.
    """

    cause: BaseException | None = None


def not_sent(cause: BaseException, *, method: str, path: str, conn_id: str | None, why: str) -> SignzyNotSentError:
    """A :class:`SignzyNotSentError` for ``method path``, saying ``why`` and keeping ``cause``'s status."""
    error = SignzyNotSentError(
        f"Signzy {method} {path} was not sent: {why}: {cause}. Signzy did not act on it, so sending it again is safe",
        status=getattr(cause, "status", None),
        code=getattr(cause, "code", None),
        method=method,
        path=path,
        conn_id=conn_id,
    )
    error.cause = cause
    return error


def body_digest(json_body: Any, params: Any, call_key: str | None) -> str:
    """SHA-256 of the canonical JSON of the body and query parameters (or of ``call_key``)."""
    material = {"call_key": call_key} if call_key is not None else {"json": json_body, "params": params}
    canonical = json.dumps(material, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def signzy_acted(exc: BaseException) -> bool | None:
    """False when Signzy provably did not act on a call that failed with ``exc``; None when unknown."""
    if isinstance(exc, SignzyNotSentError):
        return False
    if isinstance(exc, SignzyConnectionError):
        return None if exc.reached_server else False
    if isinstance(exc, SignzyServerError):
        return None
    if isinstance(exc, SignzyError):
        return False  # an answer that refused the call: 4xx, a rate limit, a permission or config problem
    return None


def unreachable(exc: BaseException) -> bool:
    """True for a call that could not reach Signzy or got a 5xx: what a batch's circuit breaker counts."""
    if isinstance(exc, SignzyNotSentError):
        return False
    return isinstance(exc, SignzyConnectionError | SignzyServerError)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def ranges(indices: list[int]) -> str:
    """``[0, 1, 2, 5, 7, 8]`` -> ``"0-2, 5, 7-8"``."""
    spans: list[list[int]] = []
    for index in sorted(indices):
        if spans and index == spans[-1][1] + 1:
            spans[-1][1] = index
        else:
            spans.append([index, index])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


# -- where a ledger lives ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskScope:
    """Where a ledger lives: the running task instance (for the resend instructions) and its store."""

    store: Any
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int

    @classmethod
    def current(cls) -> TaskScope | None:
        """The running task's scope, or None outside a task or before Airflow 3.3 (no state store)."""
        try:
            from airflow.providers.common.compat.sdk import get_current_context

            context = get_current_context()
        except Exception:  # not inside a running task
            return None
        store = context.get("task_state_store")
        ti = context.get("ti")
        if store is None or ti is None:
            return None
        map_index = getattr(ti, "map_index", -1)
        return cls(
            store=store,
            dag_id=str(ti.dag_id),
            run_id=str(ti.run_id),
            task_id=str(ti.task_id),
            map_index=-1 if map_index is None else int(map_index),
            try_number=int(getattr(ti, "try_number", 0) or 0),
        )

    def ordinal(self, name: str) -> int:
        """1 for the first ``name`` asked for in this try of this task instance, 2 for the next, ..."""
        key = (self.dag_id, self.run_id, self.task_id, self.map_index, self.try_number, name)
        with _ordinals_lock:
            _ordinals[key] = _ordinals.get(key, 0) + 1
            return _ordinals[key]

    def resend_instructions(self, key: str) -> str:
        query = f"?map_index={self.map_index}" if self.map_index >= 0 else ""
        return (
            "To send it again on purpose, delete this call's ledger entry, then clear the task: "
            f"DELETE /api/v2/dags/{self.dag_id}/dagRuns/{self.run_id}/taskInstances/{self.task_id}"
            f"/state-store/{key}{query} on the Airflow API server. Clearing the task alone does not resend it"
        )


def store_limit() -> int:
    """The store's ``[state_store] max_value_storage_bytes`` (0: no limit)."""
    try:
        from airflow.sdk.configuration import conf
    except ImportError:  # before the task SDK had its own configuration
        from airflow.configuration import conf
    try:
        return max(0, conf.getint("state_store", "max_value_storage_bytes", fallback=DEFAULT_STORE_LIMIT))
    except Exception:  # an unreadable setting: keep to Airflow's default
        return DEFAULT_STORE_LIMIT


class UnreadableRecord(Exception):
    """A ledger record that cannot be read (the message says why; it never quotes the record)."""


class Records:
    """The task state store seen through the ledger's one record format (see the module's description).

    Writes are retried under :func:`~airflow_provider_signzy.retry.build_store_retrying`; a write that
    still fails raises. Reads raise :class:`UnreadableRecord` for anything but a valid record or nothing.
    """

    def __init__(self, scope: TaskScope, cipher: TokenCipher, log: Any, *, limit: int | None = None) -> None:
        self.scope = scope
        self.cipher = cipher
        self.log = log
        self.limit = store_limit() if limit is None else limit
        self._retrying = build_store_retrying(log)

    @property
    def keeps_answers(self) -> bool:
        return bool(self.cipher.encrypts)

    def _set(self, key: str, value: dict[str, Any]) -> None:
        self._retrying(self.scope.store.set, key, value)

    def write(self, key: str, kind: str, clear: dict[str, Any], content: Any) -> int:
        """Store ``content`` (JSON) under ``key`` with the ``clear`` fields; returns the bytes written."""
        raw = zlib.compress(json.dumps(content, separators=(",", ":"), default=str).encode(), 1)
        if self.keeps_answers:
            enc, data = "fernet", self.cipher.seal(raw)
        else:
            enc, data = "zlib", base64.b64encode(raw).decode()
        record: dict[str, Any] = {"v": LEDGER_VERSION, "kind": kind, **clear, "enc": enc, "data": data}
        room = self.limit - _RECORD_OVERHEAD
        if not self.limit or len(data) <= room:
            self._set(key, record)
            return len(data)
        # Too big for one value: the parts first, then the record that names them. A try that dies in
        # between leaves the old record (or none) beside parts whose digest it does not carry: unreadable,
        # so unknown, never "never sent".
        room = max(room, 1024)
        chunks = [data[i : i + room] for i in range(0, len(data), room)]
        for number, chunk in enumerate(chunks, start=1):
            self._set(f"{key}:p{number}", {"v": LEDGER_VERSION, "kind": PART, "data": chunk})
        record.update(data="", parts=len(chunks), sha256=_sha(data)[:32])
        self._set(key, record)
        return len(data)

    def read(self, key: str, kind: str) -> dict[str, Any] | None:
        """The record at ``key`` with its content under ``"content"``; None when there is none.

        Raises :class:`UnreadableRecord` when there is something that is not a readable record of ``kind``.
        """
        record = self.scope.store.get(key)
        if record is None:
            return None
        if not isinstance(record, dict):
            raise UnreadableRecord(f"it holds a {type(record).__name__}, not a ledger record")
        version = record.get("v")
        if version != LEDGER_VERSION:
            raise UnreadableRecord(
                f"it was written in ledger format {version!r}; this provider reads format {LEDGER_VERSION}"
            )
        if record.get("kind") != kind:
            raise UnreadableRecord(f"it is a {record.get('kind')!r} record, not a {kind!r} one")
        data = record.get("data")
        if record.get("parts"):
            data = "".join(self._part(key, n) for n in range(1, int(record["parts"]) + 1))
            if _sha(data)[:32] != record.get("sha256"):
                raise UnreadableRecord("its parts do not match it (a try ended while writing them)")
        if not isinstance(data, str):
            raise UnreadableRecord("it has no data")
        try:
            if record.get("enc") == "fernet":
                raw = self.cipher.unseal(data, source=f"the Signzy call ledger entry {key!r}")
            elif record.get("enc") == "zlib":
                raw = base64.b64decode(data)
            else:
                raise UnreadableRecord(f"its encoding {record.get('enc')!r} is unknown")
            content = json.loads(zlib.decompress(raw))
        except UnreadableRecord:
            raise
        except SignzyError as exc:  # no key, or another key: the message says which and how to fix it
            raise UnreadableRecord(str(exc)) from None
        except (ValueError, zlib.error) as exc:
            raise UnreadableRecord(f"its data is damaged ({type(exc).__name__})") from None
        return {**record, "content": content}

    def _part(self, key: str, number: int) -> str:
        part = self.scope.store.get(f"{key}:p{number}")
        if not isinstance(part, dict) or part.get("kind") != PART or not isinstance(part.get("data"), str):
            raise UnreadableRecord(f"its part {number} is missing or damaged")
        return str(part["data"])


# -- answers -------------------------------------------------------------------------------------------


def answer_of(response: requests.Response) -> dict[str, Any]:
    """What a replay needs of an answer (it may hold personal data: stored encrypted only)."""
    return {
        "status": response.status_code,
        "content_type": response.headers.get("Content-Type"),
        "body": response.text,
        "url": response.url.split("?", 1)[0] if response.url else "",
    }


def replayed_response(answer: dict[str, Any]) -> requests.Response:
    """A ``requests.Response`` rebuilt from :func:`answer_of`; its ``reason`` says it was replayed."""
    response = requests.Response()
    response.status_code = int(answer["status"])
    response._content = answer["body"].encode()
    response.encoding = "utf-8"
    response.headers = CaseInsensitiveDict({"Content-Type": answer.get("content_type") or "application/json"})
    response.reason = REPLAYED_REASON
    response.url = answer.get("url", "")
    return response


def failure_fields(exc: BaseException) -> dict[str, Any]:
    """What an entry keeps of a failed call: its state (``not-acted`` or ``unknown``) and why."""
    acted = signzy_acted(exc)
    status = getattr(exc, "status", None)
    # Kinds and codes only: Signzy's message of a refused call may quote the body, and so personal data.
    detail = " ".join(str(part) for part in (type(exc).__name__, status, getattr(exc, "code", None)) if part)
    return {
        "state": NOT_ACTED if acted is False else UNKNOWN,
        "finished_at": _now(),
        "status": status,
        "detail": detail,
        "may_have_acted": acted is not False,
    }


# -- single calls --------------------------------------------------------------------------------------


class LedgerEntry:
    """One paid call of one task: read once before sending, written before and after.

    It is the hook's send record (:class:`~airflow_provider_signzy.hooks.signzy.SendRecord`): the hook
    calls :meth:`sending` right before the request leaves (after the token is in hand) and
    :meth:`refused` when a 401 came back (before logging in again).
    """

    def __init__(self, records: Records, key: str, call: dict[str, Any], label: str, log: Any) -> None:
        self.records = records
        self.scope = records.scope
        self.key = key
        self.call = call
        self.label = label
        self.log = log
        self.sent_at: str | None = None

    def _unknown(self, what: str) -> SignzyOutcomeUnknownError:
        return SignzyOutcomeUnknownError(
            f"{self.label} {what}. Signzy may have acted on it, and it may have been charged, so this try does "
            "not send it again. Check in Signzy (your dashboard, or a GET of the resource) whether it was done. "
            + self.scope.resend_instructions(self.key),
            method=self.call["method"],
            conn_id=self.call.get("conn_id"),
        )

    def replay_or_clear(self) -> requests.Response | None:
        """The replayed answer of an earlier try's success; None when the call may be sent.

        Raises :class:`SignzyOutcomeUnknownError` when an earlier try may have had it acted on, or when its
        entry cannot be read.
        """
        if self.scope.try_number == 1:
            return None  # the first try of this task instance: no earlier try can have written an entry
        try:
            prior = self.records.read(self.key, CALL)
        except UnreadableRecord as why:
            raise self._unknown(f"has a ledger entry from an earlier try that cannot be read ({why})") from None
        if prior is None:
            return None
        content = prior["content"]
        state = prior.get("state")
        if state == NOT_ACTED:
            self.log.info(
                "%s was refused without effect in try %s (%s); sending it again",
                self.label,
                prior.get("try"),
                content.get("detail"),
            )
            return None
        if state == SUCCEEDED:
            return self._replay(prior["try"], content)
        if state == UNKNOWN:
            raise self._unknown(
                f"was sent by try {prior.get('try')} at {content.get('sent_at')}, and its answer never arrived "
                f"({content.get('detail')})"
            )
        if state == SENDING:
            raise self._unknown(
                f"was sent by try {prior.get('try')} at {content.get('sent_at')}, and that try ended (killed or "
                "timed out) before the answer was recorded"
            )
        raise self._unknown(f"has a ledger entry in a state this provider does not know ({state!r})")

    def _replay(self, try_number: Any, content: dict[str, Any]) -> requests.Response:
        answer = content.get("answer")
        if not answer:
            raise SignzyOutcomeUnknownError(
                f"{self.label} succeeded in try {try_number} at {content.get('finished_at')}, but its answer was "
                "not kept (no Fernet key to encrypt it), so this try cannot return it and does not send the call "
                "again. Set Airflow's [core] fernet_key or the connection's 'xcom_fernet_key'. "
                f"{self.scope.resend_instructions(self.key)}",
                method=self.call["method"],
                conn_id=self.call.get("conn_id"),
            )
        response = replayed_response(answer)
        self.log.info(
            "%s already succeeded in try %s at %s (%s): returning that answer, not sending it again",
            self.label,
            try_number,
            content.get("finished_at"),
            response.status_code,
        )
        return response

    def _write(self, state: str, **fields: Any) -> None:
        content = {**self.call, "sent_at": self.sent_at, **fields}
        self.records.write(self.key, CALL, {"state": state, "try": self.scope.try_number}, content)

    # -- the hook's send record --

    def sending(self) -> None:
        """Write "sending" durably: after this, a try that dies leaves a call of unknown outcome."""
        self.sent_at = _now()
        self._write(SENDING)

    def refused(self, exc: BaseException) -> None:
        """The call came back refused without effect (a 401) and is about to be sent again after a login."""
        self._write(NOT_ACTED, **{k: v for k, v in failure_fields(exc).items() if k not in ("state", "may_have_acted")})

    # -- outcomes --

    def succeeded(self, response: requests.Response) -> None:
        """Record the success (and its answer); when that fails, log it and carry on: the answer is in hand."""
        answer = answer_of(response) if self.records.keeps_answers else None
        try:
            self._write(SUCCEEDED, finished_at=_now(), status=response.status_code, answer=answer)
        except Exception as exc:
            self.log.warning(
                "%s succeeded (%s), but the call ledger could not record it (%s, after retries): this try "
                "returns the answer; a later try of this task will report the call as of unknown outcome and "
                "not send it again. Ledger entry %r",
                self.label,
                response.status_code,
                type(exc).__name__,
                self.key,
            )

    def failed(self, exc: BaseException) -> None:
        fields = failure_fields(exc)
        state = fields.pop("state")
        fields.pop("may_have_acted")
        try:
            self._write(state, **fields)
        except Exception as write_error:
            self.log.warning(
                "%s failed (%s), and the call ledger could not record that (%s, after retries): a later try "
                "will report the call as of unknown outcome. Ledger entry %r",
                self.label,
                fields["detail"],
                type(write_error).__name__,
                self.key,
            )


def open_entry(
    *,
    method: str,
    path: str,
    json_body: Any,
    params: Any,
    call_key: str | None,
    conn_id: str,
    cipher_factory: Callable[[], TokenCipher],
    log: Any,
) -> LedgerEntry | None:
    """The ledger entry of this call in the running task, or None where there is no task state store."""
    scope = TaskScope.current()
    if scope is None:
        return None
    digest = body_digest(json_body, params, call_key)
    shown_path = "/" + path.lstrip("/").split("?", 1)[0]
    identity = f"{method} {shown_path} {digest}"
    ordinal = scope.ordinal(identity)  # the n-th identical call of this try
    key = LEDGER_KEY_PREFIX + _sha(f"{identity} {ordinal}")[:32]
    call = {
        "method": method,
        "path_sha256": _sha(shown_path),  # a filled path may hold a customer's values: its digest only
        "body_sha256": digest,
        "ordinal": ordinal,
        "conn_id": conn_id,
    }
    label = f"Signzy {method} {shown_path} (body sha256 {digest[:12]})"
    return LedgerEntry(Records(scope, cipher_factory(), log), key, call, label, log)


def outcome_unknown(exc: SignzyError, entry: LedgerEntry | None) -> SignzyOutcomeUnknownError:
    """``exc`` restated: the call may have reached Signzy, so it is never sent again."""
    if entry is not None:
        resend = entry.scope.resend_instructions(entry.key)
    else:
        resend = (
            "There is no call ledger here (Airflow before 3.3, or outside a task): clearing the task sends it again"
        )
    unknown = exc.restated(
        SignzyOutcomeUnknownError,
        f"{exc}. The call may have reached Signzy: it may have acted on it, and it may have been charged, "
        "so it is not sent again, neither in this try nor by Airflow's retries (this error fails the task "
        f"without them). Check in Signzy (your dashboard, or a GET of the resource) whether it was done. {resend}",
    )
    assert isinstance(unknown, SignzyOutcomeUnknownError)
    unknown.cause = exc
    return unknown


def request(
    hook: SignzyHook,
    method: str,
    endpoint: str,
    *,
    token: SignzyToken | None = None,
    json: Any = None,
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    idempotent: bool | None = None,
    call_key: str | None = None,
) -> requests.Response:
    """One call through ``hook`` under the paid-call policy (``SignzyHook.request`` documents it)."""
    from airflow_provider_signzy.token import TokenCipher

    method = method.upper()
    hook.url_for(endpoint)  # a foreign URL is refused before anything is read, written or sent
    if idempotent is None:
        idempotent = method in IDEMPOTENT_METHODS
    account, shown = hook.account, metrics.endpoint_template(endpoint)
    call = {"token": token, "json": json, "params": params, "headers": headers}
    if idempotent:
        try:
            response = hook.call(method, endpoint, idempotent=True, **call)
        except SignzyError:
            account.settled(method, shown, metrics.FAILED, paid=False)
            raise
        account.settled(method, shown, metrics.SUCCEEDED, paid=False)
        return response
    entry = open_entry(
        method=method,
        path=endpoint,
        json_body=json,
        params=params,
        call_key=call_key,
        conn_id=hook.signzy_conn_id,
        cipher_factory=lambda: TokenCipher.for_connection(hook.config.extra, hook.signzy_conn_id),
        log=hook.log,
    )
    if entry is not None:
        replayed = entry.replay_or_clear()
        if replayed is not None:
            account.settled(method, shown, metrics.REPLAYED, paid=True)
            return replayed
    try:
        response = hook.call(method, endpoint, idempotent=False, record=entry, **call)
    except SignzyError as exc:
        acted = signzy_acted(exc)
        if entry is not None and entry.sent_at is not None:
            entry.failed(exc)
        if acted is not False:
            account.settled(method, shown, metrics.UNKNOWN, paid=True)
            raise outcome_unknown(exc, entry) from None
        outcome = metrics.NOT_SENT if isinstance(exc, SignzyNotSentError) else metrics.REFUSED
        account.settled(method, shown, outcome, paid=True)
        raise
    account.settled(method, shown, metrics.SUCCEEDED, paid=True)
    if entry is not None:
        entry.succeeded(response)
    return response


# -- batches -------------------------------------------------------------------------------------------

#: What a batch does with an item, given its earlier tries' entry.
SEND, REPLAY, KEEP_UNKNOWN = "send", "replay", "unknown"


def earlier_outcome(entry: dict[str, Any] | None) -> tuple[str, str | None]:
    """(what to do with a batch item, why) from its latest entry in the earlier tries (None: none)."""
    state = entry.get("state") if entry else None
    if entry is None or state == NOT_ACTED:
        return SEND, None
    if state == SUCCEEDED:
        return REPLAY, None
    what = "its answer never arrived" if state == UNKNOWN else "that try ended before its answer was recorded"
    return KEEP_UNKNOWN, (
        f"sent by try {entry.get('try')} at {entry.get('sent_at')}, and {what}: Signzy may have acted on it and "
        "it may have been charged, so it is not sent again"
    )


class BatchLedger:
    """The call ledger of one batch run in one task: one record per window of items.

    A window's entries are written once before any of its calls leaves ("sending") and once when all
    have finished, so a batch costs two store writes per window, not per call. Keys carry the batch's
    scope and the try, so a later try reads every earlier try's windows of the same scope and takes each
    call's latest entry. Items are matched by identity (method, path, body digest or ``call_key``, and
    which repeat of an identical call it is), not by position.

    The scope: ``ledger_key`` when given, else the method and the endpoint template; plus which run of that
    name this is in the try (the first batch on an endpoint, the second, ...). So a task that sends its
    items in chunks keeps one scope per chunk, and a retry matches them chunk by chunk.
    """

    def __init__(self, records: Records, scope_name: str, log: Any) -> None:
        self.records = records
        self.scope = records.scope
        self.name = scope_name
        self.log = log

    @classmethod
    def open(
        cls,
        *,
        method: str,
        endpoint: str,
        ledger_key: str | None = None,
        cipher_factory: Callable[[], TokenCipher],
        log: Any,
    ) -> BatchLedger | None:
        """The ledger of this batch run in the running task, or None where there is no task state store."""
        scope = TaskScope.current()
        if scope is None:
            return None
        base = f"key {ledger_key}" if ledger_key is not None else f"{method} {endpoint}"
        ordinal = scope.ordinal(f"batch {base}")
        name = _sha(f"{base} #{ordinal}")[:16]
        return cls(Records(scope, cipher_factory(), log), name, log)

    @property
    def keeps_answers(self) -> bool:
        return self.records.keeps_answers

    @property
    def limit(self) -> int:
        return self.records.limit

    def key(self, window: int, try_number: int | None = None) -> str:
        return f"{BATCH_KEY_PREFIX}{self.name}:t{try_number or self.scope.try_number}:w{window}"

    def earlier_entries(self) -> dict[str, dict[str, Any]]:
        """Each call's latest entry from the earlier tries of this batch (none on a first try).

        Raises :class:`SignzyOutcomeUnknownError`, before anything is sent, when a window of an earlier try
        cannot be read: which items it covered is then unknown, and none may be sent blindly.
        """
        latest: dict[str, dict[str, Any]] = {}
        for try_number in range(1, self.scope.try_number):
            window = 0
            while True:
                key = self.key(window, try_number)
                try:
                    record = self.records.read(key, WINDOW)
                    if record is None and self.records.read(self.key(window + 1, try_number), WINDOW) is not None:
                        raise UnreadableRecord(f"it is missing, but window {window + 1} of that try is there")
                except UnreadableRecord as why:
                    raise SignzyOutcomeUnknownError(
                        f"Signzy batch ledger entry {key!r} (try {try_number}, window {window}) cannot be read "
                        f"({why}). Which items it covers is unknown, and some may have been charged, so this "
                        "try sends nothing. Restore the Fernet key it was written with, or run the items you "
                        "need in a new batch (another task or run)"
                    ) from None
                if record is None:
                    break
                latest.update(record["content"])
                window += 1
        return latest

    def write(self, window: int, calls: dict[str, dict[str, Any]]) -> int:
        """Store a window's entries (answers only when they can be encrypted); returns the bytes stored."""
        if not self.keeps_answers:
            calls = {identity: {**entry, "answer": None} for identity, entry in calls.items()}
        clear = {"try": self.scope.try_number, "items": len(calls)}
        return self.records.write(self.key(window), WINDOW, clear, calls)
