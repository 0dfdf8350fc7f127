"""The call ledger: a paid Signzy call is sent at most once per task, across Airflow's own retries.

Before a non-idempotent call leaves, an entry saying "sending" (method, path, a digest of the body, the
try, the time) is written to Airflow's task state store; once the answer is in, the outcome replaces it.
The store is scoped to (DAG run, task, map index) and survives retries, heartbeat-timeout retries and
``airflow tasks clear`` (Airflow 3.3+), so a later try of the same call finds the entry and:

- ``succeeded``: does not send; the stored answer (Fernet-encrypted) is replayed as the response;
- ``not-acted`` (refused before Signzy acted: a 4xx answer, a rate limit, a connection never made): sends;
- ``sending`` (the try died mid-call) or ``unknown`` (lost answer, read timeout, 5xx): does not send and
  fails the task without retries (:class:`~airflow_provider_signzy.exceptions.SignzyOutcomeUnknownError`).

A different body (or ``call_key``) is a different call. The n-th identical call of a try matches the n-th
of the next try, so a task that sends the same call twice on purpose keeps both. Before Airflow 3.3 there
is no store: an unknown outcome still fails the task without retries, but a worker killed mid-call is
retried by Airflow and the call is sent again (the README's table says what holds where).
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import requests
from requests.structures import CaseInsensitiveDict

from airflow_provider_signzy.exceptions import (
    SignzyConnectionError,
    SignzyError,
    SignzyOutcomeUnknownError,
    SignzyServerError,
)

if TYPE_CHECKING:
    from airflow_provider_signzy.token import TokenCipher

LEDGER_KEY_PREFIX = "signzy-call:"
LEDGER_VERSION = 1
SENDING, SUCCEEDED, NOT_ACTED, UNKNOWN = "sending", "succeeded", "not-acted", "unknown"
#: ``Response.reason`` of an answer replayed from the ledger instead of sent.
REPLAYED_REASON = "Replayed from the Signzy call ledger"

_ordinals: dict[tuple[Any, str], int] = {}
_ordinals_lock = threading.Lock()


def body_digest(json_body: Any, params: Any, call_key: str | None) -> str:
    """SHA-256 of the canonical JSON of the body and query parameters (or of ``call_key``)."""
    material = {"call_key": call_key} if call_key is not None else {"json": json_body, "params": params}
    canonical = json.dumps(material, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def signzy_acted(exc: BaseException) -> bool | None:
    """False when Signzy provably did not act on a call that failed with ``exc``; None when unknown."""
    if isinstance(exc, SignzyConnectionError):
        return None if exc.reached_server else False
    if isinstance(exc, SignzyServerError):
        return None
    if isinstance(exc, SignzyError):
        return False  # an answer that refused the call: 4xx, a rate limit, a permission or config problem
    return None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


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

    def resend_instructions(self, key: str) -> str:
        query = f"?map_index={self.map_index}" if self.map_index >= 0 else ""
        return (
            "To send it again on purpose, delete this call's ledger entry, then clear the task: "
            f"DELETE /api/v2/dags/{self.dag_id}/dagRuns/{self.run_id}/taskInstances/{self.task_id}"
            f"/state-store/{key}{query} on the Airflow API server. Clearing the task alone does not resend it"
        )


class LedgerEntry:
    """One paid call of one task: read once before sending, written before and after."""

    def __init__(self, scope: TaskScope, key: str, call: dict[str, Any], cipher: TokenCipher, log: Any) -> None:
        self.scope = scope
        self.key = key
        self.call = call
        self.cipher = cipher
        self.log = log

    @property
    def label(self) -> str:
        return f"Signzy {self.call['method']} {self.call['path']} (body sha256 {self.call['body_sha256'][:12]})"

    def replay_or_clear(self) -> requests.Response | None:
        """The replayed answer of an earlier try's success; None when the call may be sent.

        Raises :class:`SignzyOutcomeUnknownError` when an earlier try may have had it acted on.
        """
        if self.scope.try_number == 1:
            return None  # the first try of this task instance: no earlier try can have written an entry
        prior = self.scope.store.get(self.key)
        if not isinstance(prior, dict):
            return None
        state = prior.get("state")
        if state == NOT_ACTED:
            self.log.info(
                "%s was refused without effect in try %s (%s); sending it again",
                self.label,
                prior.get("try"),
                prior.get("detail"),
            )
            return None
        if state == SUCCEEDED:
            return self._replay(prior)
        what = (
            f"its answer never arrived ({prior.get('detail')})"
            if state == UNKNOWN
            else "that try ended (killed or timed out) before the answer was recorded"
        )
        raise SignzyOutcomeUnknownError(
            f"{self.label} was sent by try {prior.get('try')} at {prior.get('sent_at')}, and {what}. Signzy "
            "may have acted on it, and it may have been charged, so this try does not send it again. Check in "
            "Signzy (your dashboard, or a GET of the resource) whether it was done. "
            + self.scope.resend_instructions(self.key),
            method=self.call["method"],
            path=self.call["path"],
            conn_id=self.call.get("conn_id"),
        )

    def _replay(self, prior: dict[str, Any]) -> requests.Response:
        sealed = prior.get("answer")
        if not sealed:
            raise SignzyOutcomeUnknownError(
                f"{self.label} succeeded in try {prior.get('try')} at {prior.get('finished_at')}, but its "
                "answer was not kept (no Fernet key to encrypt it), so this try cannot return it and does "
                "not send the call again. Set Airflow's [core] fernet_key or the connection's "
                f"'xcom_fernet_key'. {self.scope.resend_instructions(self.key)}",
                method=self.call["method"],
                path=self.call["path"],
                conn_id=self.call.get("conn_id"),
            )
        response = unseal_answer(sealed, self.cipher, source=f"the Signzy call ledger entry {self.key!r}")
        self.log.info(
            "%s already succeeded in try %s at %s (%s): returning that answer, not sending it again",
            self.label,
            prior.get("try"),
            prior.get("finished_at"),
            response.status_code,
        )
        return response

    def _write(self, state: str, **fields: Any) -> None:
        record = {"v": LEDGER_VERSION, **self.call, "state": state, **fields}
        self.scope.store.set(self.key, record)

    def sending(self) -> None:
        """Write "sending" durably: after this, a try that dies leaves a call of unknown outcome."""
        self.sent_at = _now()
        self._write(SENDING, sent_at=self.sent_at)

    def succeeded(self, response: requests.Response) -> None:
        self._write(SUCCEEDED, sent_at=self.sent_at, **success_fields(response, self.cipher))

    def failed(self, exc: BaseException) -> bool:
        """Record a failed call's outcome; True when Signzy may have acted on it."""
        fields = failure_fields(exc)
        self._write(fields.pop("state"), sent_at=self.sent_at, **fields)
        return fields["may_have_acted"] is True


def answer_of(response: requests.Response) -> dict[str, Any]:
    """What a replay needs of an answer (it may hold personal data: store it encrypted only)."""
    return {
        "status": response.status_code,
        "content_type": response.headers.get("Content-Type"),
        "body": response.text,
        "url": response.url.split("?", 1)[0] if response.url else "",
    }


def success_fields(response: requests.Response, cipher: TokenCipher) -> dict[str, Any]:
    """What an entry keeps of a successful call: its answer, Fernet-encrypted (none without a key)."""
    answer = cipher.encrypt(json.dumps(answer_of(response))) if cipher.encrypts else None
    return {"finished_at": _now(), "status": response.status_code, "answer": answer}


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


def unseal_answer(sealed: str, cipher: TokenCipher, *, source: str) -> requests.Response:
    """The ``requests.Response`` of a stored, encrypted answer; its ``reason`` says it was replayed."""
    return replayed_response(json.loads(cipher.decrypt(sealed, source=source)))


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


def open_entry(
    *,
    method: str,
    path: str,
    json_body: Any,
    params: Any,
    call_key: str | None,
    conn_id: str,
    cipher_factory: Any,
    log: Any,
) -> LedgerEntry | None:
    """The ledger entry of this call in the running task, or None where there is no task state store."""
    scope = TaskScope.current()
    if scope is None:
        return None
    digest = body_digest(json_body, params, call_key)
    shown_path = "/" + path.lstrip("/").split("?", 1)[0]
    identity = f"{method} {shown_path} {digest}"
    with _ordinals_lock:  # the n-th identical call of this try
        ordinal = _ordinals[(scope.store, identity)] = _ordinals.get((scope.store, identity), 0) + 1
    key = LEDGER_KEY_PREFIX + hashlib.sha256(f"{identity} {ordinal}".encode()).hexdigest()[:32]
    call = {
        "method": method,
        "path": shown_path,
        "body_sha256": digest,
        "ordinal": ordinal,
        "try": scope.try_number,
        "conn_id": conn_id,
    }
    return LedgerEntry(scope, key, call, cipher_factory(), log)


def call_identity(method: str, path: str, json_body: Any, params: Any, call_key: str | None = None) -> str:
    """A call's name in the ledger: method, path without query string, and the body's digest."""
    shown_path = "/" + path.lstrip("/").split("?", 1)[0]
    return hashlib.sha256(f"{method} {shown_path} {body_digest(json_body, params, call_key)}".encode()).hexdigest()


class BatchLedger:
    """The call ledger of a batch of calls in one task: one store key per window of items.

    A window's entries are written once before any of its calls leaves ("sending") and once when all
    have finished, so a batch costs two store writes per window, not per call. Keys carry the try, so a
    later try reads every earlier try's windows and takes each call's latest entry. Items are matched by
    identity (method, path, body digest, and which repeat of an identical call it is), not by position.
    A window is stored as one Fernet-encrypted string (answers included), which the store handles far
    faster than thousands of small JSON objects; without a key it is plain JSON without the answers.
    """

    def __init__(self, scope: TaskScope, batch: str, cipher: TokenCipher, log: Any) -> None:
        self.scope = scope
        self.batch = batch
        self.cipher = cipher
        self.log = log

    @classmethod
    def open(cls, *, method: str, endpoint: str, cipher_factory: Any, log: Any) -> BatchLedger | None:
        """The running task's batch ledger, or None where there is no task state store."""
        scope = TaskScope.current()
        if scope is None:
            return None
        batch = hashlib.sha256(f"{method} {endpoint}".encode()).hexdigest()[:16]
        return cls(scope, batch, cipher_factory(), log)

    def key(self, window: int, try_number: int | None = None) -> str:
        return f"signzy-batch:{self.batch}:t{try_number or self.scope.try_number}:w{window}"

    def earlier_entries(self) -> dict[str, dict[str, Any]]:
        """Each call's latest entry from the earlier tries of this task (none on a first try)."""
        latest: dict[str, dict[str, Any]] = {}
        for try_number in range(1, self.scope.try_number):
            window = 0
            while isinstance(record := self.scope.store.get(key := self.key(window, try_number)), dict):
                if "sealed" in record:
                    text = self.cipher.decrypt(record["sealed"], source=f"the Signzy batch ledger entry {key!r}")
                else:
                    text = record.get("plain", "{}")
                latest.update(json.loads(text))
                window += 1
        return latest

    def write(self, window: int, calls: dict[str, dict[str, Any]]) -> None:
        """Store a window's entries; an entry's ``answer`` is :func:`answer_of`, kept only encrypted."""
        if self.cipher.encrypts:
            record = {"v": LEDGER_VERSION, "sealed": self.cipher.encrypt(json.dumps(calls))}
        else:
            stripped = {identity: {**entry, "answer": None} for identity, entry in calls.items()}
            record = {"v": LEDGER_VERSION, "plain": json.dumps(stripped)}
        self.scope.store.set(self.key(window), record)
