"""Sealed values: what the provider puts in XCom instead of Signzy's answers in the clear.

A sealed value is a JSON object: the allow-listed fields (``id``, ``status`` by default; scalars only)
in the clear, so ``{{ ti.xcom_pull(task_ids='create')['id'] }}`` keeps working, and everything under
``signzy_sealed``, compressed and Fernet-encrypted with the connection's ``xcom_fernet_key`` (else
Airflow's ``[core] fernet_key``; several keys rotate, as Airflow's own)::

    {"id": "4f2c...", "status": "initiated",
     "signzy_sealed": {"v": 1, "conn_id": "signzy_default", "data": "gAAAAAB..."}}

A list answer becomes a list of sealed items (its length and each item's ``id`` stay readable).
:func:`unseal` opens any structure that holds sealed values, anywhere inside it, and leaves the rest.

Why not Airflow's XCom serialization: a class it deserializes by itself must be listed in ``[core]
allowed_deserialization_classes`` on every worker, and a transparent open would put the answer in the
clear into every template that pulls it (rendered fields are stored). Opening is explicit instead.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_signzy.exceptions import SignzyConfigError
from airflow_provider_signzy.utils.connection_form import DEFAULT_CONN_ID

if TYPE_CHECKING:
    from airflow_provider_signzy.utils.fernet_cipher import SignzyCipher

#: The key that marks a sealed value, and the version of its format.
SEAL_KEY = "signzy_sealed"
SEAL_VERSION = 1
#: ``result_privacy`` values: sealed (the default) or plain (for endpoints whose answers hold no personal data).
SEALED, PLAIN = "sealed", "plain"
RESULT_PRIVACY = (SEALED, PLAIN)
#: Fields kept in the clear by default: what downstream templates need, never personal data.
DEFAULT_CLEAR_FIELDS: tuple[str, ...] = ("id", "status")

_SCALARS = (str, int, float, bool, type(None))


def check_privacy(result_privacy: str, clear_fields: Sequence[str] | None) -> tuple[str, tuple[str, ...]]:
    """Validate an operator's arguments at DAG parse time; returns them normalized."""
    if result_privacy not in RESULT_PRIVACY:
        raise ValueError(f"result_privacy must be one of {RESULT_PRIVACY}, got {result_privacy!r}")
    fields = DEFAULT_CLEAR_FIELDS if clear_fields is None else clear_fields
    if isinstance(fields, str) or not all(isinstance(f, str) for f in fields):
        raise ValueError(f"clear_fields must be a list of field names, got {clear_fields!r}")
    if SEAL_KEY in fields:
        raise ValueError(f"clear_fields cannot name {SEAL_KEY!r}: that key holds the sealed value")
    return result_privacy, tuple(fields)


def is_sealed(value: object) -> bool:
    """True for a value :meth:`ResultSealer.seal` made (one sealed item, not a list of them)."""
    if not isinstance(value, Mapping):
        return False
    inner = value.get(SEAL_KEY)
    return isinstance(inner, Mapping) and "data" in inner


class ResultSealer:
    """Seals what one task stores, with one connection's keys.

    Build it with :meth:`for_connection` before a task sends anything: without a key it refuses,
    so no call is paid for and then its answer refused.
    """

    def __init__(
        self,
        cipher: SignzyCipher | None,
        *,
        conn_id: str,
        result_privacy: str = SEALED,
        clear_fields: Sequence[str] = DEFAULT_CLEAR_FIELDS,
    ) -> None:
        self.cipher = cipher
        self.conn_id = conn_id
        self.result_privacy = result_privacy
        self.clear_fields = tuple(clear_fields)

    @classmethod
    def for_connection(
        cls,
        conn_id: str,
        extra: Mapping[str, Any],
        *,
        result_privacy: str = SEALED,
        clear_fields: Sequence[str] = DEFAULT_CLEAR_FIELDS,
        task: str | None = None,
    ) -> ResultSealer:
        """A sealer for ``conn_id``; raises :class:`SignzyConfigError` when sealing is asked and no key exists."""
        if result_privacy == PLAIN:
            return cls(None, conn_id=conn_id, result_privacy=PLAIN, clear_fields=clear_fields)
        from airflow_provider_signzy.utils.fernet_cipher import SignzyCipher

        cipher = SignzyCipher.for_connection(extra, conn_id)
        if not cipher.encrypts:
            who = f"Task {task!r}" if task else "This task"
            raise SignzyConfigError(
                f"{who} would store Signzy's answers, which hold customers' personal data, in the clear: there "
                "is no Fernet key to seal them with. Set Airflow's [core] fernet_key (AIRFLOW__CORE__FERNET_KEY) "
                f"on every component, or the extra 'xcom_fernet_key' of connection {conn_id!r}; or, for an "
                "endpoint whose answers hold no personal data, pass result_privacy='plain'",
                conn_id=conn_id,
            )
        return cls(cipher, conn_id=conn_id, result_privacy=SEALED, clear_fields=clear_fields)

    @classmethod
    def for_task(cls, task: Any, extra: Mapping[str, Any]) -> ResultSealer:
        """The sealer of an operator or sensor with ``signzy_conn_id``, ``result_privacy`` and ``clear_fields``."""
        return cls.for_connection(
            task.signzy_conn_id,
            extra,
            result_privacy=task.result_privacy,
            clear_fields=task.clear_fields,
            task=task.task_id,
        )

    @property
    def seals(self) -> bool:
        return self.result_privacy == SEALED

    def seal(self, value: Any) -> Any:
        """``value`` as it may be stored: sealed (a list item by item), or as is when plain or None."""
        if not self.seals or value is None:
            return value
        if isinstance(value, list | tuple):
            return [self._seal_one(item) for item in value]
        return self._seal_one(value)

    def _seal_one(self, value: Any) -> Any:
        if value is None or is_sealed(value):
            return value
        assert self.cipher is not None
        sealed: dict[str, Any] = {}
        if isinstance(value, Mapping):
            sealed = {f: value[f] for f in self.clear_fields if f in value and isinstance(value[f], _SCALARS)}
        data = zlib.compress(json.dumps(value, separators=(",", ":"), default=str).encode())
        sealed[SEAL_KEY] = {"v": SEAL_VERSION, "conn_id": self.conn_id, "data": self.cipher.seal(data)}
        return sealed


def cipher_for(conn_id: str) -> SignzyCipher:
    """The Fernet keys of connection ``conn_id`` (its ``xcom_fernet_key``, else Airflow's)."""
    from airflow_provider_signzy.utils.connection_config import _extra_dict, read_connection
    from airflow_provider_signzy.utils.fernet_cipher import SignzyCipher

    return SignzyCipher.for_connection(_extra_dict(read_connection(conn_id), conn_id), conn_id)


def seal(
    value: Any,
    *,
    signzy_conn_id: str = DEFAULT_CONN_ID,
    clear_fields: Sequence[str] = DEFAULT_CLEAR_FIELDS,
) -> Any:
    """Seal ``value`` as the operators seal their results: for a TaskFlow task that returns customers' data
    (request bodies for a batch, say). The provider's operators open sealed inputs by themselves."""
    _, fields = check_privacy(SEALED, clear_fields)
    cipher = cipher_for(signzy_conn_id)
    if not cipher.encrypts:
        raise SignzyConfigError(
            "No Fernet key to seal personal data with: set Airflow's [core] fernet_key or the extra "
            f"'xcom_fernet_key' of connection {signzy_conn_id!r}",
            conn_id=signzy_conn_id,
        )
    return ResultSealer(cipher, conn_id=signzy_conn_id, clear_fields=fields).seal(value)


def unseal(value: Any, *, signzy_conn_id: str | None = None, cipher: SignzyCipher | None = None) -> Any:
    """``value`` with every sealed value inside it opened (anything else is returned as it is).

    Each sealed value names the connection whose keys sealed it; ``signzy_conn_id`` overrides that (a
    connection with the same keys under another name). ``cipher``: open with these keys instead of looking
    the connection up (the triggerer's event loop must not). Raises :class:`SignzyConfigError` when the
    keys here cannot open it.
    """
    if not has_sealed(value):
        return value  # the common plain case: no copy
    ciphers: dict[str, SignzyCipher] = {}

    def open_one(sealed: Mapping[str, Any]) -> Any:
        inner = sealed[SEAL_KEY]
        conn_id = signzy_conn_id or str(inner.get("conn_id") or DEFAULT_CONN_ID)
        if inner.get("v") != SEAL_VERSION:
            raise SignzyConfigError(
                f"A sealed Signzy value has format version {inner.get('v')!r}; this provider reads version "
                f"{SEAL_VERSION}: upgrade airflow-provider-signzy on this worker",
                conn_id=conn_id,
            )
        if conn_id not in ciphers:
            ciphers[conn_id] = cipher or cipher_for(conn_id)
        what = f"a value sealed for connection {conn_id!r}"
        raw = ciphers[conn_id].unseal(str(inner["data"]), source="XCom", what=what)
        return json.loads(zlib.decompress(raw))

    def walk(item: Any) -> Any:
        if isinstance(item, Mapping):
            if is_sealed(item):
                return open_one(item)
            return {key: walk(v) for key, v in item.items()}
        if isinstance(item, list | tuple):
            return [walk(v) for v in item]
        return item

    return walk(value)


def has_sealed(value: Any) -> bool:
    """True when ``value`` holds a sealed value anywhere (cheap for the common plain case)."""
    if isinstance(value, Mapping):
        return is_sealed(value) or any(has_sealed(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(has_sealed(v) for v in value)
    return False
