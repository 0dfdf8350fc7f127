"""The login exchange, shared by the hook (requests) and the triggerer's client (httpx)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_signzy.exceptions import (
    SignzyAuthError,
    SignzyError,
    SignzyLoginRefusedError,
    SignzyResponseError,
)
from airflow_provider_signzy.utils.access_token import SignzyToken

if TYPE_CHECKING:
    from datetime import datetime

    from airflow_provider_signzy.utils.connection_config import SignzyConnectionConfig


class LoginBody(dict[str, Any]):
    """The login JSON, whose repr hides the API key.

    Airflow 3.0's console renders a task's exception with rich, showing each frame's local variables: a
    plain dict here (held by ``login``, ``_send`` and the retry frames) would print the key there.
    """

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{k!r}: {'***' if k == 'password' else v!r}" for k, v in self.items()) + "}"


def login_body(config: SignzyConnectionConfig, ttl: int | None) -> LoginBody:
    """``POST login``'s body; ``ttl`` defaults to the connection's ``token_ttl`` (one hour if unset)."""
    return LoginBody(
        username=config.username,
        password=config.api_key,
        ttl=int(ttl) if ttl is not None else config.token_ttl,
    )


def refused_login(exc: SignzyAuthError, config: SignzyConnectionConfig) -> SignzyError:
    """A 401 on login, restated so it says which credentials to check."""
    return exc.restated(
        SignzyLoginRefusedError,
        f"Signzy refused the login of user {config.username!r}: {exc.status} {exc.code or ''} "
        f"{exc.signzy_message}. Check the Username and API key of connection {config.conn_id!r} (no retry: "
        "the same credentials would be refused again)",
    )


def token_from_answer(response: Any, config: SignzyConnectionConfig, *, sent_at: datetime) -> SignzyToken:
    """The token in a 2xx login answer (a ``requests`` or ``httpx`` response)."""
    try:
        payload = response.json()
    except ValueError:
        raise SignzyResponseError(
            f"Signzy login answered {response.status_code} with a body that is not JSON "
            f"(connection {config.conn_id!r}, Base URL {config.base_url})",
            status=response.status_code,
            conn_id=config.conn_id,
        ) from None
    return SignzyToken.from_login_response(payload, sent_at=sent_at, conn_id=config.conn_id)
