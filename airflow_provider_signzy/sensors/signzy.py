"""SignzySensor: wait until a Signzy resource reaches a state, deferred to the triggerer or poking.

Deferrable (the default when ``[operators] default_deferrable`` is on): no worker slot is held while
waiting; the triggerer polls with its shared login (one per connection, however many sensors wait), and,
without a ``response_check``, ends the task there too (success with the sealed answer as XCom).
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

from airflow_provider_signzy.exceptions import SignzyError
from airflow_provider_signzy.hooks.signzy import SignzyHook
from airflow_provider_signzy.privacy.rendered import HiddenBodies
from airflow_provider_signzy.privacy.sealing import SEALED, ResultSealer, check_privacy, unseal
from airflow_provider_signzy.privacy.tracebacks import without_inner_frames
from airflow_provider_signzy.triggers.signzy import (
    ERROR,
    FAILURE,
    PATRON_PLACEHOLDER,
    SUCCESS,
    TIMEOUT,
    SignzyTrigger,
    current_values,
    failure_message,
)
from airflow_provider_signzy.utils.answer_conditions import all_match, first_match, normalize
from airflow_provider_signzy.utils.connection_form import DEFAULT_CONN_ID
from airflow_provider_signzy.utils.retry_policy import is_transient
from airflow_provider_signzy.utils.token_xcom import DEFAULT_LOGIN_TASK_ID, pull_token_record, token_from_record

#: Polls in a row that may fail (each after the retry policy's attempts) before a deferred wait gives up.
DEFAULT_MAX_CONSECUTIVE_FAILURES = 10

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

    :param end_from_trigger: deferrable only. ``None`` (default): the triggerer ends the task itself when
        there is no ``response_check`` and no listener plugin is installed (Airflow does not call listeners
        for tasks that end in the triggerer); ``True``: always (not with ``response_check``; Airflow refuses
        the DAG when listeners are installed); ``False``: every wait is handed back to a worker, as before.
    :param max_consecutive_failures: deferrable only: polls in a row that may fail, each after the
        connection's retry policy, before the wait fails with the last error (default 10; ``None``: poll a
        failing Signzy until the timeout). Rate-limit answers do not count: a busy Signzy is not down.

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
        end_from_trigger: bool | None = None,
        max_consecutive_failures: int | None = DEFAULT_MAX_CONSECUTIVE_FAILURES,
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
        if end_from_trigger and response_check is not None:
            raise ValueError(
                f"SignzySensor {self.task_id!r}: end_from_trigger=True cannot run a response_check (it runs on a "
                "worker); leave end_from_trigger unset"
            )
        # Airflow's DAG processor reads this attribute: True with listener plugins installed is refused.
        self.end_from_trigger = end_from_trigger
        if max_consecutive_failures is not None and (
            isinstance(max_consecutive_failures, bool) or int(max_consecutive_failures) < 1
        ):
            raise ValueError(
                f"max_consecutive_failures must be a positive number or None, got {max_consecutive_failures!r}"
            )
        self.max_consecutive_failures = max_consecutive_failures

    # -- deferrable --

    @without_inner_frames
    def execute(self, context: Context) -> Any:
        self._sealer()  # no Fernet key and not plain: fail now, not after the wait
        if not self.deferrable:
            return super().execute(context)
        self._defer(deadline=time.time() + self.timeout, first_poll_delay=0.0, context=context)

    def _ends_in_triggerer(self) -> bool:
        if self.response_check is not None or self.end_from_trigger is False:
            return False
        if self.end_from_trigger is None and listeners_registered():
            self.log.info("Listener plugins are installed: the wait is handed back to a worker to end there")
            return False
        return True

    def _defer(self, *, deadline: float, first_poll_delay: float, context: Context | None = None) -> None:
        ti = context["ti"] if context is not None else None
        try_number = getattr(ti, "try_number", None) or 1
        max_tries = getattr(ti, "max_tries", None) or self.retries or 0
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
            end_from_trigger=self._ends_in_triggerer(),
            soft_fail=bool(self.soft_fail or getattr(self, "never_fail", False)),
            task_may_retry=bool(self.retries) and try_number <= max_tries,
            max_consecutive_failures=self.max_consecutive_failures,
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
                self._defer(deadline=float(event["deadline"]), first_poll_delay=self.poke_interval, context=context)
            self.log.info("Signzy %s reached the expected state", self.endpoint)
            return body
        if status == FAILURE:
            raise AirflowFailException(self._failure_message(event["path"], event["value"]))
        if status == TIMEOUT:
            raise AirflowSensorTimeout(event.get("message") or "Signzy sensor timed out")
        message = event.get("message") if status == ERROR else f"unexpected trigger event {event!r}"
        if event.get("final"):  # no retry can fix it (a firewall's 403, a refused login): fail at once
            raise AirflowFailException(str(message))
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
            self.log.info("Signzy %s: not yet (%s)", endpoint, current_values(body, self.success_when))
            return False
        if self.response_check is not None and not self.response_check(body):
            return False
        return PokeReturnValue(is_done=True, xcom_value=self._sealer().seal(body))

    def _sealer(self) -> ResultSealer:
        with SignzyHook(self.signzy_conn_id) as hook:
            return ResultSealer.for_task(self, hook.config.extra)

    def _failure_message(self, path: str, value: Any) -> str:
        return failure_message(self.endpoint, path, value, self.failure_when[path])


def listeners_registered() -> bool:
    """True when a listener plugin is installed: Airflow calls no listener for a task ended by its trigger."""
    try:
        from airflow.sdk.listener import get_listener_manager

        return bool(get_listener_manager().has_listeners)
    except ImportError:  # before 3.2
        from airflow.listeners.listener import get_listener_manager as manager_before_3_2

        return bool(manager_before_3_2().has_listeners)
