"""The hook as TaskFlow code uses it: `{patron_id}` filled as in the operators, and the parsed answer."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from airflow_provider_signzy.emulator import SignzyEmulator
from airflow_provider_signzy.exceptions import SignzyPermissionError
from airflow_provider_signzy.hooks.signzy import SignzyHook

IDENTITIES = "/api/v2/patrons/{patron_id}/identities"


@pytest.fixture
def conn(make_conn: Callable[..., str]) -> str:
    return make_conn()


def test_patron_id_is_filled_with_the_hooks_own_token(conn: str, emulator: SignzyEmulator) -> None:
    with SignzyHook() as hook:
        created = hook.request_json("POST", IDENTITIES, json={"type": "individualPan"})
        listed = hook.request_json("GET", IDENTITIES)
    assert created["patronId"] == "patron-demo-0001"
    assert [i["id"] for i in listed] == [created["id"]]
    state = emulator.state.snapshot()
    assert (state["logins"], state["live_tokens"]) == (1, 0)  # one login served the placeholder and both calls


def test_patron_id_is_filled_with_a_given_token(conn: str, emulator: SignzyEmulator) -> None:
    hook = SignzyHook()
    token = hook.login(ttl=60)
    response = hook.request("GET", "/api/v2/patrons/{patron_id}", token=token)
    assert response.json()["id"] == token.user_id
    assert hook.owned_token is None  # the given token served; the hook did not log in for itself
    hook.logout(token)
    hook.close()
    assert emulator.state.snapshot()["logins"] == 1


def test_another_patrons_path_is_still_a_permission_problem(conn: str, emulator: SignzyEmulator) -> None:
    # What a user met before `{patron_id}` worked in the hook: a literal path that is not theirs.
    with SignzyHook() as hook, pytest.raises(SignzyPermissionError, match="may not use this resource"):
        hook.request("GET", "/api/v2/patrons/someone-else/identities")


def test_request_json_returns_what_the_operator_returns(conn: str, emulator: SignzyEmulator) -> None:
    with SignzyHook() as hook:
        assert hook.request_json("GET", "/api/v2/patrons/{patron_id}")["username"] == "demo"
