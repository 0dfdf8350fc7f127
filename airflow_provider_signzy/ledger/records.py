"""The ledger's records: where they live (the task's state store), their one format, and its reading.

See :mod:`airflow_provider_signzy.ledger` for the format and the policy it serves.
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

from airflow_provider_signzy.exceptions import (
    SignzyConnectionError,
    SignzyError,
    SignzyServerError,
)
from airflow_provider_signzy.utils.retry_policy import build_store_retrying

if TYPE_CHECKING:
    from airflow_provider_signzy.utils.fernet_cipher import SignzyCipher

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

    Writes are retried under :func:`~airflow_provider_signzy.utils.retry_policy.build_store_retrying`; a write that
    still fails raises. Reads raise :class:`UnreadableRecord` for anything but a valid record or nothing.
    """

    def __init__(self, scope: TaskScope, cipher: SignzyCipher, log: Any, *, limit: int | None = None) -> None:
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
