"""Fernet sealing for everything the provider stores: the token in XCom, sealed results, ledger answers.

One key source for all of them: the connection's ``xcom_fernet_key`` extra (several keys, comma separated,
rotate like Airflow's own), else Airflow's ``[core] fernet_key``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_signzy.exceptions import SignzyConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping


class SignzyCipher:
    """Encrypts what the provider stores (the token, sealed results, ledger answers) with Fernet.

    The key is the connection's ``xcom_fernet_key`` extra (several keys, comma separated, rotate like
    Airflow's own), else Airflow's ``[core] fernet_key``. Without either, tokens are stored in the clear
    and :attr:`encrypts` is False, so callers can warn.
    """

    def __init__(self, fernet: Any | None, *, key_source: str) -> None:
        self._fernet = fernet
        self.key_source = key_source

    @property
    def encrypts(self) -> bool:
        return self._fernet is not None

    @classmethod
    def for_connection(cls, extra: Mapping[str, Any], conn_id: str) -> SignzyCipher:
        # cryptography is imported here, not at module level: DAG files that only import the
        # operators should not pay for it at parse time.
        key = extra.get("xcom_fernet_key")
        if key:
            from cryptography.fernet import Fernet, MultiFernet

            try:
                fernet = MultiFernet([Fernet(part.strip().encode()) for part in str(key).split(",")])
            except (ValueError, TypeError):
                raise SignzyConfigError(
                    f"Connection {conn_id!r}: extra 'xcom_fernet_key' is not a valid Fernet key "
                    "(32 url-safe base64-encoded bytes; make one with `python -c 'from "
                    "cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`)",
                    conn_id=conn_id,
                ) from None
            return cls(fernet, key_source=f"connection {conn_id!r} extra 'xcom_fernet_key'")
        airflow_fernet = _airflow_fernet()
        unmarked = airflow_fernet is not None and not getattr(airflow_fernet, "is_encrypted", False)
        if unmarked and type(airflow_fernet).__name__ != "NullFernet":
            from airflow_provider_signzy.utils.dependency_guard import known_dependency_break

            broken = known_dependency_break()  # a key is set, but a dependency break left it unmarked
            if broken is not None:
                raise SignzyConfigError(broken, conn_id=conn_id)
        if airflow_fernet is not None and getattr(airflow_fernet, "is_encrypted", False):
            return cls(airflow_fernet, key_source="Airflow [core] fernet_key")
        return cls(None, key_source="none")

    def encrypt(self, value: str) -> str:
        if self._fernet is None:
            return value
        return self._fernet.encrypt(value.encode()).decode()

    def seal(self, data: bytes) -> str:
        """Encrypt bytes (only when :attr:`encrypts`; callers keep nothing secret otherwise)."""
        assert self._fernet is not None, "no Fernet key to seal with"
        return str(self._fernet.encrypt(data).decode())

    def unseal(self, value: str, *, source: str, what: str = "a sealed Signzy record") -> bytes:
        return self.decrypt_bytes(value, source=source, what=what)

    def decrypt(self, value: str, *, source: str) -> str:
        return self.decrypt_bytes(value, source=source).decode()

    def decrypt_bytes(self, value: str, *, source: str, what: str = "a Signzy token") -> bytes:
        if self._fernet is None:
            raise SignzyConfigError(
                f"{source} holds {what}, encrypted, but this worker has no key to read it: set the "
                "same [core] fernet_key (or the connection's 'xcom_fernet_key') on every Airflow component"
            )
        from cryptography.fernet import InvalidToken

        try:
            return bytes(self._fernet.decrypt(value.encode()))
        except (InvalidToken, ValueError, TypeError):
            raise SignzyConfigError(
                f"{source} holds {what} that {self.key_source} cannot decrypt: it was encrypted "
                "under another key or changed after it was written. Use the same key on every Airflow "
                "component, then run the DAG again"
            ) from None


def _airflow_fernet() -> Any | None:
    try:
        from airflow.sdk.crypto import get_fernet
    except ImportError:  # Airflow 2.x
        try:
            from airflow.models.crypto import get_fernet
        except ImportError:
            return None
    try:
        return get_fernet()
    except Exception as exc:  # a malformed key must not silently downgrade to plain storage
        from airflow_provider_signzy.utils.dependency_guard import known_dependency_break

        reason = known_dependency_break() or f"Airflow's [core] fernet_key cannot be used: {exc}"
        raise SignzyConfigError(reason) from None
