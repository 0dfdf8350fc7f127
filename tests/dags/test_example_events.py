"""The event-driven example parses as its docstring says; its watcher emits one event per verified identity.

The whole flow (triggerer -> asset event -> scheduler -> DAG run, and a triggerer restart) needs a
deployment: `make demo` and `make e2e` (scripts/e2e_events.py) run it. Here: the DAG, its asset and
watcher as Airflow parses them, the watcher's trigger against the emulator, and the first task's reading
of the triggering events.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from dagrun import dag_bag

from airflow_provider_signzy.emulator import SignzyEmulator
from airflow_provider_signzy.triggers.events import SignzyEventTrigger

pytestmark = pytest.mark.dagrun
EXAMPLE = Path(__file__).resolve().parents[2] / "dags_examples" / "signzy_start_on_verification.py"
DAG_ID = "signzy_on_identity_verified"


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("SIGNZY_EXAMPLE_POLL_INTERVAL", "0.05")  # read when the file is parsed
    bag = dag_bag(str(EXAMPLE))
    assert bag.import_errors == {}
    return bag.dags[DAG_ID]


def watched_asset(dag: Any) -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("signzy_example_events", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.VERIFIED_IDENTITIES


def test_the_dag_is_scheduled_on_an_asset_watched_by_signzy(example: Any) -> None:
    asset = watched_asset(example)
    assert asset.name in str(example.timetable.asset_condition)
    [watcher] = asset.watchers
    assert isinstance(watcher.trigger, SignzyEventTrigger)
    assert watcher.trigger.emit_when == {"status": ["verified"]}
    assert example.catchup is False


def test_the_watcher_emits_each_verified_identity(example: Any, dag_env: SignzyEmulator) -> None:
    trigger = watched_asset(example).watchers[0].trigger
    trigger.emit_existing = True

    async def first_events(n: int) -> list[dict[str, Any]]:
        events = []
        async for event in trigger.run():
            events.append(event.payload)
            if len(events) == n:
                return events
        raise AssertionError("the watch ended")

    state = dag_env.state
    ids = [state.create_identity("patron-demo-0001", {"type": "x"})["id"] for _ in range(3)]
    for identity_id in ids[:2]:
        state.set_identity_status(identity_id, "verified")
    events = asyncio.run(asyncio.wait_for(first_events(2), 30))
    assert sorted(e["id"] for e in events) == sorted(ids[:2])
    assert all(e["state"] == {"status": "verified"} for e in events)


def event(event_id: int, identity: str | None, *runs: str) -> SimpleNamespace:
    """An asset event as the task sees it (triggering: extra; inlet: also id and the runs that consumed it)."""
    payload = {"id": identity, "state": {"status": "verified"}} if identity else None
    extra = {"from_trigger": True, "payload": payload} if payload else {}
    return SimpleNamespace(id=event_id, extra=extra, created_dagruns=[SimpleNamespace(run_id=r) for r in runs])


def test_the_first_task_reads_every_triggering_event(example: Any) -> None:
    read = example.task_dict["verified_identities"].python_callable
    stored = [event(1, "a1", "run-1"), event(2, "b2", "run-1"), event(3, None, "run-1")]
    triggering = {"asset": [*stored, SimpleNamespace(extra={})]}  # the last one posted by hand, no payload
    assert read(triggering_asset_events=triggering, inlet_events=InletEvents(stored), run_id="run-1") == [
        "a1",
        "b2",
    ]
    assert read(triggering_asset_events=None, inlet_events=InletEvents([]), run_id="run-1") == []


def test_an_identity_emitted_twice_is_handled_by_the_run_of_its_first_event(example: Any) -> None:
    """A triggerer stopped right after emitting may emit an identity again: only one run handles it."""
    read = example.task_dict["verified_identities"].python_callable
    first, repeat, other = event(7, "a1", "run-1"), event(9, "a1", "run-2"), event(10, "c3", "run-2")
    stored = InletEvents([first, repeat, other])
    assert read(triggering_asset_events={"asset": [first]}, inlet_events=stored, run_id="run-1") == ["a1"]
    assert read(triggering_asset_events={"asset": [repeat, other]}, inlet_events=stored, run_id="run-2") == ["c3"]
    # The repeat consumed first, its first event still waiting for a run (apache/airflow#56050): the later
    # run of the first event handles it, the repeat's run does not.
    waiting = event(7, "a1")
    stored = InletEvents([waiting, repeat])
    assert read(triggering_asset_events={"asset": [repeat]}, inlet_events=stored, run_id="run-2") == []
    consumed = InletEvents([event(7, "a1", "run-3"), repeat])
    assert read(triggering_asset_events={"asset": [waiting]}, inlet_events=consumed, run_id="run-3") == ["a1"]


class InletEvents:
    """The task's ``inlet_events``: the watched asset's stored events (Airflow 3.0's Asset is unhashable)."""

    def __init__(self, events: list[SimpleNamespace]) -> None:
        self.events = events

    def __getitem__(self, asset: Any) -> list[SimpleNamespace]:
        assert asset == watched_asset(None), asset
        return self.events
