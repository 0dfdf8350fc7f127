"""SignzyHook: an Airflow connection of type ``signzy`` turned into authenticated Signzy calls."""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

import requests
from airflow.providers.common.compat.sdk import BaseHook, mask_secret
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from tenacity import Retrying

from airflow_provider_signzy import __version__
from airflow_provider_signzy.connection import SignzyConnectionConfig
from airflow_provider_signzy.connection_form import (
    CONN_TYPE,
    DEFAULT_CONN_ID,
    hook_form_widgets,
    hook_ui_field_behaviour,
)
from airflow_provider_signzy.envelope import error_from_exception, error_from_response
from airflow_provider_signzy.exceptions import (
    SignzyAuthError,
    SignzyConfigError,
    SignzyError,
    SignzyPermissionError,
    SignzyResponseError,
)
from airflow_provider_signzy.retry import IDEMPOTENT_METHODS, build_retrying
from airflow_provider_signzy.token import SignzyToken

if TYPE_CHECKING:
    from types import TracebackType


class SignzyTokenAuth(AuthBase):
    """Puts the raw token in ``Authorization`` (no ``Bearer``: LoopBack would reject it) or the query."""

    def __init__(self, token: str, *, token_in: str = "header") -> None:
        self.token = token
        self.token_in = token_in

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self.token_in == "query":
            request.prepare_url(request.url, {"access_token": self.token})
        else:
            request.headers["Authorization"] = self.token
        return request

    def __repr__(self) -> str:
        return f"SignzyTokenAuth(token_in={self.token_in!r})"


class _LoginBody(dict[str, Any]):
    """The login JSON, whose repr hides the API key.

    Airflow 3.0's console renders a task's exception with rich, showing each frame's local variables: a
    plain dict here (held by ``login``, ``_send`` and the retry frames) would print the key there.
    """

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{k!r}: {'***' if k == 'password' else v!r}" for k, v in self.items()) + "}"


class SignzyHook(BaseHook):
    """Logs in to Signzy with a ``signzy`` connection and sends authenticated calls.

    :param signzy_conn_id: the Airflow connection (host = base URL, login = username, password = API key).
    :param timeout: overrides the connection's ``timeout`` extra (seconds).
    :param max_attempts: overrides the connection's ``max_attempts`` extra.
    :param backoff_max: overrides the connection's ``backoff_max`` extra (seconds).

    Without a ``token`` argument, :meth:`request` uses a token the hook owns: it logs in on first use,
    logs in again shortly before that token expires, and revokes it on :meth:`close` (or at the end of a
    ``with SignzyHook() as hook:`` block). One ``requests.Session`` serves all calls of a hook.
    """

    conn_name_attr = "signzy_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = CONN_TYPE
    hook_name = "Signzy"

    def __init__(
        self,
        signzy_conn_id: str = DEFAULT_CONN_ID,
        *,
        timeout: float | None = None,
        max_attempts: int | None = None,
        backoff_max: float | None = None,
    ) -> None:
        super().__init__()
        self.signzy_conn_id = signzy_conn_id
        self._timeout = timeout
        self._max_attempts = max_attempts
        self._backoff_max = backoff_max
        self._own_token: SignzyToken | None = None
        self._replacements: dict[str, SignzyToken] = {}
        self._token_lock = threading.Lock()

    # -- Connections UI (Airflow 3.0 and 3.1; 3.2+ reads the same fields from the provider info) --

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        return hook_form_widgets()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return hook_ui_field_behaviour()

    # -- connection and session --

    @cached_property
    def config(self) -> SignzyConnectionConfig:
        """The connection, read once and checked: a missing or malformed field fails here, by name."""
        config = SignzyConnectionConfig.from_connection(self.get_connection(self.signzy_conn_id))
        mask_secret(config.api_key)
        return dataclasses.replace(
            config,
            timeout=self._timeout if self._timeout is not None else config.timeout,
            max_attempts=self._max_attempts if self._max_attempts is not None else config.max_attempts,
            backoff_max=self._backoff_max if self._backoff_max is not None else config.backoff_max,
        )

    @cached_property
    def session(self) -> requests.Session:
        """One keep-alive session per hook; retries are tenacity's job, not urllib3's."""
        session = requests.Session()
        session.headers.update({"Accept": "application/json", "User-Agent": f"airflow-provider-signzy/{__version__}"})
        session.verify = self.config.verify
        adapter = HTTPAdapter(max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    def get_conn(self) -> requests.Session:
        return self.session

    def url_for(self, endpoint: str) -> str:
        """The full URL of a path under the connection's base URL; other hosts are refused."""
        if "://" in endpoint or endpoint.startswith("//"):
            raise SignzyConfigError(
                f"Endpoint {endpoint!r} is a full URL: give a path under the connection's Base URL, "
                "so the token is never sent to another host",
                conn_id=self.signzy_conn_id,
            )
        return f"{self.config.base_url}/{endpoint.lstrip('/')}"

    # -- the HTTP exchange, with the retry policy --

    def _send(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        url: str | None = None,
        auth: AuthBase | None = None,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        """Send with the retry policy; ``url`` is ``url_for(path)`` when the caller has built it already."""
        shown_path = "/" + path.lstrip("/").split("?", 1)[0]
        request = {"json": json, "params": params, "headers": headers, "auth": auth}
        return self._retrying[idempotent](self._attempt, method, shown_path, url or self.url_for(path), request)

    @cached_property
    def _retrying(self) -> dict[bool, Retrying]:
        """One retry policy per idempotency, built once per hook (its state is thread-local)."""
        config = self.config
        return {
            idempotent: build_retrying(
                max_attempts=config.max_attempts,
                initial=config.backoff_initial,
                maximum=config.backoff_max,
                idempotent=idempotent,
                log=self.log,
            )
            for idempotent in (True, False)
        }

    def _attempt(self, method: str, shown_path: str, url: str, request: dict[str, Any]) -> requests.Response:
        """One HTTP exchange: a 2xx response, or the :class:`SignzyError` that fits the failure."""
        config = self.config
        try:
            response = self.session.request(method, url, timeout=(config.connect_timeout, config.timeout), **request)
        except requests.RequestException as exc:
            raise error_from_exception(
                exc, method=method, path=shown_path, conn_id=config.conn_id, timeout=config.timeout
            ) from None
        if response.status_code >= 400:
            raise error_from_response(response, method=method, path=shown_path, conn_id=config.conn_id)
        return response

    def _auth(self, token: SignzyToken | str) -> SignzyTokenAuth:
        raw = token.id if isinstance(token, SignzyToken) else token
        return SignzyTokenAuth(raw, token_in=self.config.token_in)

    # -- the public API --

    def login(self, ttl: int | None = None) -> SignzyToken:
        """Log in and return a new token (masked in this process's logs); ``ttl`` in seconds."""
        config = self.config
        body = _LoginBody(username=config.username, password=config.api_key)
        ttl = ttl if ttl is not None else config.token_ttl
        if ttl is not None:
            body["ttl"] = int(ttl)
        sent_at = datetime.now(UTC)
        try:
            # Safe to resend: a login whose answer was lost only leaves a token that dies at its ttl.
            response = self._send("POST", config.login_path, json=body, idempotent=True)
        except SignzyAuthError as exc:
            raise exc.restated(
                SignzyAuthError,
                f"Signzy refused the login of user {config.username!r}: {exc.status} {exc.code or ''} "
                f"{exc.signzy_message}. Check the Username and API key of connection {config.conn_id!r}",
            ) from None
        try:
            payload = response.json()
        except ValueError:
            raise SignzyResponseError(
                f"Signzy login answered {response.status_code} with a body that is not JSON "
                f"(connection {config.conn_id!r}, Base URL {config.base_url})",
                status=response.status_code,
                conn_id=config.conn_id,
            ) from None
        token = SignzyToken.from_login_response(payload, sent_at=sent_at, conn_id=config.conn_id)
        mask_secret(token.id)
        self.log.info(
            "Logged in to Signzy as patron %s (connection %r); token valid until %s",
            token.user_id,
            config.conn_id,
            token.expires_at.isoformat(timespec="seconds"),
        )
        return token

    def logout(self, token: SignzyToken | str) -> bool:
        """Revoke ``token``: True if it was revoked now, False if it was already dead. Idempotent."""
        user = token.user_id if isinstance(token, SignzyToken) else "?"
        try:
            self._send("POST", self.config.logout_path, auth=self._auth(token), idempotent=True)
        except SignzyAuthError:
            self.log.info("Signzy token of patron %s was already revoked or expired", user)
            return False
        self.log.info("Revoked the Signzy token of patron %s", user)
        return True

    def request(
        self,
        method: str,
        endpoint: str,
        *,
        token: SignzyToken | None = None,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> requests.Response:
        """Send one authenticated call and return the 2xx response; failures raise :class:`SignzyError`.

        ``idempotent`` (default: True for GET, HEAD, OPTIONS, PUT, DELETE) allows sending the request
        again after a failure that may have reached Signzy. Leave it off for paid POSTs.
        On a 401, the hook logs in once more (that token is its own, revoked on :meth:`close`);
        a second 401 is a permission problem and raises :class:`SignzyPermissionError`.
        """
        method = method.upper()
        url = self.url_for(endpoint)  # built first: a foreign URL is refused before any token is fetched
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        current = self._replacements.get(token.id, token) if token is not None else self.get_token()

        def send(with_token: SignzyToken) -> requests.Response:
            return self._send(
                method,
                endpoint,
                idempotent=idempotent,
                url=url,
                auth=self._auth(with_token),
                json=json,
                params=params,
                headers=headers,
            )

        try:
            return send(current)
        except SignzyAuthError as first:
            self.log.warning(
                "Signzy answered 401 %s to %s %s; the token is expired or revoked, logging in again once",
                first.code or "",
                method,
                first.path,
            )
        fresh = self._renew_own_token(replacing=token)  # keyed by the caller's token: later calls with it reuse `fresh`
        try:
            return send(fresh)
        except SignzyAuthError as second:
            raise second.restated(
                SignzyPermissionError,
                f"Signzy refused {method} {second.path} with a fresh token too ({second.status} "
                f"{second.code or ''} {second.signzy_message}): patron {fresh.user_id} may not use this "
                f"resource. This is a permission problem, not an expired token (connection "
                f"{self.signzy_conn_id!r})",
            ) from None

    def test_connection(self) -> tuple[bool, str]:
        """Log in, then log out (a test must not leave a live token): the Connections UI's Test button."""
        try:
            token = self.login(ttl=300)
            self.logout(token)
        except SignzyError as exc:
            return False, str(exc)
        return True, (f"Logged in to {self.config.base_url} as patron {token.user_id} and revoked the test token")

    def close(self) -> None:
        """Revoke the tokens this hook owns (best effort) and close its HTTP session."""
        with self._token_lock:
            owned = [self._own_token, *self._replacements.values()]
            self._own_token = None
            self._replacements.clear()
        for token in {t.id: t for t in owned if t is not None}.values():
            self.revoke_quietly(token)
        if "session" in self.__dict__:
            self.session.close()
            del self.__dict__["session"]

    def __enter__(self) -> SignzyHook:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- tokens the hook owns --

    @property
    def owned_token(self) -> SignzyToken | None:
        """The token the hook logged in for itself, if any (it revokes it on :meth:`close`)."""
        return self._own_token

    def get_token(self) -> SignzyToken:
        """The hook's own token: logs in on first use and again shortly before expiry."""
        with self._token_lock:
            token = self._own_token
            if token is not None and not token.needs_refresh():
                return token
        if token is None:
            return self._renew_own_token()
        self.log.info("Signzy token of patron %s expires soon; logging in again", token.user_id)
        return self._renew_own_token()

    def _renew_own_token(self, *, replacing: SignzyToken | None = None) -> SignzyToken:
        fresh = self.login()
        with self._token_lock:
            old, self._own_token = self._own_token, fresh
            if replacing is not None:
                self._replacements[replacing.id] = fresh
        if old is not None and old.id != fresh.id and old not in self._replacements.values():
            self.revoke_quietly(old)
        return fresh

    def revoke_quietly(self, token: SignzyToken) -> bool | None:
        """:meth:`logout` that logs a failure instead of raising it (None: it could not be revoked)."""
        try:
            return self.logout(token)
        except SignzyError as exc:
            self.log.warning("Could not revoke a Signzy token of patron %s: %s", token.user_id, exc)
            return None
