"""The Signzy access token: parsed from the login answer, with its expiry and its XCom form."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_signzy.exceptions import SignzyConfigError, SignzyResponseError

if TYPE_CHECKING:
    from airflow_provider_signzy.utils.fernet_cipher import SignzyCipher

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

    def to_xcom(self, cipher: SignzyCipher) -> dict[str, Any]:
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
    def from_xcom(cls, record: object, cipher: SignzyCipher, *, source: str) -> SignzyToken:
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
