"""Single paid calls under the ledger: read before sending, "sending" before, the outcome after."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import requests
from requests.structures import CaseInsensitiveDict

from airflow_provider_signzy.exceptions import SignzyError, SignzyOutcomeUnknownError
from airflow_provider_signzy.ledger.records import (
    CALL,
    LEDGER_KEY_PREFIX,
    NOT_ACTED,
    REPLAYED_REASON,
    SENDING,
    SUCCEEDED,
    UNKNOWN,
    Records,
    SignzyNotSentError,
    TaskScope,
    UnreadableRecord,
    _now,
    _sha,
    body_digest,
    signzy_acted,
)
from airflow_provider_signzy.utils import call_metrics
from airflow_provider_signzy.utils.retry_policy import IDEMPOTENT_METHODS

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_signzy.hooks.signzy import SignzyHook
    from airflow_provider_signzy.utils.access_token import SignzyToken
    from airflow_provider_signzy.utils.fernet_cipher import SignzyCipher


# -- answers -------------------------------------------------------------------------------------------


def answer_of(response: requests.Response) -> dict[str, Any]:
    """What a replay needs of an answer (it may hold personal data: stored encrypted only)."""
    return {
        "status": response.status_code,
        "content_type": response.headers.get("Content-Type"),
        "body": response.text,
        "url": response.url.split("?", 1)[0] if response.url else "",
    }


def replayed_response(answer: dict[str, Any]) -> requests.Response:
    """A ``requests.Response`` rebuilt from :func:`answer_of`; its ``reason`` says it was replayed."""
    response = requests.Response()
    response.status_code = int(answer["status"])
    response._content = answer["body"].encode()
    response.encoding = "utf-8"
    response.headers = CaseInsensitiveDict({"Content-Type": answer.get("content_type") or "application/json"})
    response.reason = REPLAYED_REASON
    response.url = answer.get("url", "")
    return response


def failure_fields(exc: BaseException) -> dict[str, Any]:
    """What an entry keeps of a failed call: its state (``not-acted`` or ``unknown``) and why."""
    acted = signzy_acted(exc)
    status = getattr(exc, "status", None)
    # Kinds and codes only: Signzy's message of a refused call may quote the body, and so personal data.
    detail = " ".join(str(part) for part in (type(exc).__name__, status, getattr(exc, "code", None)) if part)
    return {
        "state": NOT_ACTED if acted is False else UNKNOWN,
        "finished_at": _now(),
        "status": status,
        "detail": detail,
        "may_have_acted": acted is not False,
    }


# -- single calls --------------------------------------------------------------------------------------


class LedgerEntry:
    """One paid call of one task: read once before sending, written before and after.

    It is the hook's send record (:class:`~airflow_provider_signzy.hooks.tokens.SendRecord`): the hook
    calls :meth:`sending` right before the request leaves (after the token is in hand) and
    :meth:`refused` when a 401 came back (before logging in again).
    """

    def __init__(self, records: Records, key: str, call: dict[str, Any], label: str, log: Any) -> None:
        self.records = records
        self.scope = records.scope
        self.key = key
        self.call = call
        self.label = label
        self.log = log
        self.sent_at: str | None = None

    def _unknown(self, what: str) -> SignzyOutcomeUnknownError:
        return SignzyOutcomeUnknownError(
            f"{self.label} {what}. Signzy may have acted on it, and it may have been charged, so this try does "
            "not send it again. Check in Signzy (your dashboard, or a GET of the resource) whether it was done. "
            + self.scope.resend_instructions(self.key),
            method=self.call["method"],
            conn_id=self.call.get("conn_id"),
        )

    def replay_or_clear(self) -> requests.Response | None:
        """The replayed answer of an earlier try's success; None when the call may be sent.

        Raises :class:`SignzyOutcomeUnknownError` when an earlier try may have had it acted on, or when its
        entry cannot be read.
        """
        if self.scope.try_number == 1:
            return None  # the first try of this task instance: no earlier try can have written an entry
        try:
            prior = self.records.read(self.key, CALL)
        except UnreadableRecord as why:
            raise self._unknown(f"has a ledger entry from an earlier try that cannot be read ({why})") from None
        if prior is None:
            return None
        content = prior["content"]
        state = prior.get("state")
        if state == NOT_ACTED:
            self.log.info(
                "%s was refused without effect in try %s (%s); sending it again",
                self.label,
                prior.get("try"),
                content.get("detail"),
            )
            return None
        if state == SUCCEEDED:
            return self._replay(prior["try"], content)
        if state == UNKNOWN:
            raise self._unknown(
                f"was sent by try {prior.get('try')} at {content.get('sent_at')}, and its answer never arrived "
                f"({content.get('detail')})"
            )
        if state == SENDING:
            raise self._unknown(
                f"was sent by try {prior.get('try')} at {content.get('sent_at')}, and that try ended (killed or "
                "timed out) before the answer was recorded"
            )
        raise self._unknown(f"has a ledger entry in a state this provider does not know ({state!r})")

    def _replay(self, try_number: Any, content: dict[str, Any]) -> requests.Response:
        answer = content.get("answer")
        if not answer:
            raise SignzyOutcomeUnknownError(
                f"{self.label} succeeded in try {try_number} at {content.get('finished_at')}, but its answer was "
                "not kept (no Fernet key to encrypt it), so this try cannot return it and does not send the call "
                "again. Set Airflow's [core] fernet_key or the connection's 'xcom_fernet_key'. "
                f"{self.scope.resend_instructions(self.key)}",
                method=self.call["method"],
                conn_id=self.call.get("conn_id"),
            )
        response = replayed_response(answer)
        self.log.info(
            "%s already succeeded in try %s at %s (%s): returning that answer, not sending it again",
            self.label,
            try_number,
            content.get("finished_at"),
            response.status_code,
        )
        return response

    def _write(self, state: str, **fields: Any) -> None:
        content = {**self.call, "sent_at": self.sent_at, **fields}
        self.records.write(self.key, CALL, {"state": state, "try": self.scope.try_number}, content)

    # -- the hook's send record --

    def sending(self) -> None:
        """Write "sending" durably: after this, a try that dies leaves a call of unknown outcome."""
        self.sent_at = _now()
        self._write(SENDING)

    def refused(self, exc: BaseException) -> None:
        """The call came back refused without effect (a 401) and is about to be sent again after a login."""
        self._write(NOT_ACTED, **{k: v for k, v in failure_fields(exc).items() if k not in ("state", "may_have_acted")})

    # -- outcomes --

    def succeeded(self, response: requests.Response) -> None:
        """Record the success (and its answer); when that fails, log it and carry on: the answer is in hand."""
        answer = answer_of(response) if self.records.keeps_answers else None
        try:
            self._write(SUCCEEDED, finished_at=_now(), status=response.status_code, answer=answer)
        except Exception as exc:
            self.log.warning(
                "%s succeeded (%s), but the call ledger could not record it (%s, after retries): this try "
                "returns the answer; a later try of this task will report the call as of unknown outcome and "
                "not send it again. Ledger entry %r",
                self.label,
                response.status_code,
                type(exc).__name__,
                self.key,
            )

    def failed(self, exc: BaseException) -> None:
        fields = failure_fields(exc)
        state = fields.pop("state")
        fields.pop("may_have_acted")
        try:
            self._write(state, **fields)
        except Exception as write_error:
            self.log.warning(
                "%s failed (%s), and the call ledger could not record that (%s, after retries): a later try "
                "will report the call as of unknown outcome. Ledger entry %r",
                self.label,
                fields["detail"],
                type(write_error).__name__,
                self.key,
            )


def open_entry(
    *,
    method: str,
    path: str,
    json_body: Any,
    params: Any,
    call_key: str | None,
    conn_id: str,
    cipher_factory: Callable[[], SignzyCipher],
    log: Any,
) -> LedgerEntry | None:
    """The ledger entry of this call in the running task, or None where there is no task state store."""
    scope = TaskScope.current()
    if scope is None:
        return None
    digest = body_digest(json_body, params, call_key)
    shown_path = "/" + path.lstrip("/").split("?", 1)[0]
    identity = f"{method} {shown_path} {digest}"
    ordinal = scope.ordinal(identity)  # the n-th identical call of this try
    key = LEDGER_KEY_PREFIX + _sha(f"{identity} {ordinal}")[:32]
    call = {
        "method": method,
        "path_sha256": _sha(shown_path),  # a filled path may hold a customer's values: its digest only
        "body_sha256": digest,
        "ordinal": ordinal,
        "conn_id": conn_id,
    }
    label = f"Signzy {method} {shown_path} (body sha256 {digest[:12]})"
    return LedgerEntry(Records(scope, cipher_factory(), log), key, call, label, log)


def outcome_unknown(exc: SignzyError, entry: LedgerEntry | None) -> SignzyOutcomeUnknownError:
    """``exc`` restated: the call may have reached Signzy, so it is never sent again."""
    if entry is not None:
        resend = entry.scope.resend_instructions(entry.key)
    else:
        resend = (
            "There is no call ledger here (Airflow before 3.3, or outside a task): clearing the task sends it again"
        )
    unknown = exc.restated(
        SignzyOutcomeUnknownError,
        f"{exc}. The call may have reached Signzy: it may have acted on it, and it may have been charged, "
        "so it is not sent again, neither in this try nor by Airflow's retries (this error fails the task "
        f"without them). Check in Signzy (your dashboard, or a GET of the resource) whether it was done. {resend}",
    )
    assert isinstance(unknown, SignzyOutcomeUnknownError)
    unknown.cause = exc
    return unknown


def request(
    hook: SignzyHook,
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
    """One call through ``hook`` under the paid-call policy (``SignzyHook.request`` documents it)."""
    from airflow_provider_signzy.utils.fernet_cipher import SignzyCipher

    method = method.upper()
    hook.url_for(endpoint)  # a foreign URL is refused before anything is read, written or sent
    if idempotent is None:
        idempotent = method in IDEMPOTENT_METHODS
    account, shown = hook.account, call_metrics.endpoint_template(endpoint)
    call = {"token": token, "json": json, "params": params, "headers": headers, "anonymous": anonymous}
    if idempotent:
        try:
            response = hook.call(method, endpoint, idempotent=True, **call)
        except SignzyError:
            account.settled(method, shown, call_metrics.FAILED, paid=False)
            raise
        account.settled(method, shown, call_metrics.SUCCEEDED, paid=False)
        return response
    entry = open_entry(
        method=method,
        path=endpoint,
        json_body=json,
        params=params,
        call_key=call_key,
        conn_id=hook.signzy_conn_id,
        cipher_factory=lambda: SignzyCipher.for_connection(hook.config.extra, hook.signzy_conn_id),
        log=hook.log,
    )
    if entry is not None:
        replayed = entry.replay_or_clear()
        if replayed is not None:
            account.settled(method, shown, call_metrics.REPLAYED, paid=True)
            return replayed
    try:
        response = hook.call(method, endpoint, idempotent=False, record=entry, **call)
    except SignzyError as exc:
        acted = signzy_acted(exc)
        if entry is not None and entry.sent_at is not None:
            entry.failed(exc)
        if acted is not False:
            account.settled(method, shown, call_metrics.UNKNOWN, paid=True)
            raise outcome_unknown(exc, entry) from None
        outcome = call_metrics.NOT_SENT if isinstance(exc, SignzyNotSentError) else call_metrics.REFUSED
        account.settled(method, shown, outcome, paid=True)
        raise
    account.settled(method, shown, call_metrics.SUCCEEDED, paid=True)
    if entry is not None:
        entry.succeeded(response)
    return response
