"""SignzyAsyncHook: Signzy calls on an event loop (the triggerer), beside the sync :class:`SignzyHook`.

``httpx.AsyncClient`` with the hook's retry policy. Built from a connection the caller has read (the
triggerer must read it without blocking its loop: ``triggers/shared_login.py`` does, once per connection).

The retry policy is the hook's own (:mod:`airflow_provider_signzy.utils.retry_policy`) through tenacity's
``AsyncRetrying``; errors are the hook's :class:`SignzyError` subclasses, built from the same envelope.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx

from airflow_provider_signzy import __version__
from airflow_provider_signzy.exceptions import SignzyAuthError, SignzyConnectionError
from airflow_provider_signzy.privacy.http_logs import strip_httpx_query_strings
from airflow_provider_signzy.utils.access_token import SignzyToken
from airflow_provider_signzy.utils.error_envelope import connection_error, error_from_response
from airflow_provider_signzy.utils.login_exchange import login_body, refused_login, token_from_answer
from airflow_provider_signzy.utils.retry_policy import build_async_retrying

if TYPE_CHECKING:
    from tenacity import AsyncRetrying

    from airflow_provider_signzy.utils.connection_config import SignzyConnectionConfig


def error_from_httpx(
    exc: httpx.HTTPError, *, method: str, path: str, conn_id: str, timeout: float
) -> SignzyConnectionError:
    """A :class:`SignzyConnectionError` saying whether the request may have reached Signzy.

    Built from the failure's kind only: ``str(exc)`` may repeat the URL and its query string.
    """
    reached_server, transient = True, True
    if isinstance(exc, httpx.ConnectTimeout):
        what, reached_server = "no connection within the connect timeout", False
    elif isinstance(exc, httpx.ConnectError):
        what, reached_server = "the connection could not be opened (refused, unknown host or TLS)", False
    elif isinstance(exc, httpx.PoolTimeout):
        what, reached_server = "no free connection in the pool", False
    elif isinstance(exc, httpx.TimeoutException):
        what = f"no answer within {timeout:g}s (read timeout)"
    elif isinstance(exc, httpx.TransportError):
        what = "the connection broke before the answer arrived"
    else:
        what, transient = f"the request failed ({type(exc).__name__})", False
    return connection_error(
        what, reached_server=reached_server, transient=transient, method=method, path=path, conn_id=conn_id
    )


class SignzyAsyncHook:
    """Login, logout and authenticated calls for one connection, on the running event loop."""

    def __init__(self, config: SignzyConnectionConfig, *, log: Any) -> None:
        self.config = config
        self.log = log
        # httpx logs each request's full URL at INFO (shown on Airflow 3.0): the query string may hold the
        # token (token_in: query) or a customer's data (a sensor's query_params).
        strip_httpx_query_strings()
        self.http = httpx.AsyncClient(
            headers={"Accept": "application/json", "User-Agent": f"airflow-provider-signzy/{__version__}"},
            verify=config.verify,
            timeout=httpx.Timeout(config.timeout, connect=config.connect_timeout),
            follow_redirects=False,
        )
        self._retrying: dict[bool, AsyncRetrying] = {
            idempotent: build_async_retrying(
                max_attempts=config.max_attempts,
                initial=config.backoff_initial,
                maximum=config.backoff_max,
                idempotent=idempotent,
                log=log,
            )
            for idempotent in (True, False)
        }

    async def send(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        token: SignzyToken | None = None,
        json: Any = None,
        params: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """One call under the retry policy: a 2xx answer, or the :class:`SignzyError` that fits."""
        url = self.config.url_for(path)
        shown_path = "/" + path.lstrip("/").split("?", 1)[0]
        headers: dict[str, str] = {}
        params = dict(params or {})
        if token is not None:
            if self.config.token_in == "query":
                params["access_token"] = token.id
            else:
                headers["Authorization"] = token.id
        request = {"headers": headers, "json": json, "params": params or None}
        response: httpx.Response = await self._retrying[idempotent](self._attempt, method, shown_path, url, request)
        return response

    async def _attempt(self, method: str, shown_path: str, url: str, request: dict[str, Any]) -> httpx.Response:
        config = self.config
        try:
            response = await self.http.request(method, url, **request)
        except httpx.HTTPError as exc:
            raise error_from_httpx(
                exc, method=method, path=shown_path, conn_id=config.conn_id, timeout=config.timeout
            ) from None
        if response.status_code >= 400:
            raise error_from_response(response, method=method, path=shown_path, conn_id=config.conn_id)
        return response

    async def login(self, ttl: int | None) -> SignzyToken:
        """Log in; the caller masks the token."""
        config = self.config
        sent_at = datetime.now(UTC)
        try:
            response = await self.send("POST", config.login_path, json=login_body(config, ttl), idempotent=True)
        except SignzyAuthError as exc:
            raise refused_login(exc, config) from None
        return token_from_answer(response, config, sent_at=sent_at)

    async def logout(self, token: SignzyToken) -> bool:
        """Revoke ``token``: True if revoked now, False if it was already dead."""
        try:
            await self.send("POST", self.config.logout_path, token=token, idempotent=True)
        except SignzyAuthError:
            return False
        return True

    async def aclose(self) -> None:
        await self.http.aclose()
