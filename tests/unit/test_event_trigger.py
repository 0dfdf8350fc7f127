"""SignzyEventTrigger on a real event loop against the emulator over HTTP: one event per item, once.

The triggerer process itself runs in `make e2e` (scripts/e2e_events.py: a restart mid-stream) and `make
demo`. Here the asset state store the triggerer hands a watcher on Airflow 3.3 is a dict with the same
``aget``/``aset`` methods (``MemoryStore``): the real one needs a triggerer's supervisor behind it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
from airflow_version import requires_airflow

from airflow_provider_signzy.emulator import SignzyEmulator
from airflow_provider_signzy.triggers.events import SignzyEventTrigger
from airflow_provider_signzy.triggers.shared_login import active_logins
from airflow_provider_signzy.triggers.signzy import SignzyTrigger

KEY = "demo-api-key-0123456789"
LIST_ROUTE = "GET /api/v2/patrons/{userId}/identities"


class MemoryStore:
    """Stands in for the asset state store accessor (``aget``/``aset``), across trigger instances."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.writes = 0

    async def aget(self, key: str, default: Any = None) -> Any:
        return json.loads(json.dumps(self.values.get(key, default)))

    async def aset(self, key: str, value: Any) -> None:
        self.writes += 1
        self.values[key] = json.loads(json.dumps(value))


def create_identities(emu: SignzyEmulator, n: int, **fields: str) -> list[str]:
    token = requests.post(emu.url + "/api/v2/patrons/login", json={"username": "demo", "password": KEY}, timeout=5)
    headers = {"Authorization": token.json()["id"]}
    url = f"{emu.url}/api/v2/patrons/patron-demo-0001/identities"
    ids = [requests.post(url, json={"type": "x", **fields}, headers=headers, timeout=5).json()["id"] for _ in range(n)]
    requests.post(emu.url + "/api/v2/patrons/logout", headers=headers, timeout=5)
    return ids


def verify(emu: SignzyEmulator, ids: list[str]) -> None:
    for identity_id in ids:
        emu.state.set_identity_status(identity_id, "verified")


def watcher(store: MemoryStore | None = None, **kwargs: Any) -> SignzyEventTrigger:
    kwargs.setdefault("poll_interval", 0.05)
    kwargs.setdefault("release_after", None)  # tested on its own below
    trigger = SignzyEventTrigger(emit_when={"status": "verified"}, **kwargs)
    trigger.asset_state_store = store  # what Airflow 3.3's triggerer sets on a watcher
    return trigger


class Watch:
    """Runs a watcher on the test's loop, collecting its events, until stopped (cancelled, as on a restart)."""

    def __init__(self, trigger: SignzyEventTrigger) -> None:
        self.trigger = trigger
        self.events: list[dict[str, Any]] = []
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for event in self.trigger.run():
            self.events.append(dict(event.payload))

    async def until(self, check: Callable[[], bool], what: str, seconds: float = 10) -> None:
        deadline = time.monotonic() + seconds
        while not check():
            if self.task.done():
                self.task.result()
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; events: {self.events}")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

    def ids(self) -> list[str]:
        return [e["id"] for e in self.events if "id" in e]


@pytest.fixture(autouse=True)
def quick_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SignzyEventTrigger, "COMMIT_DELAY", 0.1)


def test_serialize_round_trips_and_holds_no_secret() -> None:
    trigger = SignzyEventTrigger(emit_when={"status": ["verified", "completed"]}, query_params={"type": "x"})
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_signzy.triggers.events.SignzyEventTrigger"
    again = SignzyEventTrigger(**kwargs)
    assert again.serialize() == (classpath, kwargs)
    assert again.record_key == trigger.record_key
    assert KEY not in repr(kwargs)
    assert SignzyEventTrigger.hash(classpath, kwargs) == SignzyEventTrigger.hash(*again.serialize())
    with pytest.raises(ValueError, match="needs emit_when"):
        SignzyEventTrigger(emit_when={})
    with pytest.raises(ValueError, match="builds the 'filter' query parameter"):
        SignzyEventTrigger(emit_when={"status": "verified"}, query_params={"filter": "{}"})


def test_each_verified_identity_is_emitted_once_with_its_id_and_state_only(
    emulator: SignzyEmulator, make_conn: Callable[..., str]
) -> None:
    make_conn()
    before = create_identities(emulator, 2, name="Asha Verma", pan="ABCDE1234F")
    verify(emulator, before)  # verified before the watch starts: the baseline, not emitted
    later = create_identities(emulator, 5, name="Asha Verma", pan="ABCDE1234F")
    logins_before = emulator.state.snapshot()["logins"]

    async def scenario() -> list[dict[str, Any]]:
        watch = Watch(watcher(page_size=2))
        await watch.until(lambda: emulator.state.snapshot()["requests"].get(LIST_ROUTE, 0) >= 2, "the first poll done")
        verify(emulator, later[:3])
        await watch.until(lambda: len(watch.events) >= 3, "three events")
        verify(emulator, later[3:])
        await watch.until(lambda: len(watch.events) >= 5, "five events")
        polls = emulator.state.snapshot()["requests"][LIST_ROUTE]
        await watch.until(lambda: emulator.state.snapshot()["requests"][LIST_ROUTE] >= polls + 6, "more polls")
        await watch.stop()
        return watch.events

    events = asyncio.run(scenario())
    assert sorted(e["id"] for e in events) == sorted(later)  # each once, none of the baseline
    assert all(e == {"id": e["id"], "state": {"status": "verified"}} for e in events)
    assert "Asha" not in json.dumps(events)
    state = emulator.state.snapshot()
    assert state["logins"] - logins_before == 1  # the watcher's shared login
    assert state["live_tokens"] == 0  # revoked when the watch stopped


def test_pages_through_the_filtered_list(emulator: SignzyEmulator, make_conn: Callable[..., str]) -> None:
    make_conn()
    ids = create_identities(emulator, 7)
    verify(emulator, ids)

    async def scenario() -> list[str]:
        watch = Watch(watcher(page_size=3, emit_existing=True))
        await watch.until(lambda: len(watch.events) >= 7, "seven events")
        await watch.stop()
        return watch.ids()

    assert sorted(asyncio.run(scenario())) == sorted(ids)
    assert emulator.state.snapshot()["requests"][LIST_ROUTE] >= 3  # pages of 3, 3 and 1


def test_without_a_server_filter_one_get_of_the_whole_list(
    emulator: SignzyEmulator, make_conn: Callable[..., str]
) -> None:
    make_conn()
    ids = create_identities(emulator, 4)
    verify(emulator, ids[:2])

    async def scenario() -> list[str]:
        watch = Watch(watcher(server_filter=False, emit_existing=True))
        await watch.until(lambda: len(watch.events) >= 2, "two events")
        await watch.stop()
        return watch.ids()

    assert sorted(asyncio.run(scenario())) == sorted(ids[:2])


def test_a_restart_with_the_asset_state_store_neither_repeats_nor_loses(
    emulator: SignzyEmulator, make_conn: Callable[..., str]
) -> None:
    make_conn()
    ids = create_identities(emulator, 6)
    store = MemoryStore()

    async def scenario() -> tuple[list[str], list[str]]:
        first = Watch(watcher(store))
        await first.until(lambda: store.writes >= 1, "the baseline record")
        verify(emulator, ids[:3])
        await first.until(lambda: len(first.events) >= 3, "three events")
        await first.until(lambda: store.writes >= 2, "the record of the three")
        await first.stop()  # the triggerer restarts...
        verify(emulator, ids[3:5])  # ...and two customers finish while it is down
        second = Watch(watcher(store))
        await second.until(lambda: len(second.events) >= 2, "the two")
        verify(emulator, ids[5:])
        await second.until(lambda: len(second.events) >= 3, "the last")
        await asyncio.sleep(0.5)  # a few more polls: nothing more may come
        await second.stop()
        return first.ids(), second.ids()

    before, after = asyncio.run(scenario())
    assert sorted(before) == sorted(ids[:3])
    assert sorted(after) == sorted(ids[3:])  # the ones verified while down, then the last: none again
    assert sorted(store.values[watcher().record_key]["ids"]) == sorted(ids)


def test_stopped_before_the_record_is_written_emits_again_at_least_once(
    emulator: SignzyEmulator, make_conn: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    make_conn()
    ids = create_identities(emulator, 2)
    store = MemoryStore()
    monkeypatch.setattr(SignzyEventTrigger, "COMMIT_DELAY", 5.0)

    async def scenario() -> tuple[list[str], list[str]]:
        first = Watch(watcher(store))
        await first.until(lambda: store.writes >= 1, "the baseline record")
        verify(emulator, ids)
        await first.until(lambda: len(first.events) >= 2, "two events")
        await first.stop()  # within COMMIT_DELAY of the events: they are not recorded
        second = Watch(watcher(store))
        await second.until(lambda: len(second.events) >= 2, "the two again")
        await second.stop()
        return first.ids(), second.ids()

    before, after = asyncio.run(scenario())
    assert sorted(before) == sorted(after) == sorted(ids)  # never lost; twice only in that window


def test_without_a_store_each_start_takes_a_baseline(emulator: SignzyEmulator, make_conn: Callable[..., str]) -> None:
    make_conn()
    ids = create_identities(emulator, 3)

    async def scenario() -> tuple[list[str], list[str]]:
        first = Watch(watcher())
        await first.until(lambda: emulator.state.snapshot()["requests"].get(LIST_ROUTE, 0) >= 2, "the first poll done")
        verify(emulator, ids[:1])
        await first.until(lambda: len(first.events) >= 1, "one event")
        await first.stop()
        verify(emulator, ids[1:2])  # while down: Airflow 3.0-3.2 keep no record, so this one is not emitted
        second = Watch(watcher())
        polls = emulator.state.snapshot()["requests"][LIST_ROUTE]
        await second.until(lambda: emulator.state.snapshot()["requests"][LIST_ROUTE] >= polls + 2, "its baseline done")
        verify(emulator, ids[2:])
        await second.until(lambda: len(second.events) >= 1, "the last")
        await second.stop()
        return first.ids(), second.ids()

    before, after = asyncio.run(scenario())
    assert (before, after) == ([ids[0]], [ids[2]])


def test_the_watcher_shares_the_login_of_the_sensors_triggers(
    emulator: SignzyEmulator, make_conn: Callable[..., str]
) -> None:
    make_conn()
    ids = create_identities(emulator, 3)
    before = emulator.state.snapshot()["logins"]

    async def scenario() -> None:
        watch = Watch(watcher())
        sensors = [
            asyncio.create_task(
                anext(
                    SignzyTrigger(
                        endpoint=f"/api/v2/patrons/{{patron_id}}/identities/{i}",
                        deadline=time.time() + 30,
                        success_when={"status": ["verified"]},
                        poke_interval=0.05,
                    ).run()
                )
            )
            for i in ids
        ]
        await watch.until(lambda: active_logins() == {"signzy_default": 4}, "four users of one login")
        await watch.until(lambda: emulator.state.snapshot()["requests"].get(LIST_ROUTE, 0) >= 2, "the baseline done")
        verify(emulator, ids)
        await asyncio.gather(*sensors)
        await watch.until(lambda: len(watch.events) == 3, "three events")
        await watch.stop()

    asyncio.run(scenario())
    state = emulator.state.snapshot()
    assert state["logins"] - before == 1
    assert state["live_tokens"] == 0


def test_a_failing_poll_is_logged_and_the_watch_goes_on(
    emulator: SignzyEmulator, make_conn: Callable[..., str]
) -> None:
    make_conn(max_attempts=1)
    ids = create_identities(emulator, 1)
    emulator.faults.add({"path": "/api/v2/patrons/*/identities", "method": "GET", "faults": [{"status": 503}] * 3})

    async def scenario() -> list[str]:
        watch = Watch(watcher(emit_existing=True))
        verify(emulator, ids)
        await watch.until(lambda: len(watch.events) >= 1, "the event after the outage")
        await watch.stop()
        return watch.ids()

    assert asyncio.run(scenario()) == ids


@requires_airflow("3.3", why="the asset state store (AIP-103) is new in 3.3")
def test_the_record_in_airflows_asset_state_store_survives_a_restart(
    airflow_db: None, emulator: SignzyEmulator, make_conn: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store as the 3.3 triggerer builds it (``AssetStateStoreAccessors`` of the watched asset), its
    requests answered as the triggerer's supervisor answers them: Airflow's request handlers with the
    in-process execution API client, against the test's metadata DB. Only the socket between the
    trigger runner and its supervisor is left out."""
    import os

    from airflow.jobs.triggerer_job_runner import TriggerRunnerSupervisor
    from airflow.sdk import DAG, Asset, AssetWatcher
    from airflow.sdk.execution_time import request_handlers, task_runner
    from airflow.sdk.execution_time.comms import GetAssetStateStoreByName, OKResponse, SetAssetStateStoreByName
    from airflow.sdk.execution_time.context import AssetStateStoreAccessors
    from dagrun import dag_bag, sync_to_db

    asset = Asset(
        name="signzy_test_verified", uri="signzy://test/verified", watchers=[AssetWatcher(name="w", trigger=watcher())]
    )
    with DAG("signzy_test_on_verified", schedule=[asset], start_date=None) as dag:
        pass
    dag.relative_fileloc = os.path.basename(dag.fileloc)
    bag = dag_bag(os.devnull)
    bag.bag_dag(dag)
    sync_to_db(bag)  # the asset row the state store hangs on

    class SupervisorRoute:
        """The trigger runner's comms, answered the way TriggerRunnerSupervisor._handle_request does."""

        client = TriggerRunnerSupervisor.make_client(None)  # type: ignore[arg-type]
        handlers = {
            GetAssetStateStoreByName: request_handlers.handle_get_asset_state_store_by_name,
            SetAssetStateStoreByName: request_handlers.handle_set_asset_state_store_by_name,
        }

        def send(self, msg: Any) -> Any:
            answer, _ = self.handlers[type(msg)](self.client, msg)
            return OKResponse(ok=True) if answer is None else answer

        async def asend(self, msg: Any) -> Any:
            return self.send(msg)

    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", SupervisorRoute(), raising=False)

    def restartable() -> SignzyEventTrigger:
        trigger = watcher()
        trigger.asset_state_store = AssetStateStoreAccessors(inlets=[Asset(name=asset.name, uri=asset.uri)])
        return trigger

    make_conn()
    ids = create_identities(emulator, 4)

    async def scenario() -> tuple[list[str], list[str]]:
        first = Watch(restartable())
        await first.until(lambda: emulator.state.snapshot()["requests"].get(LIST_ROUTE, 0) >= 2, "the baseline done")
        verify(emulator, ids[:2])
        await first.until(lambda: len(first.events) >= 2, "two events")
        await asyncio.sleep(SignzyEventTrigger.COMMIT_DELAY + 0.3)  # recorded
        await first.stop()
        verify(emulator, ids[2:])
        second = Watch(restartable())
        await second.until(lambda: len(second.events) >= 2, "the two verified while down")
        await asyncio.sleep(0.3)
        await second.stop()
        return first.ids(), second.ids()

    before, after = asyncio.run(scenario())
    assert sorted(before) == sorted(ids[:2])
    assert sorted(after) == sorted(ids[2:])
    record = restartable().asset_state_store[asset].get(watcher().record_key)
    assert sorted(record["ids"]) == sorted(ids)


def test_a_burst_is_followed_by_one_release_event_and_spaced_events_are_not(
    emulator: SignzyEmulator, make_conn: Callable[..., str]
) -> None:
    """Airflow's scheduler leaves all but the first of a burst to the next event's run (apache/airflow#56050):
    after a burst, once quiet for ``release_after`` s, the watcher emits that next event itself."""
    make_conn()
    ids = create_identities(emulator, 5)

    async def scenario() -> list[dict[str, Any]]:
        watch = Watch(watcher(release_after=0.3))
        await watch.until(lambda: emulator.state.snapshot()["requests"].get(LIST_ROUTE, 0) >= 2, "the baseline done")
        verify(emulator, ids[:3])  # one poll finds three: a burst
        await watch.until(lambda: len(watch.events) >= 4, "three events and a release")
        await asyncio.sleep(SignzyEventTrigger.CLOSE_EVENTS + 0.2)
        for identity_id in ids[3:]:  # two, far apart (watch.CLOSE_EVENTS): no release
            verify(emulator, [identity_id])
            count = len(watch.events)
            await watch.until(lambda count=count: len(watch.events) > count, "the next event")
            await asyncio.sleep(SignzyEventTrigger.CLOSE_EVENTS + 0.2)
        await asyncio.sleep(0.5)
        await watch.stop()
        return watch.events

    events = asyncio.run(scenario())
    assert [sorted(e) for e in events] == [["id", "state"]] * 3 + [["release"]] + [["id", "state"]] * 2
    assert events[3] == {"release": True}
