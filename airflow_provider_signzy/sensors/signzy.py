"""SignzySensor: wait until a Signzy resource reaches a state, deferred to the triggerer or poking.

Deferrable (the default when ``[operators] default_deferrable`` is on): no worker slot is held while
waiting; the triggerer polls with its shared login (one per connection, however many sensors wait).
Not deferrable: each poke is one GET with the run's token from the login task's XCom.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    AirflowSensorTimeout,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
)

from airflow_provider_signzy.callbacks import DEFAULT_LOGIN_TASK_ID, pull_token_record, token_from_record
from airflow_provider_signzy.conditions import all_match, first_match, normalize
from airflow_provider_signzy.connection_form import DEFAULT_CONN_ID
from airflow_provider_signzy.exceptions import SignzyError
from airflow_provider_signzy.hooks.signzy import SignzyHook
from airflow_provider_signzy.privacy.rendered import HiddenBodies
from airflow_provider_signzy.privacy.sealing import SEALED, ResultSealer, check_privacy, unseal
from airflow_provider_signzy.privacy.tracebacks import without_inner_frames
from airflow_provider_signzy.retry import is_transient
from airflow_provider_signzy.triggers.signzy import ERROR, FAILURE, PATRON_PLACEHOLDER, SUCCESS, TIMEOUT, SignzyTrigger

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context


class SignzySensor(HiddenBodies, BaseSensorOperator):
    """Wait until ``GET endpoint`` answers JSON that meets ``success_when`` (and ``response_check``).

    :param endpoint: path under the connection's Base URL; ``{patron_id}`` is filled from the token.
        Templated.
    :param success_when: ``{dotted.path: accepted value or list}``; done when every path matches,
        e.g. ``{"status": ["verified", "completed"]}``.
    :param failure_when: same form; the task fails at once (no retries) when any path matches.
    :param response_check: ``callable(json_body) -> bool``, run on the worker. Deferrable: it runs when
        the triggerer reports a candidate (an answer meeting ``success_when``, or every answer when
        there is no ``success_when``); False defers again until the same deadline.
    :param query_params: query parameters of the GET. Templated.
    :param login_task_id: the SignzyLoginOperator whose token non-deferrable pokes use (without one, each
        poke logs in and revokes its own token). Deferrable waits use the triggerer's shared login.
    :param deferrable: wait in the triggerer. Default: ``[operators] default_deferrable``.
    :param poke_interval: seconds between polls, whatever the answer. ``timeout``: seconds from the
        first try's start; the deadline is absolute and survives re-deferrals.

    :param result_privacy: ``"sealed"`` (default) or ``"plain"``, as for
        :class:`~airflow_provider_signzy.operators.signzy.SignzyOperator`; the trigger's event is sealed too.
    :param clear_fields: answer fields kept readable beside the seal (default ``id``, ``status``).

    Returns the JSON answer that ended the wait (to XCom), sealed unless ``result_privacy="plain"``;
    ``response_check`` always gets the answer opened.
    """

    template_fields: Sequence[str] = ("endpoint", "query_params", "signzy_conn_id")
    template_fields_renderers = {"query_params": "json"}
    body_fields: Sequence[str] = ("query_params",)
    ui_color = "#d4f0e8"

    def __init__(
        self,
        *,
        endpoint: str,
        success_when: Mapping[str, Any] | None = None,
        failure_when: Mapping[str, Any] | None = None,
        response_check: Callable[[Any], bool] | None = None,
        query_params: dict[str, Any] | None = None,
        login_task_id: str = DEFAULT_LOGIN_TASK_ID,
        signzy_conn_id: str = DEFAULT_CONN_ID,
        deferrable: bool | None = None,
        result_privacy: str = SEALED,
        clear_fields: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.result_privacy, self.clear_fields = check_privacy(result_privacy, clear_fields)
        self.endpoint = endpoint
        self.success_when = normalize(success_when, name="success_when")
        self.failure_when = normalize(failure_when, name="failure_when")
        if not self.success_when and response_check is None:
            raise ValueError(f"SignzySensor {self.task_id!r} needs success_when or response_check: what ends the wait?")
        self.response_check = response_check
        self.query_params = query_params
        self.login_task_id = login_task_id
        self.signzy_conn_id = signzy_conn_id
        if deferrable is None:
            deferrable = conf.getboolean("operators", "default_deferrable", fallback=False)
        self.deferrable = deferrable

    # -- deferrable --

    @without_inner_frames
    def execute(self, context: Context) -> Any:
        self._sealer()  # no Fernet key and not plain: fail now, not after the wait
        if not self.deferrable:
            return super().execute(context)
        self._defer(deadline=time.time() + self.timeout, first_poll_delay=0.0)

    def _defer(self, *, deadline: float, first_poll_delay: float) -> None:
        trigger = SignzyTrigger(
            endpoint=self.endpoint,
            deadline=deadline,
            success_when=self.success_when,
            failure_when=self.failure_when,
            # Sealed: Airflow 3.3 stores a deferring task's trigger kwargs in the clear (the trigger row).
            query_params=self._sealer().seal(unseal(self.body("query_params"))),
            poke_interval=self.poke_interval,
            first_poll_delay=first_poll_delay,
            report_every_answer=not self.success_when,
            signzy_conn_id=self.signzy_conn_id,
            result_privacy=self.result_privacy,
            clear_fields=self.clear_fields,
        )
        # The Airflow-side timeout (a little later than the trigger's own) covers a triggerer that died.
        remaining = max(0.0, deadline - time.time())
        self.defer(trigger=trigger, method_name="execute_complete", timeout=timedelta(seconds=remaining + 60))

    @without_inner_frames
    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        status = event.get("status")
        if status == SUCCESS:
            body = event.get("body")  # sealed by the trigger unless result_privacy="plain"
            if self.response_check is not None and not self.response_check(unseal(body)):
                self.log.info("response_check said not yet: waiting again (same deadline)")
                self._defer(deadline=float(event["deadline"]), first_poll_delay=self.poke_interval)
            self.log.info("Signzy %s reached the expected state", self.endpoint)
            return body
        if status == FAILURE:
            raise AirflowFailException(self._failure_message(event["path"], event["value"]))
        if status == TIMEOUT:
            raise AirflowSensorTimeout(event.get("message") or "Signzy sensor timed out")
        message = event.get("message") if status == ERROR else f"unexpected trigger event {event!r}"
        raise SignzyError(str(message), status=event.get("signzy_status"), code=event.get("code"))

    # -- poking (not deferrable) --

    @without_inner_frames
    def poke(self, context: Context) -> bool | PokeReturnValue:
        record = pull_token_record(context["ti"], self.login_task_id)
        with SignzyHook(self.signzy_conn_id) as hook:
            token = token_from_record(hook, record, self.login_task_id) if record is not None else None
            patron_id = (token or hook.get_token()).user_id
            endpoint = self.endpoint.replace(PATRON_PLACEHOLDER, patron_id)
            try:
                response = hook.request("GET", endpoint, token=token, params=unseal(self.body("query_params")))
            except SignzyError as exc:
                if not is_transient(exc):
                    raise
                self.log.warning("Signzy poll of %s failed after retries (%s); trying again next poke", endpoint, exc)
                return False
        try:
            body = response.json()
        except ValueError:
            raise SignzyError(f"Signzy GET {endpoint} answered with a body that is not JSON") from None
        matched = first_match(body, self.failure_when)
        if matched is not None:
            raise AirflowFailException(self._failure_message(*matched))
        if self.success_when and not all_match(body, self.success_when):
            return False
        if self.response_check is not None and not self.response_check(body):
            return False
        return PokeReturnValue(is_done=True, xcom_value=self._sealer().seal(body))

    def _sealer(self) -> ResultSealer:
        with SignzyHook(self.signzy_conn_id) as hook:
            return ResultSealer.for_task(self, hook.config.extra)

    def _failure_message(self, path: str, value: Any) -> str:
        return (
            f"Signzy {self.endpoint}: {path} is {value!r}, a failure_when state ({path}: {self.failure_when[path]!r})"
        )
