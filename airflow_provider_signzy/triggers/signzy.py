"""SignzyTrigger: polls a Signzy GET endpoint in the triggerer until a condition holds or time runs out.

Its kwargs hold the connection id, the endpoint and plain-data conditions: never the API key or a
token. The token comes from the triggerer's shared login (:mod:`.shared_login`): one per connection
per triggerer process, whatever the number of waiting sensors.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_signzy.conditions import all_match, first_match
from airflow_provider_signzy.exceptions import SignzyAuthError, SignzyError, SignzyPermissionError
from airflow_provider_signzy.privacy.sealing import DEFAULT_CLEAR_FIELDS, SEALED, ResultSealer, has_sealed, unseal
from airflow_provider_signzy.retry import is_transient
from airflow_provider_signzy.token import TokenCipher
from airflow_provider_signzy.triggers.shared_login import SharedLogin, shared_login

PATRON_PLACEHOLDER = "{patron_id}"

#: Event ``status`` values the sensor acts on.
SUCCESS, FAILURE, TIMEOUT, ERROR = "success", "failure", "timeout", "error"


class SignzyTrigger(BaseTrigger):
    """Poll ``GET endpoint`` every ``poke_interval`` seconds until ``deadline`` (epoch seconds).

    Fires one event, a dict with ``status``:

    - ``success``: ``success_when`` holds (or, with ``report_every_answer``, any 2xx answer: the sensor's
      ``response_check`` then decides on the worker); ``body`` is the JSON answer, sealed unless
      ``result_privacy`` is ``"plain"`` (the triggerer logs events and Airflow stores them);
    - ``failure``: a ``failure_when`` condition holds; ``path`` and ``value`` (one of the DAG's own
      ``failure_when`` values) say which;
    - ``timeout``: the deadline passed; ``error``: a failure no retry cures (``message``).

    Every event carries ``deadline``, so a sensor that defers again keeps the same absolute deadline.
    Transient failures (5xx, 429, rate-limit 403, network) are retried with the hook's policy; when
    they outlast it, the trigger waits ``poke_interval`` (or ``Retry-After``, if longer) and polls again.
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
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        event = await self.wait()
        yield TriggerEvent({**event, "deadline": self.deadline})

    async def wait(self) -> dict[str, Any]:
        """Poll until an event is due; the shared login is released before the event leaves."""
        try:
            async with shared_login(self.signzy_conn_id, self.log) as login:
                return await self._poll_until_done(login)
        except SignzyError as exc:
            self.log.error("Signzy wait on %s ended with an error: %s", self.endpoint, exc)
            return {"status": ERROR, "message": str(exc), "signzy_status": exc.status, "code": exc.code}

    async def _poll_until_done(self, login: SharedLogin) -> dict[str, Any]:
        polls, last = 0, False
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
                self.log.warning(
                    "Signzy poll %d of %s failed after retries (%s); next poll in %.1fs",
                    polls,
                    self.endpoint,
                    exc,
                    pause,
                )
            else:
                matched = first_match(body, self.failure_when)
                if matched is not None:
                    return {"status": FAILURE, "path": matched[0], "value": matched[1]}
                if self.report_every_answer or all_match(body, self.success_when):
                    return {"status": SUCCESS, "body": await self._sealed(login, body), "polls": polls}
                self.log.info("Signzy poll %d of %s: not yet; next poll in %.1fs", polls, self.endpoint, pause)
            if last or time.time() >= self.deadline:
                return {"status": TIMEOUT, "message": self._timeout_message(polls)}
            last = await self._sleep(pause)

    async def _params(self, login: SharedLogin) -> Any:
        """The query parameters, opened (the sensor seals them: trigger kwargs are stored in the clear)."""
        if not has_sealed(self.query_params):
            return self.query_params
        config = (await login.client()).config
        return unseal(self.query_params, cipher=TokenCipher.for_connection(config.extra, self.signzy_conn_id))

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

    async def _poll(self, login: SharedLogin) -> Any:
        """One GET with the shared token; on a 401, one fresh login, then a permission error."""
        client = await login.client()
        token = await login.token()
        try:
            response = await client.send(
                "GET", self._path(token.user_id), idempotent=True, token=token, params=await self._params(login)
            )
        except SignzyAuthError as first:
            self.log.warning("Signzy answered 401 %s to GET %s: logging in again once", first.code or "", first.path)
            token = await login.token(stale=token)
            try:
                response = await client.send(
                    "GET", self._path(token.user_id), idempotent=True, token=token, params=await self._params(login)
                )
            except SignzyAuthError as second:
                raise second.restated(
                    SignzyPermissionError,
                    f"Signzy refused GET {second.path} with a fresh token too ({second.status} {second.code or ''} "
                    f"{second.signzy_message}): patron {token.user_id} may not read this resource. This is a "
                    f"permission problem, not an expired token (connection {self.signzy_conn_id!r})",
                ) from None
        try:
            return response.json()
        except ValueError:
            raise SignzyError(
                f"Signzy GET {self._shown_path(token.user_id)} answered {response.status_code} "
                "with a body that is not JSON",
                status=response.status_code,
                conn_id=self.signzy_conn_id,
            ) from None

    def _path(self, patron_id: str) -> str:
        return self.endpoint.replace(PATRON_PLACEHOLDER, patron_id)

    def _shown_path(self, patron_id: str) -> str:
        return "/" + self._path(patron_id).lstrip("/").split("?", 1)[0]
