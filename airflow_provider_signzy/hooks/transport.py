"""The HTTP layer of :class:`~airflow_provider_signzy.hooks.signzy.SignzyHook`: the connection, the sessions,
and one exchange under the retry policy. No logins and no paid-call policy here (:mod:`.tokens`, :mod:`..ledger`)."""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from airflow.providers.common.compat.sdk import BaseHook, mask_secret
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from tenacity import Retrying

from airflow_provider_signzy import __version__
from airflow_provider_signzy.exceptions import SignzyConfigError, SignzyRateLimitError
from airflow_provider_signzy.ledger import not_sent
from airflow_provider_signzy.utils.access_token import SignzyToken
from airflow_provider_signzy.utils.call_metrics import CallAccount
from airflow_provider_signzy.utils.call_pacing import CallsStopped
from airflow_provider_signzy.utils.connection_config import SignzyConnectionConfig, read_connection
from airflow_provider_signzy.utils.connection_form import DEFAULT_CONN_ID
from airflow_provider_signzy.utils.error_envelope import error_from_exception, error_from_response
from airflow_provider_signzy.utils.retry_policy import build_retrying

if TYPE_CHECKING:
    from airflow_provider_signzy.utils.call_pacing import CallPacer

#: An inner layer of SignzyHook, not an API of its own: use :class:`~airflow_provider_signzy.hooks.signzy.SignzyHook`.
__all__: list[str] = []


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


class SignzyTransport(BaseHook):
    """The connection read once, one keep-alive session per thread, and sends under the retry policy."""

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
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._sessions_lock = threading.Lock()
        #: Optional :class:`~airflow_provider_signzy.utils.call_pacing.CallPacer` shared by threads that call at once.
        self.pacer: CallPacer | None = None
        #: This hook's calls, counted: the task's summary line and its metrics (:mod:`..utils.call_metrics`).
        self.account = CallAccount(self.log)

    @cached_property
    def config(self) -> SignzyConnectionConfig:
        """The connection, read once and checked: a missing or malformed field fails here, by name."""
        conn = read_connection(self.signzy_conn_id)
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
            with self._sessions_lock:
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
        data: Any = None,
    ) -> requests.Response:
        """Send with the retry policy; ``url`` is ``url_for(path)`` when the caller has built it already.

        ``shown_path``: what errors and retry log lines show instead of ``path`` (a template whose
        placeholders stand for personal data); its query string is dropped either way.
        """
        sent_path = "/" + path.lstrip("/").split("?", 1)[0]
        shown = "/" + shown_path.lstrip("/").split("?", 1)[0] if shown_path is not None else sent_path
        request = {"json": json, "params": params, "headers": headers, "auth": auth}
        if data is not None:
            request["data"] = data
        if shown != sent_path:
            request["sent_path"] = sent_path
        try:
            return self._retrying[idempotent](self._attempt, method, shown, url or self.url_for(path), request)
        except CallsStopped as stop:  # the batch's gate closed before this attempt (or during its back-off)
            raise not_sent(stop, method=method, path=shown, conn_id=self.signzy_conn_id, why=stop.reason) from None

    def send_unauthenticated(self, method: str, url: str, **request: Any) -> requests.Response:
        """A call with no token to a URL the connection names (its ``persist_url``), under the retry policy for
        idempotent calls; errors name the URL's path only."""
        parts = urlsplit(url)
        allowed = {urlsplit(u).netloc for u in (self.config.base_url, self.config.persist_url)}
        if parts.netloc not in allowed:
            raise SignzyConfigError(
                f"Refusing to send to a host the connection does not name ({parts.hostname})",
                conn_id=self.signzy_conn_id,
            )
        return self._send(method, parts.path, idempotent=True, url=url, **request)

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

    def _close_sessions(self) -> None:
        with self._sessions_lock:
            sessions, self._sessions = self._sessions, []
            self._local = threading.local()
        for session in sessions:
            session.close()
