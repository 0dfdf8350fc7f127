"""Operators: log in once per DAG run, call Signzy with that token, revoke it at the end.

The token travels between tasks through XCom, Fernet-encrypted, and is read inside ``execute()``:
never through a templated argument, because rendered template fields are stored and shown in the clear.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_provider_signzy.callbacks import revoke_run_token
from airflow_provider_signzy.exceptions import SignzyError
from airflow_provider_signzy.hooks.signzy import PATRON_PLACEHOLDER, SignzyHook
from airflow_provider_signzy.privacy.rendered import HiddenBodies
from airflow_provider_signzy.privacy.sealing import SEALED, ResultSealer, check_privacy, unseal
from airflow_provider_signzy.privacy.tracebacks import without_inner_frames
from airflow_provider_signzy.utils.connection_form import DEFAULT_CONN_ID
from airflow_provider_signzy.utils.error_envelope import answer_value
from airflow_provider_signzy.utils.token_xcom import (
    DEFAULT_LOGIN_TASK_ID,
    TOKEN_XCOM_KEY,
    pull_token_record,
    token_from_record,
)

if TYPE_CHECKING:
    import requests
    from airflow.providers.common.compat.sdk import Context


class SignzyLoginOperator(BaseOperator):
    """Log in to Signzy once and store the token for the run's other Signzy tasks.

    The record in XCom (key ``signzy_token``) holds the patron id, ttl, creation and expiry times, the
    connection id, and the token itself, Fernet-encrypted with the connection's ``xcom_fernet_key`` or
    Airflow's ``[core] fernet_key``.

    :param signzy_conn_id: the ``signzy`` connection.
    :param token_ttl: seconds the token should live; ask for about the DAG's expected length, so a leaked
        token dies on its own. Default: the connection's ``token_ttl`` extra, else one hour.
    """

    template_fields: Sequence[str] = ("signzy_conn_id", "token_ttl")
    ui_color = "#e8f4fd"

    def __init__(
        self,
        *,
        task_id: str = DEFAULT_LOGIN_TASK_ID,
        signzy_conn_id: str = DEFAULT_CONN_ID,
        token_ttl: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(task_id=task_id, **kwargs)
        self.signzy_conn_id = signzy_conn_id
        self.token_ttl = token_ttl

    def execute(self, context: Context) -> None:
        from airflow_provider_signzy.utils.fernet_cipher import SignzyCipher

        hook = SignzyHook(self.signzy_conn_id)
        token = hook.login(ttl=int(self.token_ttl) if self.token_ttl else None)
        try:
            cipher = SignzyCipher.for_connection(hook.config.extra, self.signzy_conn_id)
            if not cipher.encrypts:
                self.log.warning(
                    "No Fernet key: the Signzy token is stored in XCom IN THE CLEAR. Set Airflow's "
                    "[core] fernet_key (AIRFLOW__CORE__FERNET_KEY) on every component, or the connection "
                    "extra 'xcom_fernet_key' of %r",
                    self.signzy_conn_id,
                )
            context["ti"].xcom_push(key=TOKEN_XCOM_KEY, value=token.to_xcom(cipher))
        except BaseException:
            # A token nobody can find again must not stay alive.
            hook.logout(token)
            raise
        finally:
            hook.close()
        self.log.info(
            "Stored the Signzy token of patron %s in XCom (%s); it expires at %s",
            token.user_id,
            "encrypted" if cipher.encrypts else "not encrypted",
            token.expires_at.isoformat(timespec="seconds"),
        )


class SignzyOperator(HiddenBodies, BaseOperator):
    """Make one authenticated Signzy call with the run's token; returns the answer, sealed (to XCom).

    :param endpoint: path under the connection's Base URL; ``{patron_id}`` is filled from the token.
        Templated.
    :param method: HTTP method.
    :param json: JSON body. Templated; may hold sealed values (they are opened before sending). Airflow
        stores and shows its shape (keys, types, lengths), not its values.
    :param query_params: query parameters. Templated, shown as their shape. (Not ``params``: that name is
        Airflow's own DAG/task params on every operator.)
    :param headers: extra HTTP headers. Templated, shown as their shape.
    :param response_check: ``callable(response) -> bool``; False fails the task.
    :param response_filter: ``callable(response) -> value`` to return instead of the JSON.
    :param login_task_id: the SignzyLoginOperator task whose token to use. When it stored none (no such
        task ran), this task logs in itself and revokes its own token before it returns.
    :param idempotent: allow resending after a failure that may have reached Signzy (default: True for
        GET, PUT, DELETE; False for POST, so a paid verification is never sent twice).
    :param call_key: for a non-idempotent call, the name the call ledger knows it by (default: a digest of
        ``json`` and ``query_params``). Give one when the body changes between tries of the same call.
        Templated.
    :param result_privacy: ``"sealed"`` (default): the answer goes to XCom sealed with the connection's
        Fernet keys, all but ``clear_fields``; open it with
        :func:`~airflow_provider_signzy.privacy.unseal`. ``"plain"``: as is, for endpoints whose answers
        hold no personal data. Without a Fernet key a sealed task fails before it sends anything.
    :param clear_fields: top-level answer fields kept readable beside the seal (scalars only). Default
        ``("id", "status")``, so ``ti.xcom_pull(task_ids=...)['id']`` works in templates.

    A non-idempotent call goes through the call ledger (Airflow 3.3+): a later try of this task (a retry,
    a worker that died, a clear) replays the answer of a call that succeeded, and fails without sending
    when an earlier try may have had it acted on. See the README's "Paid calls" section.
    """

    template_fields: Sequence[str] = ("endpoint", "json", "query_params", "headers", "signzy_conn_id", "call_key")
    template_fields_renderers = {"json": "json", "query_params": "json", "headers": "json"}
    body_fields: Sequence[str] = ("json", "query_params", "headers")
    ui_color = "#d4ecfc"

    def __init__(
        self,
        *,
        endpoint: str,
        method: str = "GET",
        json: Any = None,
        query_params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        response_check: Callable[[requests.Response], bool] | None = None,
        response_filter: Callable[[requests.Response], Any] | None = None,
        login_task_id: str = DEFAULT_LOGIN_TASK_ID,
        signzy_conn_id: str = DEFAULT_CONN_ID,
        idempotent: bool | None = None,
        call_key: str | None = None,
        result_privacy: str = SEALED,
        clear_fields: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.result_privacy, self.clear_fields = check_privacy(result_privacy, clear_fields)
        self.endpoint = endpoint
        self.method = method.upper()
        self.json = json
        self.query_params = query_params
        self.headers = headers
        self.response_check = response_check
        self.response_filter = response_filter
        self.login_task_id = login_task_id
        self.signzy_conn_id = signzy_conn_id
        self.idempotent = idempotent
        self.call_key = call_key

    @without_inner_frames
    def execute(self, context: Context) -> Any:
        record = pull_token_record(context["ti"], self.login_task_id)
        with SignzyHook(self.signzy_conn_id) as hook:
            sealer = ResultSealer.for_task(self, hook.config.extra)
            body, query_params, headers = (unseal(self.body(name)) for name in ("json", "query_params", "headers"))
            if record is None:
                self.log.info(
                    "No Signzy token from task %r: logging in for this call alone (revoked when it ends)",
                    self.login_task_id,
                )
                token = hook.get_token()
            else:
                token = token_from_record(hook, record, self.login_task_id)
            endpoint = self.endpoint.replace(PATRON_PLACEHOLDER, token.user_id)
            response = hook.request(
                self.method,
                endpoint,
                token=token if record is not None else None,
                json=body,
                params=query_params,
                headers=headers,
                idempotent=self.idempotent,
                call_key=self.call_key,
            )
        self.log.info("Signzy %s %s answered %s", self.method, endpoint, response.status_code)
        if self.response_check is not None and not self.response_check(response):
            raise SignzyError(
                f"response_check returned False for Signzy {self.method} {endpoint} ({response.status_code})",
                status=response.status_code,
                method=self.method,
                path=endpoint,
                conn_id=self.signzy_conn_id,
            )
        value = answer_value(response, self.response_filter)
        if self.response_filter is None and isinstance(value, str) and value == response.text:
            self.log.warning("Signzy answered with a body that is not JSON; returning it as text")
        return sealer.seal(value)


class _RunTokenOperator(BaseOperator):
    """Shared arguments of the operators that revoke the token a login task stored for this run."""

    template_fields: Sequence[str] = ("signzy_conn_id",)
    ui_color = "#fde8e8"

    def __init__(
        self,
        *,
        task_id: str,
        login_task_id: str = DEFAULT_LOGIN_TASK_ID,
        signzy_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(task_id=task_id, **kwargs)
        self.login_task_id = login_task_id
        self.signzy_conn_id = signzy_conn_id


class SignzyLogoutOperator(_RunTokenOperator):
    """Revoke the run's token: use it as the DAG's teardown, so it runs when work tasks fail.

    ``logout = SignzyLogoutOperator(); login >> calls >> logout.as_teardown(setups=login)``.
    A token that is already dead counts as revoked. Signzy being unreachable fails this task (the token
    then dies at its ttl, and the on_failure callback tries again).
    """

    def __init__(self, *, task_id: str = "signzy_logout", **kwargs: Any) -> None:
        super().__init__(task_id=task_id, **kwargs)

    def execute(self, context: Context) -> bool:
        record = pull_token_record(context["ti"], self.login_task_id)
        if record is None:
            self.log.info("No Signzy token from task %r: nothing to revoke", self.login_task_id)
            return False
        hook = SignzyHook(self.signzy_conn_id)
        try:
            return hook.logout(token_from_record(hook, record, self.login_task_id))
        finally:
            hook.close()


class SignzyRevokeTokenOperator(_RunTokenOperator):
    """Best-effort, idempotent revoke of the run's token that never fails the task.

    For teardowns that must stay green; the same step as
    :func:`airflow_provider_signzy.callbacks.revoke_token_on_failure`. Uses short timeouts.
    Returns the outcome: ``revoked``, ``already-dead``, ``no-token``, ``unreadable`` or ``failed``.
    """

    def __init__(self, *, task_id: str = "signzy_revoke_token", **kwargs: Any) -> None:
        super().__init__(task_id=task_id, **kwargs)

    def execute(self, context: Context) -> str:
        return revoke_run_token(
            context["ti"], login_task_id=self.login_task_id, signzy_conn_id=self.signzy_conn_id, logger=self.log
        )
