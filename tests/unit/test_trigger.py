"""SignzyTrigger on a real event loop against the emulator over HTTP: the shared login and its revocation.

The triggerer itself is not started here (tests/dags runs triggers through dag.test(), and the
benchmarks on a deployment); these tests run many triggers on one loop, as one triggerer process does.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
from outage import OutageProxy

from airflow_provider_signzy.emulator import SignzyEmulator
from airflow_provider_signzy.triggers.shared_login import active_logins
from airflow_provider_signzy.triggers.signzy import TRIGGER_FAILURE_RETRIES, SignzyTrigger, shown_value

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


# -- ending the task in the triggerer ----------------------------------------------------------------


async def first_raw_event(trigger: SignzyTrigger) -> Any:
    async for event in trigger.run():
        return event
    raise AssertionError("the trigger ended without an event")


def as_the_triggerer_sends_it(event: Any) -> Any:
    """The event after the trigger runner -> supervisor channel: the triggerer's own pydantic union."""
    from airflow.triggers.base import DiscrimatedTriggerEvent
    from pydantic import TypeAdapter

    adapter = TypeAdapter(DiscrimatedTriggerEvent)
    return adapter.validate_json(adapter.dump_json(event))


def test_success_ends_the_task_with_the_sealed_answer_as_xcom(
    emulator: SignzyEmulator, make_conn: Callable[..., str]
) -> None:
    from airflow.triggers.base import TaskSuccessEvent

    make_conn()
    (identity,) = create_identities(emulator, 1)
    emulator.state.identities[identity].update({"name": "Asha Verma", "pan": "ABCDE1234F"})
    emulator.state.set_identity_status(identity, "verified")
    event = asyncio.run(first_raw_event(trigger_for(identity, end_from_trigger=True)))
    assert isinstance(event, TaskSuccessEvent)
    xcom = event.xcoms["return_value"]
    assert (xcom["id"], xcom["status"]) == (identity, "verified")  # the clear fields beside the seal
    assert "signzy_sealed" in xcom
    sent = as_the_triggerer_sends_it(event)
    assert isinstance(sent, TaskSuccessEvent)
    assert sent.xcoms == event.xcoms  # what Airflow pushes as the task's return_value
    assert "deadline" not in repr(sent.model_dump())  # the fallback payload stays in the trigger process
    for personal in ("Asha Verma", "ABCDE1234F"):
        assert personal not in json.dumps(event.model_dump()) + repr(event)
    assert event.payload["status"] == "success"  # what dag.test() resumes the task with instead
    assert emulator.state.snapshot()["live_tokens"] == 0


@pytest.mark.parametrize(
    ("kwargs", "ending"),
    [
        ({}, "TaskFailedEvent"),
        ({"soft_fail": True}, "TaskSkippedEvent"),
        # A task with retries left: 3.3's triggerer would retry a TaskFailedEvent, so the worker ends it.
        ({"task_may_retry": True}, "TriggerEvent" if TRIGGER_FAILURE_RETRIES else "TaskFailedEvent"),
    ],
)
def test_failure_when_and_timeout_end_in_the_triggerer_unless_retries_would_follow(
    emulator: SignzyEmulator, make_conn: Callable[..., str], kwargs: dict[str, Any], ending: str
) -> None:
    make_conn()
    rejected, never = create_identities(emulator, 2)
    emulator.state.set_identity_status(rejected, "rejected")

    async def scenario() -> list[Any]:
        return list(
            await asyncio.gather(
                first_raw_event(trigger_for(rejected, end_from_trigger=True, **kwargs)),
                first_raw_event(trigger_for(never, end_from_trigger=True, deadline=time.time() + 0.3, **kwargs)),
            )
        )

    failure, timeout = asyncio.run(scenario())
    assert type(failure).__name__ == type(timeout).__name__ == ending
    assert failure.payload["status"] == "failure"
    assert timeout.payload["status"] == "timeout"
    assert as_the_triggerer_sends_it(failure).__class__.__name__ == ending


def test_an_error_always_goes_back_to_the_worker(emulator: SignzyEmulator, make_conn: Callable[..., str]) -> None:
    from airflow.triggers.base import BaseTaskEndEvent

    make_conn(password="wrong-key-98765")
    event = asyncio.run(first_raw_event(trigger_for("any", end_from_trigger=True)))
    assert not isinstance(event, BaseTaskEndEvent)  # the task's retries apply, on every line
    assert event.payload["status"] == "error"


# -- a dead Signzy, and the "not yet" line --------------------------------------------------------------


def test_a_dead_signzy_ends_the_wait_after_max_consecutive_failures(
    emulator: SignzyEmulator, make_conn: Callable[..., str]
) -> None:
    with OutageProxy(emulator.url) as proxy:
        make_conn(url=proxy.url, max_attempts=2)
        proxy.stop()  # Signzy's host is down: connections refused
        started = time.monotonic()
        event = asyncio.run(first_event(trigger_for("any", max_consecutive_failures=3, poke_interval=0.05)))
    assert time.monotonic() - started < 10  # not the 60 s deadline
    assert event["status"] == "error"
    assert "3 polls in a row failed" in event["message"]
    assert "max_consecutive_failures=3" in event["message"]
    assert "could not be opened" in event["message"]  # the last failure itself
    assert emulator.state.snapshot()["logins"] == 0  # nothing was issued, so nothing is left alive


def test_rate_limits_do_not_count_as_failures(emulator: SignzyEmulator, make_conn: Callable[..., str]) -> None:
    make_conn(max_attempts=1)
    (identity,) = create_identities(emulator, 1)
    emulator.faults.add({"path": "/api/v2/patrons/*/identities/*", "faults": [{"status": 429}] * 4})
    emulator.state.set_identity_status(identity, "verified")
    event = asyncio.run(first_event(trigger_for(identity, max_consecutive_failures=2, poke_interval=0.02)))
    assert event["status"] == "success"  # four 429s in a row: busy, not down


def test_a_token_signzy_could_not_revoke_is_revoked_by_the_next_login(
    emulator: SignzyEmulator, make_conn: Callable[..., str]
) -> None:
    (identity,) = create_identities(emulator, 1)
    with OutageProxy(emulator.url) as proxy:
        make_conn(url=proxy.url, max_attempts=1)

        async def scenario() -> dict[str, Any]:
            task = asyncio.create_task(
                first_event(trigger_for(identity, max_consecutive_failures=3, poke_interval=0.05))
            )
            await until(lambda: emulator.state.snapshot()["live_tokens"] == 1, "the shared login")
            proxy.stop()  # Signzy goes down with our token alive: the trigger cannot revoke it
            return await task

        event = asyncio.run(scenario())
        assert event["status"] == "error"
        assert emulator.state.snapshot()["live_tokens"] == 1
        proxy.start()  # back, on the same port
        emulator.state.set_identity_status(identity, "verified")
        assert asyncio.run(first_event(trigger_for(identity)))["status"] == "success"
    state = emulator.state.snapshot()
    assert (state["logins"], state["live_tokens"]) == (3, 0)  # setup, the lost one, the next: all revoked


def test_the_not_yet_line_names_each_paths_value_and_no_personal_data(
    emulator: SignzyEmulator,
    make_conn: Callable[..., str],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    make_conn()
    (identity,) = create_identities(emulator, 1)
    emulator.state.identities[identity].update({"name": "Asha Verma", "pan": "ABCDE1234F"})
    trigger = SignzyTrigger(
        endpoint=f"/api/v2/patrons/{{patron_id}}/identities/{identity}",
        success_when={"status": ["verified"], "name": ["x"], "pan": ["y"], "result.score": [1]},
        deadline=time.time() + 0.25,
        poke_interval=0.1,
    )
    caplog.set_level("INFO")
    assert asyncio.run(first_event(trigger))["status"] == "timeout"
    # Where the trigger's log goes depends on the version: log records (3.0) or structlog's console (3.2+).
    logged = [r.getMessage() for r in caplog.records] + capfd.readouterr().out.splitlines()
    lines = [line for line in logged if "not yet" in line]
    assert lines, "no 'not yet' line"
    assert "not yet (status=pending, name=<str, 10 chars>, pan=<pan>, result.score=<absent>)" in lines[0]
    assert not any(value in "\n".join(lines) for value in ("Asha", "ABCDE1234F"))


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("pending", "pending"),
        ("IN_REVIEW", "IN_REVIEW"),
        ("Asha Verma", "<str, 10 chars>"),
        ("ABCDE1234F", "<pan>"),
        ("asha@example.com", "<str, 16 chars>"),
        (9876543210, "<phone>"),
        (2, "2"),
        (None, "None"),
        ({"a": 1}, "<object, 1 keys>"),
    ],
)
def test_shown_value(value: Any, shown: str) -> None:
    assert shown_value(value) == shown
