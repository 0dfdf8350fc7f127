"""SignzyHook: an Airflow connection of type ``signzy`` turned into authenticated Signzy calls."""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

import requests
from airflow.providers.common.compat.sdk import BaseHook, mask_secret
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from tenacity import Retrying

from airflow_provider_signzy import __version__, ledger
from airflow_provider_signzy.connection import SignzyConnectionConfig, missing_connection
from airflow_provider_signzy.connection_form import (
    CONN_TYPE,
    DEFAULT_CONN_ID,
    hook_form_widgets,
    hook_ui_field_behaviour,
)
from airflow_provider_signzy.envelope import answer_value, error_from_exception, error_from_response
from airflow_provider_signzy.exceptions import (
    SignzyAuthError,
    SignzyError,
    SignzyPermissionError,
    SignzyRateLimitError,
)
from airflow_provider_signzy.ledger import not_sent
from airflow_provider_signzy.login import login_body, refused_login, token_from_answer
from airflow_provider_signzy.metrics import CallAccount
from airflow_provider_signzy.pacing import CallsStopped
from airflow_provider_signzy.retry import IDEMPOTENT_METHODS, build_retrying
from airflow_provider_signzy.token import SignzyToken

if TYPE_CHECKING:
    from types import TracebackType

    from airflow_provider_signzy.pacing import CallPacer


class SendRecord(Protocol):
    """What the call ledger hooks into a paid call: told right before each send, and of a 401.

    :meth:`sending` runs after the token is in hand (a login never happens inside the window it opens);
    :meth:`refused` runs when Signzy answered 401 (it did not act), before the one login after it.
    """

    def sending(self) -> None: ...

    def refused(self, exc: BaseException) -> None: ...


#: In an endpoint, the logged-in patron's id (filled by the hook, the operators and the sensor).
PATRON_PLACEHOLDER = "{patron_id}"


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
        self._renew_lock = threading.Lock()
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        #: Optional :class:`~airflow_provider_signzy.pacing.CallPacer` shared by threads that call at once.
        self.pacer: CallPacer | None = None
        #: This hook's calls, counted: the task's summary line and its metrics (:mod:`..metrics`).
        self.account = CallAccount(self.log)

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
        try:
            conn = self.get_connection(self.signzy_conn_id)
        except Exception as exc:
            # By name: the class comes from airflow.exceptions or airflow.sdk.exceptions depending on the line.
            if type(exc).__name__ != "AirflowNotFoundException":
                raise
            raise missing_connection(self.signzy_conn_id) from None
        config = SignzyConnectionConfig.from_connection(conn)
        mask_secret(config.api_key)
        return dataclasses.replace(
            config,
            timeout=self._timeout if self._timeout is not None else config.timeout,
            max_attempts=self._max_attempts if self._max_attempts is not None else config.max_attempts,
            backoff_max=self._backoff_max if self._backoff_max is not None else config.backoff_max,
        )

    @property
    def session(self) -> requests.Session:
        """One keep-alive session per hook and thread (a ``requests.Session`` is not thread-safe)."""
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._new_session()
            self._local.session = session
            with self._token_lock:
                self._sessions.append(session)
        return session

    def _new_session(self) -> requests.Session:
        """A keep-alive session; retries are tenacity's job, not urllib3's.

        The environment (proxy variables, ``REQUESTS_CA_BUNDLE``) is read once here, as requests would
        read it, instead of on every call: with ``trust_env`` requests scans all of ``os.environ`` per
        request, a quarter of a call's CPU in a task's large environment.
        """
        config = self.config
        session = requests.Session()
        session.headers.update({"Accept": "application/json", "User-Agent": f"airflow-provider-signzy/{__version__}"})
        session.trust_env = False
        session.proxies.update(requests.utils.get_environ_proxies(config.base_url))
        verify = config.verify
        if verify is True:
            verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        session.verify = verify
        adapter = HTTPAdapter(max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    def get_conn(self) -> requests.Session:
        return self.session

    def url_for(self, endpoint: str) -> str:
        """The full URL of a path under the connection's Base URL; other hosts are refused."""
        return self.config.url_for(endpoint)

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
        shown_path: str | None = None,
    ) -> requests.Response:
        """Send with the retry policy; ``url`` is ``url_for(path)`` when the caller has built it already.

        ``shown_path``: what errors and retry log lines show instead of ``path`` (a template whose
        placeholders stand for personal data); its query string is dropped either way.
        """
        sent_path = "/" + path.lstrip("/").split("?", 1)[0]
        shown = "/" + shown_path.lstrip("/").split("?", 1)[0] if shown_path is not None else sent_path
        request = {"json": json, "params": params, "headers": headers, "auth": auth}
        if shown != sent_path:
            request["sent_path"] = sent_path
        try:
            return self._retrying[idempotent](self._attempt, method, shown, url or self.url_for(path), request)
        except CallsStopped as stop:  # the batch's gate closed before this attempt (or during its back-off)
            raise not_sent(stop, method=method, path=shown, conn_id=self.signzy_conn_id, why=stop.reason) from None

    def _sleep(self, seconds: float) -> None:
        """A retry's back-off; in a batch, the pacer's, which ends early (raising) when the batch stops."""
        pacer = self.pacer
        if pacer is not None:
            pacer.sleep(seconds)
        else:
            time.sleep(seconds)

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
                on_retry=self.account.retried,
                sleep=self._sleep,
            )
            for idempotent in (True, False)
        }

    def _attempt(self, method: str, shown_path: str, url: str, request: dict[str, Any]) -> requests.Response:
        """One HTTP exchange: a 2xx response, or the :class:`SignzyError` that fits the failure.

        Errors name ``shown_path``; ``request["sent_path"]``, when there, is the path really sent, whose
        filled-in values are scrubbed from Signzy's message.
        """
        config = self.config
        request = dict(request)
        sent_path = request.pop("sent_path", None)
        pacer = self.pacer
        if pacer is not None:
            pacer.before_call()
        try:
            response = self.session.request(method, url, timeout=(config.connect_timeout, config.timeout), **request)
        except requests.RequestException as exc:
            raise error_from_exception(
                exc, method=method, path=shown_path, conn_id=config.conn_id, timeout=config.timeout
            ) from None
        if response.status_code >= 400:
            error = error_from_response(
                response, method=method, path=shown_path, conn_id=config.conn_id, sent_path=sent_path
            )
            if isinstance(error, SignzyRateLimitError):
                self.account.rate_limited_once(method, shown_path)
                if pacer is not None:
                    pacer.on_rate_limited(error.retry_after)
            raise error
        if pacer is not None:
            pacer.on_success()
        return response

    def _auth(self, token: SignzyToken | str) -> SignzyTokenAuth:
        raw = token.id if isinstance(token, SignzyToken) else token
        return SignzyTokenAuth(raw, token_in=self.config.token_in)

    # -- the public API --

    def login(self, ttl: int | None = None) -> SignzyToken:
        """Log in and return a new token (masked in this process's logs).

        ``ttl``: seconds the token should live; default the connection's ``token_ttl`` extra, else an hour.
        """
        config = self.config
        sent_at = datetime.now(UTC)
        try:
            # Safe to resend: a login whose answer was lost only leaves a token that dies at its ttl.
            response = self._send("POST", config.login_path, json=login_body(config, ttl), idempotent=True)
        except SignzyAuthError as exc:
            raise refused_login(exc, config) from None
        token = token_from_answer(response, config, sent_at=sent_at)
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
        call_key: str | None = None,
    ) -> requests.Response:
        """Send one authenticated call and return the 2xx response; failures raise :class:`SignzyError`.

        ``idempotent`` (default: True for GET, HEAD, OPTIONS, PUT, DELETE) allows sending the request
        again after a failure that may have reached Signzy. Leave it off for paid POSTs: then a call
        whose outcome is unknown raises :class:`SignzyOutcomeUnknownError`, which fails the task without
        Airflow retries, and inside a task on Airflow 3.3+ the call ledger (:mod:`.ledger`, which owns this
        policy: :func:`~airflow_provider_signzy.ledger.request`) makes later tries of the task replay the
        call's answer instead of sending it again. ``call_key`` names the call for the ledger instead of a
        digest of ``json`` and ``params`` (for bodies that change between tries). On a 401, the hook logs
        in once more (that token is its own, revoked on :meth:`close`); a second 401 is a permission
        problem and raises :class:`SignzyPermissionError`. A login that fails before the call, or after
        its 401, raises :class:`~airflow_provider_signzy.ledger.SignzyNotSentError`: Signzy did not act,
        so Airflow's retries may send it. ``{patron_id}`` in ``endpoint`` is the token's patron, as in the
        operators (the hook's own token logs in for it when no ``token`` is given).
        """
        return ledger.request(
            self,
            method,
            self.fill_patron(endpoint, token),
            token=token,
            json=json,
            params=params,
            headers=headers,
            idempotent=idempotent,
            call_key=call_key,
        )

    def request_json(
        self,
        method: str,
        endpoint: str,
        *,
        token: SignzyToken | None = None,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        idempotent: bool | None = None,
        call_key: str | None = None,
    ) -> Any:
        """:meth:`request`, returning what ``SignzyOperator`` returns: the parsed JSON answer (its text when
        it is not JSON, None when it is empty). Not sealed: in TaskFlow, return only what XCom may hold."""
        response = self.request(
            method,
            endpoint,
            token=token,
            json=json,
            params=params,
            headers=headers,
            idempotent=idempotent,
            call_key=call_key,
        )
        return answer_value(response)

    def fill_patron(self, endpoint: str, token: SignzyToken | None = None) -> str:
        """``endpoint`` with ``{patron_id}`` replaced by the patron of ``token`` (else of the hook's own)."""
        if PATRON_PLACEHOLDER not in endpoint:
            return endpoint
        return endpoint.replace(PATRON_PLACEHOLDER, (token or self.get_token()).user_id)

    def call(
        self,
        method: str,
        endpoint: str,
        *,
        token: SignzyToken | None = None,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        idempotent: bool | None = None,
        shown_path: str | None = None,
        record: SendRecord | None = None,
    ) -> requests.Response:
        """One authenticated call, the transport under :meth:`request` and the batch (no paid-call policy).

        Thread-safe: threads may call at once (one HTTP session each, one re-login for all on a 401).
        A failure raises the :class:`SignzyError` of the call itself, never :class:`SignzyOutcomeUnknownError`:
        use :func:`~airflow_provider_signzy.ledger.signzy_acted` to tell whether Signzy may have acted (a
        login that failed before the call or after its 401 raises ``SignzyNotSentError``: it did not).
        ``shown_path`` is what errors and retry log lines name instead of ``endpoint``: give the template
        when the endpoint holds personal data (``/identities/{pan}``); values of the endpoint that the
        template does not have are scrubbed from Signzy's messages too. ``record`` (the call ledger's
        entry) is told right before each send and of a 401: see :class:`SendRecord`.
        """
        method = method.upper()
        url = self.url_for(endpoint)
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        call = {"json": json, "params": params, "headers": headers, "shown_path": shown_path}
        return self._authenticated(method, endpoint, url, token, idempotent=idempotent, call=call, record=record)

    def _authenticated(
        self,
        method: str,
        endpoint: str,
        url: str,
        token: SignzyToken | None,
        *,
        idempotent: bool,
        call: dict[str, Any],
        record: SendRecord | None = None,
    ) -> requests.Response:
        """The call with ``token`` (or the hook's own), logging in again once on a 401.

        Logins happen outside ``record``'s window: before :meth:`SendRecord.sending`, and after
        :meth:`SendRecord.refused`. A login that fails raises ``SignzyNotSentError`` (Signzy did not act).
        """
        shown = call.get("shown_path") or endpoint
        try:
            current = self._replacements.get(token.id, token) if token is not None else self.get_token()
        except SignzyError as exc:
            if idempotent:  # safe to send again whatever happened: the login's own error says enough
                raise
            raise not_sent(
                exc, method=method, path=shown, conn_id=self.signzy_conn_id, why="the login before it failed"
            ) from None

        def send(with_token: SignzyToken) -> requests.Response:
            if record is not None:
                record.sending()
            return self._send(method, endpoint, idempotent=idempotent, url=url, auth=self._auth(with_token), **call)

        try:
            return send(current)
        except SignzyAuthError as first:
            self.log.warning(
                "Signzy answered 401 %s to %s %s; the token is expired or revoked, logging in again once",
                first.code or "",
                method,
                first.path,
            )
            if record is not None:
                record.refused(first)
        try:
            # Keyed by the caller's token: later calls with it reuse `fresh`.
            fresh = self._renew_own_token(replacing=token, failed=current)
        except SignzyError as exc:
            if idempotent:
                raise
            raise not_sent(
                exc,
                method=method,
                path=shown,
                conn_id=self.signzy_conn_id,
                why="Signzy refused it with 401 (without acting on it), and the login after that failed",
            ) from None
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
        """Log the task's paid-call summary, send its metrics, revoke the tokens this hook owns (best effort)
        and close its HTTP sessions."""
        self.account.close()
        with self._token_lock:
            owned = [self._own_token, *self._replacements.values()]
            self._own_token = None
            self._replacements.clear()
        for token in {t.id: t for t in owned if t is not None}.values():
            self.revoke_quietly(token)
        with self._token_lock:
            sessions, self._sessions = self._sessions, []
            self._local = threading.local()
        for session in sessions:
            session.close()

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
        """The hook's own token: logs in on first use and again shortly before expiry (once for all threads)."""
        with self._token_lock:
            token = self._own_token
            if token is not None and not token.needs_refresh():
                return token
        with self._renew_lock:
            token = self._own_token
            if token is not None and not token.needs_refresh():
                return token  # another thread logged in meanwhile
            if token is not None:
                self.log.info("Signzy token of patron %s expires soon; logging in again", token.user_id)
            return self._login_as_own(None)

    def _renew_own_token(
        self, *, replacing: SignzyToken | None = None, failed: SignzyToken | None = None
    ) -> SignzyToken:
        with self._renew_lock:  # threads refused at once log in once, not once each
            if failed is not None:
                current = self._replacements.get(replacing.id) if replacing is not None else self._own_token
                if current is not None and current.id != failed.id:
                    return current
            return self._login_as_own(replacing)

    def _login_as_own(self, replacing: SignzyToken | None) -> SignzyToken:
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
