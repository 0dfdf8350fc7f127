"""SignzyTrigger on a real event loop against the emulator over HTTP: the shared login and its revocation.

The triggerer itself is not started here (tests/dags runs triggers through dag.test(), and the
benchmarks on a deployment); these tests run many triggers on one loop, as one triggerer process does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from airflow_provider_signzy.emulator import SignzyEmulator
from airflow_provider_signzy.triggers.shared_login import active_logins
from airflow_provider_signzy.triggers.signzy import SignzyTrigger

KEY = "demo-api-key-0123456789"


def create_identities(emu: SignzyEmulator, n: int) -> list[str]:
    token = requests.post(emu.url + "/api/v2/patrons/login", json={"username": "demo", "password": KEY}, timeout=5)
    headers = {"Authorization": token.json()["id"]}
    url = f"{emu.url}/api/v2/patrons/patron-demo-0001/identities"
    ids = [requests.post(url, json={"type": "x"}, headers=headers, timeout=5).json()["id"] for _ in range(n)]
    requests.post(emu.url + "/api/v2/patrons/logout", headers=headers, timeout=5)
    return ids


def trigger_for(identity_id: str, **kwargs: Any) -> SignzyTrigger:
    kwargs.setdefault("deadline", time.time() + 60)
    kwargs.setdefault("poke_interval", 0.1)
    return SignzyTrigger(
        endpoint=f"/api/v2/patrons/{{patron_id}}/identities/{identity_id}",
        success_when={"status": ["verified"]},
        failure_when={"status": ["rejected"]},
        **kwargs,
    )


async def first_event(trigger: SignzyTrigger) -> dict[str, Any]:
    async for event in trigger.run():
        return dict(event.payload)
    raise AssertionError("the trigger ended without an event")


async def until(check: Callable[[], bool], what: str) -> None:
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def test_serialize_holds_no_secret_and_round_trips() -> None:
    trigger = trigger_for("abc", deadline=123.0)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_signzy.triggers.signzy.SignzyTrigger"
    assert SignzyTrigger(**kwargs).serialize() == (classpath, kwargs)
    assert KEY not in repr(kwargs)
    assert set(kwargs) >= {"signzy_conn_id", "endpoint", "deadline"}


def test_many_waiting_triggers_share_one_login_revoked_by_the_last(
    emulator: SignzyEmulator, make_conn: Callable[..., str]
) -> None:
    make_conn()
    ids = create_identities(emulator, 40)

    async def scenario() -> list[dict[str, Any]]:
        tasks = [asyncio.create_task(first_event(trigger_for(i))) for i in ids]
        await until(
            lambda: emulator.state.snapshot()["requests"].get("GET /api/v2/patrons/{userId}/identities/{id}", 0) >= 40,
            "every trigger to poll once",
        )
        assert active_logins() == {"signzy_default": 40}
        for i in ids:
            emulator.state.set_identity_status(i, "verified")
        events = await asyncio.gather(*tasks)
        assert active_logins() == {}
        return events

    before = emulator.state.snapshot()["logins"]
    events = asyncio.run(scenario())
    assert {e["status"] for e in events} == {"success"}
    assert all(e["body"]["status"] == "verified" for e in events)
    state = emulator.state.snapshot()
    assert state["logins"] - before == 1  # 40 waiting triggers, one login
    assert state["live_tokens"] == 0  # revoked when the last one ended


def test_cancelled_triggers_release_the_login_and_the_last_revokes_it(
    emulator: SignzyEmulator, make_conn: Callable[..., str]
) -> None:
    make_conn()
    ids = create_identities(emulator, 3)

    async def scenario() -> None:
        tasks = [asyncio.create_task(first_event(trigger_for(i))) for i in ids]
        await until(lambda: emulator.state.snapshot()["live_tokens"] == 1, "the shared login")
        for task in tasks[:2]:
            task.cancel()
        await asyncio.gather(*tasks[:2], return_exceptions=True)
        assert emulator.state.snapshot()["live_tokens"] == 1  # the third trigger still uses it
        assert active_logins() == {"signzy_default": 1}
        tasks[2].cancel()  # as the triggerer does when a user marks the task, or when it stops
        with pytest.raises(asyncio.CancelledError):
            await tasks[2]

    asyncio.run(scenario())
    state = emulator.state.snapshot()
    assert (state["logins"], state["logouts"], state["live_tokens"]) == (2, 2, 0)  # setup login + shared one


def test_failure_and_timeout_events(emulator: SignzyEmulator, make_conn: Callable[..., str]) -> None:
    make_conn()
    rejected, never = create_identities(emulator, 2)
    emulator.state.set_identity_status(rejected, "rejected")

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        return await asyncio.gather(
            first_event(trigger_for(rejected)), first_event(trigger_for(never, deadline=time.time() + 0.5))
        )

    failure, timeout = asyncio.run(scenario())
    assert (failure["status"], failure["path"], failure["value"]) == ("failure", "status", "rejected")
    assert timeout["status"] == "timeout"
    assert "did not reach the expected state" in timeout["message"]
    assert emulator.state.snapshot()["live_tokens"] == 0


def test_a_wrong_api_key_ends_with_an_error_event_not_a_loop(
    emulator: SignzyEmulator, make_conn: Callable[..., str]
) -> None:
    make_conn(password="wrong-key-98765")
    event = asyncio.run(first_event(trigger_for("any")))
    assert event["status"] == "error"
    assert "Check the Username and API key of connection 'signzy_default'" in event["message"]
    assert "wrong-key-98765" not in event["message"]
    assert emulator.state.snapshot()["requests"]["POST /api/v2/patrons/login"] == 1


def test_an_unknown_connection_ends_with_an_error_event(emulator: SignzyEmulator) -> None:
    event = asyncio.run(first_event(trigger_for("any", signzy_conn_id="signzy_nowhere")))
    assert event["status"] == "error"
    assert "could not read connection 'signzy_nowhere'" in event["message"]
    assert emulator.state.snapshot()["total_requests"] == 0


def test_a_trigger_cancelled_mid_login_still_revokes_the_token_signzy_issued(
    emulator: SignzyEmulator, make_conn: Callable[..., str]
) -> None:
    make_conn()
    emulator.faults.add({"path": "/api/v2/patrons/login", "faults": [{"delay": 0.5}]})  # a slow login

    async def scenario() -> None:
        task = asyncio.create_task(first_event(trigger_for("any")))
        await until(lambda: emulator.state.snapshot()["requests"].get("POST /api/v2/patrons/login", 0) == 1, "login")
        task.cancel()  # while Signzy is still answering the login
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    state = emulator.state.snapshot()
    assert (state["logins"], state["logouts"], state["live_tokens"]) == (1, 1, 0)


def test_the_shared_token_is_renewed_before_it_expires_and_the_old_one_revoked(
    emulator: SignzyEmulator, make_conn: Callable[..., str]
) -> None:
    make_conn(token_ttl=2)  # renewed when less than a tenth of its life is left
    (identity,) = create_identities(emulator, 1)
    event = asyncio.run(first_event(trigger_for(identity, deadline=time.time() + 3, poke_interval=0.3)))
    assert event["status"] == "timeout"
    state = emulator.state.snapshot()
    assert state["expired"] == 0  # no poll ever used an expired token
    assert state["logins"] >= 3  # the setup login, the shared one, at least one renewal
    assert state["logouts"] == state["logins"]  # each replaced token, and the last, revoked
    assert state["live_tokens"] == 0
