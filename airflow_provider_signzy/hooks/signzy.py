"""SignzyHook: an Airflow connection of type ``signzy`` turned into authenticated Signzy calls.

The hook is built in layers, one module each: :mod:`.transport` (the connection, sessions, one exchange
under the retry policy), :mod:`.tokens` (login, logout, the hook's own token, the re-login after a 401),
and here the public calls; the paid-call policy is the ledger's (:mod:`airflow_provider_signzy.ledger`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypedDict, Unpack

from airflow_provider_signzy import ledger
from airflow_provider_signzy.exceptions import SignzyError
from airflow_provider_signzy.hooks.tokens import SendRecord, SignzyTokenOwner
from airflow_provider_signzy.hooks.transport import SignzyTokenAuth
from airflow_provider_signzy.utils.access_token import SignzyToken
from airflow_provider_signzy.utils.connection_form import (
    CONN_TYPE,
    DEFAULT_CONN_ID,
    hook_form_widgets,
    hook_ui_field_behaviour,
)
from airflow_provider_signzy.utils.error_envelope import answer_value
from airflow_provider_signzy.utils.retry_policy import IDEMPOTENT_METHODS

if TYPE_CHECKING:
    from types import TracebackType

    import requests

__all__ = ["PATRON_PLACEHOLDER", "CallOptions", "SendRecord", "SignzyHook", "SignzyTokenAuth"]


#: In an endpoint, the logged-in patron's id (filled by the hook, the operators and the sensor).
PATRON_PLACEHOLDER = "{patron_id}"


class CallOptions(TypedDict, total=False):
    """The keyword arguments of :meth:`SignzyHook.request`, which documents them."""

    token: SignzyToken | None
    json: Any
    params: dict[str, Any] | None
    headers: dict[str, str] | None
    idempotent: bool | None
    call_key: str | None


class SignzyHook(SignzyTokenOwner):
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
        super().__init__(signzy_conn_id, timeout=timeout, max_attempts=max_attempts, backoff_max=backoff_max)

    # -- Connections UI (Airflow 3.0 and 3.1; 3.2+ reads the same fields from the provider info) --

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        return hook_form_widgets()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return hook_ui_field_behaviour()

    # -- the public API --

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

    def request_json(self, method: str, endpoint: str, **options: Unpack[CallOptions]) -> Any:
        """:meth:`request` (same arguments), returning what ``SignzyOperator`` returns: the parsed JSON answer
        (its text when it is not JSON, None when it is empty). Not sealed: in TaskFlow, return only what XCom
        may hold."""
        return answer_value(self.request(method, endpoint, **options))

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
        self._revoke_owned()
        self._close_sessions()

    def __enter__(self) -> SignzyHook:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
