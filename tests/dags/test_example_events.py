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


def test_the_first_task_reads_every_triggering_event(example: Any) -> None:
    read = example.task_dict["verified_identities"].python_callable
    events = {
        "asset": [
            SimpleNamespace(extra={"from_trigger": True, "payload": {"id": "a1", "state": {"status": "verified"}}}),
            SimpleNamespace(extra={"from_trigger": True, "payload": {"id": "b2", "state": {"status": "verified"}}}),
            SimpleNamespace(extra={}),  # an event posted by hand, without a payload
        ]
    }
    assert read(triggering_asset_events=events) == ["a1", "b2"]
    assert read(triggering_asset_events=None) == []
