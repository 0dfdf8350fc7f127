"""SignzyTrigger: polls a Signzy GET endpoint in the triggerer until a condition holds or time runs out.

Its kwargs hold the connection id, the endpoint and plain-data conditions: never the API key or a
token. The token comes from the triggerer's shared login (:mod:`.shared_login`): one per connection
per triggerer process, whatever the number of waiting sensors.

With ``end_from_trigger`` the trigger ends its task itself (``TaskSuccessEvent`` with the sealed answer
as XCom, ``TaskFailedEvent`` / ``TaskSkippedEvent``): no worker slot is used to finish the wait.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Mapping
from importlib.metadata import version
from typing import Any

from airflow.providers.common.compat.sdk import AirflowFailException
from airflow.triggers.base import BaseTrigger, TaskFailedEvent, TaskSkippedEvent, TaskSuccessEvent, TriggerEvent
from packaging.version import Version

from airflow_provider_signzy.exceptions import (
    SignzyAuthError,
    SignzyError,
    SignzyPermissionError,
    SignzyRateLimitError,
)
from airflow_provider_signzy.privacy.scrub import scrub
from airflow_provider_signzy.privacy.sealing import DEFAULT_CLEAR_FIELDS, SEALED, ResultSealer, has_sealed, unseal
from airflow_provider_signzy.triggers.shared_login import SharedLogin, shared_login
from airflow_provider_signzy.utils.answer_conditions import all_match, first_match, lookup
from airflow_provider_signzy.utils.fernet_cipher import SignzyCipher
from airflow_provider_signzy.utils.retry_policy import is_transient

PATRON_PLACEHOLDER = "{patron_id}"

#: Event ``status`` values the sensor acts on.
SUCCESS, FAILURE, TIMEOUT, ERROR = "success", "failure", "timeout", "error"

#: From 3.3.0 the triggerer routes a ``TaskFailedEvent`` to a retry when the task has retries left
#: (``models/trigger.py``, ``is_eligible_to_retry``); 3.0-3.2 fail the task for good. A ``failure_when``
#: state or a timeout must not be retried, so on 3.3+ a task that may still retry hands those back to
#: the worker, which fails it without retries (``AirflowFailException`` / ``AirflowSensorTimeout``).
TRIGGER_FAILURE_RETRIES = Version(version("apache-airflow")).release >= (3, 3)

#: A value shown in the "not yet" log line: a state-like word (``pending``, ``IN_REVIEW``, ``2``). Anything
#: else (free text, a name, an address) is shown as its type and length, never as its value.
_STATE_WORD = re.compile(r"[A-Za-z0-9_.:-]{1,40}")


def shown_value(value: Any) -> str:
    """A value from an answer as a log line may show it: a state word (scrubbed), else its shape."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int | float):
        return scrub(repr(value))  # a long number (an account, a phone) becomes <number>
    if isinstance(value, str):
        return scrub(value) if _STATE_WORD.fullmatch(value) else f"<str, {len(value)} chars>"
    if isinstance(value, Mapping):
        return f"<object, {len(value)} keys>"
    if isinstance(value, list | tuple):
        return f"<list, {len(value)} items>"
    return f"<{type(value).__name__}>"


def current_values(body: Any, paths: Mapping[str, Any]) -> str:
    """``status=pending, result.kyc=<absent>``: each path's value now, as :func:`shown_value` shows it."""
    parts = []
    for path in paths:
        value = lookup(body, path)
        # conditions.lookup answers a bare object() (its private sentinel) for a path that is not there.
        parts.append(f"{path}=<absent>" if type(value) is object else f"{path}={shown_value(value)}")
    return ", ".join(parts) if parts else "no success_when"


def failure_message(endpoint: str, path: str, value: Any, accepted: Any) -> str:
    """What a ``failure_when`` match says (``value`` is one of the DAG's own ``failure_when`` values)."""
    return f"Signzy {endpoint}: {path} is {value!r}, a failure_when state ({path}: {accepted!r})"


class SignzyTrigger(BaseTrigger):
    """Poll ``GET endpoint`` every ``poke_interval`` seconds until ``deadline`` (epoch seconds).

    Fires one event, a dict with ``status``:

    - ``success``: ``success_when`` holds (or, with ``report_every_answer``, any 2xx answer: the sensor's
      ``response_check`` then decides on the worker); ``body`` is the JSON answer, sealed unless
      ``result_privacy`` is ``"plain"`` (the triggerer logs events and Airflow stores them);
    - ``failure``: a ``failure_when`` condition holds; ``path`` and ``value`` (one of the DAG's own
      ``failure_when`` values) say which;
    - ``timeout``: the deadline passed; ``error``: a failure no retry cures (``message``), or
      ``max_consecutive_failures`` polls in a row failed (Signzy down).

    Every event carries ``deadline``, so a sensor that defers again keeps the same absolute deadline.
    Transient failures (5xx, 429, rate-limit 403, network) are retried with the hook's policy; when
    they outlast it, the trigger waits ``poke_interval`` (or ``Retry-After``, if longer) and polls again.

    ``end_from_trigger``: the trigger ends the task itself instead of handing the event to a worker.
    ``success`` becomes ``TaskSuccessEvent(xcoms={"return_value": body})`` (the body sealed as above);
    ``failure`` and ``timeout`` become ``TaskSkippedEvent`` with ``soft_fail``, else ``TaskFailedEvent``
    unless ``task_may_retry`` and this Airflow would retry it (3.3+: see ``TRIGGER_FAILURE_RETRIES``), in
    which case they go to the worker as before; ``error`` always goes to the worker (the task's retries
    apply). An end event still carries the plain event as its payload: the triggerer does not send it
    (it serializes only the state and the XComs), but ``dag.test()`` / ``airflow dags test``, which do not
    honour end events on any 3.x line, resume the task with it, so the task ends there as it would have.
    """

    def __init__(
        self,
        *,
        endpoint: str,
        deadline: float,
        success_when: dict[str, list[Any]] | None = None,
        failure_when: dict[str, list[Any]] | None = None,
        query_params: dict[str, Any] | None = None,
        poke_interval: float = 60.0,
        first_poll_delay: float = 0.0,
        report_every_answer: bool = False,
        signzy_conn_id: str = "signzy_default",
        result_privacy: str = SEALED,
        clear_fields: list[str] | tuple[str, ...] = DEFAULT_CLEAR_FIELDS,
        end_from_trigger: bool = False,
        soft_fail: bool = False,
        task_may_retry: bool = False,
        max_consecutive_failures: int | None = None,
    ) -> None:
        super().__init__()
        self.endpoint = endpoint
        self.deadline = float(deadline)
        self.success_when = success_when or {}
        self.failure_when = failure_when or {}
        self.query_params = query_params
        self.poke_interval = float(poke_interval)
        self.first_poll_delay = float(first_poll_delay)
        self.report_every_answer = report_every_answer
        self.signzy_conn_id = signzy_conn_id
        self.result_privacy = result_privacy
        self.clear_fields = list(clear_fields)
        self.end_from_trigger = end_from_trigger
        self.soft_fail = soft_fail
        self.task_may_retry = task_may_retry
        self.max_consecutive_failures = max_consecutive_failures

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "endpoint": self.endpoint,
                "deadline": self.deadline,
                "success_when": self.success_when,
                "failure_when": self.failure_when,
                "query_params": self.query_params,
                "poke_interval": self.poke_interval,
                "first_poll_delay": self.first_poll_delay,
                "report_every_answer": self.report_every_answer,
                "signzy_conn_id": self.signzy_conn_id,
                "result_privacy": self.result_privacy,
                "clear_fields": self.clear_fields,
                "end_from_trigger": self.end_from_trigger,
                "soft_fail": self.soft_fail,
                "task_may_retry": self.task_may_retry,
                "max_consecutive_failures": self.max_consecutive_failures,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        event = await self.wait()
        yield self.event_for({**event, "deadline": self.deadline})

    def event_for(self, event: dict[str, Any]) -> TriggerEvent:
        """The event to fire: an end event when this trigger ends the task, else ``event`` for the worker."""
        status = event["status"]
        if not self.end_from_trigger or status == ERROR:
            return TriggerEvent(event)
        ending: TriggerEvent
        if status == SUCCESS:
            self.log.info(
                "Signzy %s reached the expected state (poll %s): the task ends here, in the triggerer, "
                "with the answer%s as its XCom",
                self.endpoint,
                event.get("polls"),
                " (sealed)" if self.result_privacy == SEALED else "",
            )
            ending = TaskSuccessEvent(xcoms={"return_value": event.get("body")})
        elif self.soft_fail:
            self.log.info("%s: soft_fail, so the task is skipped here, in the triggerer", self._reason(event))
            ending = TaskSkippedEvent()
        elif self.task_may_retry and TRIGGER_FAILURE_RETRIES:
            # This Airflow would retry a TaskFailedEvent; the worker fails it without retries.
            return TriggerEvent(event)
        else:
            self.log.error("%s: the task fails here, in the triggerer, without retries", self._reason(event))
            ending = TaskFailedEvent()
        # Read only where end events are not honoured (dag.test() resumes the task with the payload); the
        # triggerer serializes an end event as its state and XComs alone.
        ending.payload = event
        return ending

    def _reason(self, event: dict[str, Any]) -> str:
        if event["status"] == FAILURE:
            path = event["path"]
            return failure_message(self.endpoint, path, event["value"], self.failure_when.get(path))
        return f"Sensor timed out: {event.get('message')}"

    async def wait(self) -> dict[str, Any]:
        """Poll until an event is due; the shared login is released before the event leaves."""
        try:
            async with shared_login(self.signzy_conn_id, self.log) as login:
                return await self._poll_until_done(login)
        except SignzyError as exc:
            self.log.error("Signzy wait on %s ended with an error: %s", self.endpoint, exc)
            # final: an error no retry of the task can fix (a firewall's 403, a refused login, a bad connection).
            final = isinstance(exc, AirflowFailException)
            return {"status": ERROR, "message": str(exc), "signzy_status": exc.status, "code": exc.code, "final": final}

    async def _poll_until_done(self, login: SharedLogin) -> dict[str, Any]:
        polls, failures, last = 0, 0, False
        if self.first_poll_delay > 0:
            last = await self._sleep(self.first_poll_delay)
        while True:  # the sleep below wakes at the deadline at the latest: one last poll, then timeout
            polls += 1
            pause = self.poke_interval
            try:
                body = await self._poll(login)
            except SignzyError as exc:
                if not is_transient(exc):
                    raise
                if exc.retry_after is not None:
                    pause = max(pause, exc.retry_after)
                if not isinstance(exc, SignzyRateLimitError):  # busy is not down: only outages count
                    failures += 1
                    if self.max_consecutive_failures and failures >= self.max_consecutive_failures:
                        raise self._given_up(exc, failures) from None
                self.log.warning(
                    "Signzy poll %d of %s failed after retries (%s); %snext poll in %.1fs",
                    polls,
                    self.endpoint,
                    exc,
                    self._failures_so_far(failures),
                    pause,
                )
            else:
                failures = 0
                matched = first_match(body, self.failure_when)
                if matched is not None:
                    return {"status": FAILURE, "path": matched[0], "value": matched[1]}
                if self.report_every_answer or all_match(body, self.success_when):
                    return {"status": SUCCESS, "body": await self._sealed(login, body), "polls": polls}
                self.log.info(
                    "Signzy poll %d of %s: not yet (%s); next poll in %.1fs",
                    polls,
                    self.endpoint,
                    current_values(body, self.success_when),
                    pause,
                )
            if last or time.time() >= self.deadline:
                return {"status": TIMEOUT, "message": self._timeout_message(polls)}
            last = await self._sleep(pause)

    def _failures_so_far(self, failures: int) -> str:
        if not self.max_consecutive_failures or not failures:
            return ""
        return f"{failures} of max_consecutive_failures={self.max_consecutive_failures} in a row; "

    def _given_up(self, exc: SignzyError, failures: int) -> SignzyError:
        return SignzyError(
            f"Signzy {self.endpoint}: {failures} polls in a row failed, each after the retry policy's attempts "
            f"(max_consecutive_failures={self.max_consecutive_failures}): Signzy looks down, so the wait ends "
            f"here instead of at its timeout. The last failure: {exc}",
            status=exc.status,
            code=exc.code,
            conn_id=self.signzy_conn_id,
        )

    async def _sealed(self, login: SharedLogin, body: Any) -> Any:
        """The answer as the event may carry it: sealed with the connection's keys, unless plain."""
        config = (await login.client()).config
        sealer = ResultSealer.for_connection(
            self.signzy_conn_id, config.extra, result_privacy=self.result_privacy, clear_fields=self.clear_fields
        )
        return sealer.seal(body)

    async def _sleep(self, seconds: float) -> bool:
        """Sleep, but wake at the deadline for one last poll; True when that is what happened."""
        remaining = self.deadline - time.time()
        await asyncio.sleep(max(0.0, min(seconds, remaining)))
        return remaining <= seconds

    def _timeout_message(self, polls: int) -> str:
        return f"Signzy {self.endpoint} did not reach the expected state before the sensor's timeout ({polls} polls)"

    async def _params(self, login: SharedLogin) -> Any:
        """The query parameters, opened (the sensor seals them: trigger kwargs are stored in the clear)."""
        if not has_sealed(self.query_params):
            return self.query_params
        config = (await login.client()).config
        return unseal(self.query_params, cipher=SignzyCipher.for_connection(config.extra, self.signzy_conn_id))

    async def _poll(self, login: SharedLogin) -> Any:
        """One GET with the shared token; on a 401, one fresh login, then a permission error."""
        params = await self._params(login)
        return await poll_json(login, self.endpoint, params=params, conn_id=self.signzy_conn_id, log=self.log)


async def poll_json(login: SharedLogin, endpoint: str, *, params: dict[str, Any] | None, conn_id: str, log: Any) -> Any:
    """``GET endpoint`` with the shared token, parsed; on a 401, one fresh login, then a permission error."""
    client = await login.client()
    token = await login.token()

    def path(patron_id: str) -> str:
        return endpoint.replace(PATRON_PLACEHOLDER, patron_id)

    try:
        response = await client.send("GET", path(token.user_id), idempotent=True, token=token, params=params)
    except SignzyAuthError as first:
        log.warning("Signzy answered 401 %s to GET %s: logging in again once", first.code or "", first.path)
        token = await login.token(stale=token)
        try:
            response = await client.send("GET", path(token.user_id), idempotent=True, token=token, params=params)
        except SignzyAuthError as second:
            raise second.restated(
                SignzyPermissionError,
                f"Signzy refused GET {second.path} with a fresh token too ({second.status} {second.code or ''} "
                f"{second.signzy_message}): patron {token.user_id} may not read this resource. This is a "
                f"permission problem, not an expired token (connection {conn_id!r})",
            ) from None
    try:
        return response.json()
    except ValueError:
        shown = "/" + path(token.user_id).lstrip("/").split("?", 1)[0]
        raise SignzyError(
            f"Signzy GET {shown} answered {response.status_code} with a body that is not JSON",
            status=response.status_code,
            conn_id=conn_id,
        ) from None
