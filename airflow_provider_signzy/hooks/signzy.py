"""SignzyHook: an Airflow connection of type ``signzy`` turned into authenticated Signzy calls.

The hook is built in layers, one module each: :mod:`.transport` (the connection, sessions, one exchange
under the retry policy), :mod:`.tokens` (login, logout, the hook's own token, the re-login after a 401),
and here the public calls; the paid-call policy is the ledger's (:mod:`airflow_provider_signzy.ledger`).
"""

from __future__ import annotations

import dataclasses
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
    from collections.abc import Mapping, Sequence
    from types import TracebackType

    import requests

    from airflow_provider_signzy.products.calls import ProductResult

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
    anonymous: bool


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
        anonymous: bool = False,
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
        operators (the hook's own token logs in for it when no ``token`` is given). ``anonymous`` sends no
        patron token (Signzy's ``/api/v2/snoops`` is authenticated by the identity's token in the body).
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
            anonymous=anonymous,
        )

    def request_json(self, method: str, endpoint: str, **options: Unpack[CallOptions]) -> Any:
        """:meth:`request` (same arguments), returning what ``SignzyOperator`` returns: the parsed JSON answer
        (its text when it is not JSON, None when it is empty). Not sealed: in TaskFlow, return only what XCom
        may hold."""
        return answer_value(self.request(method, endpoint, **options))

    def run_product(
        self,
        product: str,
        essentials: Mapping[str, Any] | None = None,
        *,
        images: Sequence[str] | None = None,
        files: Sequence[Any] | None = None,
        token: SignzyToken | None = None,
        task: str | None = None,
        identity_type: str | None = None,
        email: str | None = None,
        callback_url: str | None = None,
    ) -> ProductResult:
        """Run one of Signzy's products by name (``"pan.verification"``; the catalog:
        :data:`airflow_provider_signzy.products.PRODUCTS`) and return its result, Signzy's
        ``response.result``, as a dict (:class:`~airflow_provider_signzy.products.calls.ProductResult`;
        its ``answer`` attribute is the whole answer).

        The inputs are checked against the catalog first: an unknown product, a missing or malformed
        essentials field, or images missing raise :class:`SignzyInputError` before anything is sent.
        Document products create an identity (with ``images``: document URLs) and run the product as a
        snoop authenticated by the identity's own token; the others are one call. Both steps are paid
        calls under the call ledger (Airflow 3.3+): a later try of the task reuses the identity it created
        and never sends a snoop whose answer was lost. ``task`` and ``identity_type`` override the
        catalog's; ``email`` and ``callback_url`` are the identity's (every Signzy sample sends both).
        ``files`` (paths, ``ObjectStoragePath``s or bytes; each under 2 MB) are uploaded with
        :meth:`upload_document` and added to ``images``, once the rest of the inputs has been checked.
        """
        from airflow_provider_signzy.hooks.documents import MAX_IMAGE_BYTES
        from airflow_provider_signzy.hooks.products import run
        from airflow_provider_signzy.products.calls import ProductCall

        # Checked with a stand-in URL per file first: a wrong input must fail before any upload.
        call = ProductCall.prepare(
            product,
            essentials,
            images=[*(images or []), *(f"https://upload.invalid/{n}" for n in range(len(files or [])))],
            task=task,
            identity_type=identity_type,
            email=email,
            callback_url=callback_url,
        )
        if files:
            uploaded = [self.upload_document(f, max_bytes=MAX_IMAGE_BYTES) for f in files]
            call = dataclasses.replace(call, images=(*call.images[: len(call.images) - len(files)], *uploaded))
        return run(self, call, token)

    def upload_document(
        self,
        source: Any,
        *,
        ttl: str | None = None,
        filename: str | None = None,
        mimetype: str | None = None,
        key: str | None = None,
        max_bytes: int | None = None,
    ) -> str:
        """Upload a customer's document (a file path, an ``ObjectStoragePath``, or bytes) to Signzy's file
        service and return its URL (``directURL``), for a product's ``images`` or ``url``.

        The URL is a public link to the document: it is masked in this process's logs; store it only
        sealed (:func:`~airflow_provider_signzy.privacy.seal`). ``ttl`` is one of Signzy's values
        (:data:`~airflow_provider_signzy.hooks.documents.TTLS`; default ``"30 mins"``, which covers the
        task's retries). A file is streamed, its size checked first (Signzy's 100 MB limit, or
        ``max_bytes``). No token is sent: Signzy documents none for uploads. ``key`` protects the
        download (it then needs ``?key=``).
        """
        from airflow_provider_signzy.hooks import documents

        return documents.upload(
            self,
            source,
            ttl=ttl or documents.DEFAULT_TTL,
            filename=filename,
            mimetype=mimetype,
            key=key,
            max_bytes=max_bytes or documents.MAX_UPLOAD_BYTES,
        )

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
        anonymous: bool = False,
    ) -> requests.Response:
        """One authenticated call, the transport under :meth:`request` and the batch (no paid-call policy).

        Thread-safe: threads may call at once (one HTTP session each, one re-login for all on a 401).
        A failure raises the :class:`SignzyError` of the call itself, never :class:`SignzyOutcomeUnknownError`:
        use :func:`~airflow_provider_signzy.ledger.signzy_acted` to tell whether Signzy may have acted (a
        login that failed before the call or after its 401 raises ``SignzyNotSentError``: it did not).
        ``shown_path`` is what errors and retry log lines name instead of ``endpoint``: give the template
        when the endpoint holds personal data (``/identities/{pan}``); values of the endpoint that the
        template does not have are scrubbed from Signzy's messages too. ``record`` (the call ledger's
        entry) is told right before each send and of a 401: see :class:`SendRecord`. ``anonymous``: no
        patron token at all (no login, no re-login after a 401).
        """
        method = method.upper()
        url = self.url_for(endpoint)
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        call = {"json": json, "params": params, "headers": headers, "shown_path": shown_path}
        if anonymous:
            if record is not None:
                record.sending()
            return self._send(method, endpoint, idempotent=idempotent, url=url, **call)
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
