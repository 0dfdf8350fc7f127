"""The Signzy access token: parsed from the login answer, with its expiry and its XCom form."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_signzy.exceptions import SignzyConfigError, SignzyResponseError

if TYPE_CHECKING:
    from collections.abc import Mapping

#: LoopBack's (and so Signzy's) default token lifetime: 14 days.
DEFAULT_TTL_SECONDS = 1_209_600
#: Version tag of the XCom record, so a later release can still read today's records.
XCOM_RECORD_VERSION = 1


def parse_ttl(value: object) -> int:
    """Read a ``ttl`` leniently: Signzy has documented it both as a number and as a string."""
    if value is None or value == "":
        return DEFAULT_TTL_SECONDS
    if isinstance(value, bool):
        raise ValueError("ttl is a boolean")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise ValueError(f"ttl {value!r} is not a number") from None
    else:
        raise ValueError(f"ttl has type {type(value).__name__}")
    if not math.isfinite(number) or number <= 0:
        raise ValueError("ttl is not a positive number of seconds")
    return int(number)


def _parse_created(value: object, fallback: datetime) -> datetime:
    if not isinstance(value, str) or not value:
        return fallback
    try:
        created = datetime.fromisoformat(value)
    except ValueError:
        return fallback
    return created if created.tzinfo else created.replace(tzinfo=UTC)


@dataclass(frozen=True)
class SignzyToken:
    """A Signzy access token (the login answer's ``id``) and what is known about it.

    ``expires_at`` is counted from the moment the login request was sent, on this machine's clock,
    so a server clock that runs ahead or behind cannot make a dead token look alive.
    """

    id: str = field(repr=False)
    user_id: str
    ttl: int
    created: datetime
    expires_at: datetime
    conn_id: str | None = None

    @classmethod
    def from_login_response(cls, body: object, *, sent_at: datetime, conn_id: str | None = None) -> SignzyToken:
        """Build a token from the JSON body of ``POST /api/v2/patrons/login``."""
        where = f" (connection {conn_id!r})" if conn_id else ""
        if not isinstance(body, dict):
            raise SignzyResponseError(
                f"Signzy login answered with a {type(body).__name__}, not the login object{where}",
                conn_id=conn_id,
            )
        token_id = body.get("id")
        user_id = body.get("userId")
        missing = [
            name
            for name, value in (("id", token_id), ("userId", user_id))
            if not isinstance(value, str | int) or value == ""
        ]
        if missing:
            raise SignzyResponseError(
                f"Signzy login answer lacks {', '.join(repr(m) for m in missing)}: it is not the login "
                f"shape {{id, ttl, created, userId}}{where}",
                conn_id=conn_id,
            )
        try:
            ttl = parse_ttl(body.get("ttl"))
        except ValueError as exc:
            raise SignzyResponseError(
                f"Signzy login answer has an unreadable 'ttl': {exc}{where}", conn_id=conn_id
            ) from None
        return cls(
            id=str(token_id),
            user_id=str(user_id),
            ttl=ttl,
            created=_parse_created(body.get("created"), sent_at),
            expires_at=sent_at + timedelta(seconds=ttl),
            conn_id=conn_id,
        )

    def seconds_left(self, now: datetime | None = None) -> float:
        """Seconds until expiry (negative once expired)."""
        return (self.expires_at - (now or datetime.now(UTC))).total_seconds()

    def needs_refresh(self, now: datetime | None = None) -> bool:
        """True when less than a tenth of the lifetime (at most a minute) is left."""
        return self.seconds_left(now) <= min(60.0, self.ttl / 10)

    def to_xcom(self, cipher: TokenCipher) -> dict[str, Any]:
        """The record pushed to XCom: metadata in the clear, the token itself encrypted."""
        return {
            "version": XCOM_RECORD_VERSION,
            "conn_id": self.conn_id,
            "user_id": self.user_id,
            "ttl": self.ttl,
            "created": self.created.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "encrypted": cipher.encrypts,
            "token": cipher.encrypt(self.id),
        }

    @classmethod
    def from_xcom(cls, record: object, cipher: TokenCipher, *, source: str) -> SignzyToken:
        """Read a record written by :meth:`to_xcom`; ``source`` names where it came from, for errors."""
        if not isinstance(record, dict) or not {"token", "user_id", "expires_at"} <= record.keys():
            raise SignzyConfigError(
                f"{source} did not hold a Signzy token record (got {type(record).__name__}); "
                "point login_task_id at a SignzyLoginOperator task"
            )
        conn_id = record.get("conn_id")
        if record.get("encrypted"):
            token_id = cipher.decrypt(str(record["token"]), source=source)
        else:
            token_id = str(record["token"])
        try:
            expires_at = datetime.fromisoformat(str(record["expires_at"]))
            created = datetime.fromisoformat(str(record.get("created") or record["expires_at"]))
            ttl = parse_ttl(record.get("ttl"))
        except ValueError:
            raise SignzyConfigError(f"{source} holds a token record with unreadable dates or ttl") from None
        return cls(
            id=token_id,
            user_id=str(record["user_id"]),
            ttl=ttl,
            created=created,
            expires_at=expires_at,
            conn_id=str(conn_id) if conn_id else None,
        )


class TokenCipher:
    """Encrypts the token for XCom with Fernet.

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
    def for_connection(cls, extra: Mapping[str, Any], conn_id: str) -> TokenCipher:
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
        raise SignzyConfigError(f"Airflow's [core] fernet_key cannot be used: {exc}") from None
