"""The call ledger's rules, and the hook's paid-call path outside a task (no task state store there)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_signzy.emulator import SignzyEmulator
from airflow_provider_signzy.envelope import error_from_exception
from airflow_provider_signzy.exceptions import (
    SignzyAuthError,
    SignzyClientError,
    SignzyConnectionError,
    SignzyOutcomeUnknownError,
    SignzyRateLimitError,
    SignzyServerError,
)
from airflow_provider_signzy.hooks.signzy import SignzyHook
from airflow_provider_signzy.ledger import TaskScope, body_digest, signzy_acted

IDENTITIES = "/api/v2/patrons/patron-demo-0001/identities"


def test_digest_ignores_key_order_and_tells_bodies_apart() -> None:
    assert body_digest({"a": 1, "b": [1, 2]}, None, None) == body_digest({"b": [1, 2], "a": 1}, None, None)
    assert body_digest({"a": 1}, None, None) != body_digest({"a": 2}, None, None)
    assert body_digest({"a": 1}, {"q": 1}, None) != body_digest({"a": 1}, None, None)
    assert body_digest({"a": 1}, None, "verify-42") == body_digest({"a": 2}, None, "verify-42")


@pytest.mark.parametrize(
    ("error", "acted"),
    [
        (SignzyConnectionError("x", reached_server=False), False),
        (SignzyConnectionError("x", reached_server=True), None),
        (SignzyServerError("x", status=502), None),
        (SignzyClientError("x", status=422), False),
        (SignzyRateLimitError("x", status=429), False),
        (SignzyAuthError("x", status=401), False),
        (RuntimeError("the try was interrupted"), None),
    ],
)
def test_what_counts_as_acted_on(error: BaseException, acted: bool | None) -> None:
    assert signzy_acted(error) is acted


def test_a_request_that_cannot_be_built_never_reached_signzy() -> None:
    error = error_from_exception(
        requests.exceptions.InvalidJSONError("not JSON"), method="POST", path="/p", conn_id="c", timeout=1
    )
    assert error.reached_server is False
    assert signzy_acted(error) is False


def test_outside_a_task_there_is_no_ledger_scope() -> None:
    assert TaskScope.current() is None


def test_lost_answer_outside_a_task_fails_without_retries_and_says_a_clear_resends(
    make_conn: Callable[..., str], emulator: SignzyEmulator
) -> None:
    make_conn()
    emulator.faults.add({"path": IDENTITIES, "method": "POST", "faults": [{"drop": "after"}]})
    with SignzyHook() as hook, pytest.raises(SignzyOutcomeUnknownError) as raised:
        hook.request("POST", IDENTITIES, json={"type": "individualPan"})
    assert isinstance(raised.value, AirflowFailException)
    assert "There is no call ledger here" in str(raised.value)
    assert emulator.state.snapshot()["requests"]["POST /api/v2/patrons/{userId}/identities"] == 1


def test_refused_post_keeps_its_own_error(make_conn: Callable[..., str], emulator: SignzyEmulator) -> None:
    make_conn()
    emulator.faults.add({"path": IDENTITIES, "method": "POST", "faults": [{"status": 422, "code": "INVALID"}]})
    with SignzyHook() as hook, pytest.raises(SignzyClientError) as raised:
        hook.request("POST", IDENTITIES, json={"type": "individualPan"})
    assert not isinstance(raised.value, AirflowFailException)  # Airflow may retry it: Signzy did not act


def test_default_token_lifetime_is_an_hour(make_conn: Callable[..., str], emulator: SignzyEmulator) -> None:
    make_conn()
    hook = SignzyHook()
    token = hook.login()
    assert token.ttl == 3600
    assert emulator.state.live_tokens()[0].ttl == 3600  # asked for at login, not just assumed
    assert hook.logout(token)
