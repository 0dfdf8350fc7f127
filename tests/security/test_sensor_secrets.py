"""A deferred SignzySensor leaks no token or API key: not in logs, trigger kwargs, rendered fields or XCom."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dagrun import run_dag, task_states

from airflow_provider_signzy.emulator import SignzyEmulator
from airflow_provider_signzy.emulator.pytest_plugin import connection_json

pytestmark = pytest.mark.dagrun
KEY = "demo-api-key-0123456789"
IDENTITIES = "/api/v2/patrons/{patron_id}/identities"


def patron_tokens(tokens: list[str], state: Any) -> list[str]:
    """The logins' tokens among those the emulator issued (its token log also holds identities' own tokens)."""
    own = {identity.get("accessToken") for identity in state.identities.values()}
    return [t for t in tokens if t not in own]


@pytest.fixture(params=["header", "query"])
def recording_emulator(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, airflow_db: None
) -> Iterator[SignzyEmulator]:
    """An emulator that writes every token it issues to a file; the token travels as the param says."""
    with SignzyEmulator(token_log=str(tmp_path / "issued-tokens"), auto_status=("verified", 0)) as emu:
        conn = connection_json(emu.url, backoff_initial=0.01, token_in=request.param)
        monkeypatch.setenv("AIRFLOW_CONN_SIGNZY_DEFAULT", conn)
        yield emu


def stored_text(dag_id: str) -> str:
    """Trigger kwargs, next_kwargs, rendered fields and XCom as the metadata DB holds them."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields as Rtif
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.trigger import Trigger
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rendered = session.scalars(select(Rtif.rendered_fields).where(Rtif.dag_id == dag_id)).all()
        xcoms = session.scalars(select(XComModel.value).where(XComModel.dag_id == dag_id)).all()
        next_kwargs = session.scalars(select(TaskInstance.next_kwargs).where(TaskInstance.dag_id == dag_id)).all()
        triggers = [t.kwargs for t in session.scalars(select(Trigger)).all()]
    return json.dumps([rendered, xcoms, next_kwargs, triggers], default=str)


def test_deferred_sensor_leaves_no_secret_anywhere(
    recording_emulator: SignzyEmulator, leak_check, caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest
) -> None:
    from airflow.sdk import DAG

    from airflow_provider_signzy.operators.signzy import SignzyLoginOperator, SignzyLogoutOperator, SignzyOperator
    from airflow_provider_signzy.sensors.signzy import SignzySensor

    if request.node.callspec.params["recording_emulator"] == "query":
        # urllib3 logs each URL, query string included, at DEBUG: with token_in=query the hook's calls
        # (login task, create) show the token there. Airflow logs at INFO by default; check at INFO.
        caplog.set_level("INFO")
    # A 401 on the first poll: the trigger logs in again and revokes the replaced token, so those
    # paths' logs are checked too.
    recording_emulator.faults.add(
        {
            "path": "/api/v2/patrons/*/identities/*",
            "method": "GET",
            "faults": [{"status": 401, "code": "INVALID_TOKEN"}],
        }
    )
    dag_id = "sensor_secrets"
    with DAG(dag_id, schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)) as dag:
        login = SignzyLoginOperator(token_ttl=600)
        create = SignzyOperator(task_id="create", method="POST", endpoint=IDENTITIES, json={"type": "individualPan"})
        wait = SignzySensor(
            task_id="wait",
            endpoint=IDENTITIES + "/{{ ti.xcom_pull(task_ids='create')['id'] }}",
            success_when={"status": "verified"},
            deferrable=True,
            poke_interval=0.1,
        )
        logout = SignzyLogoutOperator()
        login >> create >> wait >> logout.as_teardown(setups=login)
    run = run_dag(dag)
    assert str(run.state) == "success", task_states(run)
    stored = stored_text(dag_id)
    assert "signzy_default" in stored  # the trigger's kwargs were stored: the check below means something
    log_files = "".join(
        p.read_text(errors="replace") for p in Path(os.environ["AIRFLOW_HOME"], "logs").rglob("*") if p.is_file()
    )
    tokens = Path(str(recording_emulator.state.token_log)).read_text().split()  # identities' tokens too
    assert len(patron_tokens(tokens, recording_emulator.state)) == 3  # the run's, the shared one, the one after the 401
    leak_check.assert_absent(*tokens, KEY)
    for secret in (*tokens, KEY):
        assert secret not in stored
        assert secret not in log_files
    assert recording_emulator.state.snapshot()["live_tokens"] == 0


def test_event_trigger_leaves_no_secret_or_personal_data_in_events_kwargs_or_logs(
    recording_emulator: SignzyEmulator, leak_check, caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest
) -> None:
    """SignzyEventTrigger's kwargs, its events (an asset event's ``extra``) and its logs: no token, no key,
    and none of the identities' personal data; a 401 on the first poll exercises the re-login path."""
    import asyncio

    from airflow_provider_signzy.triggers.events import SignzyEventTrigger

    if request.node.callspec.params["recording_emulator"] == "query":
        caplog.set_level("INFO")  # see test_deferred_sensor_leaves_no_secret_anywhere
    personal = {"name": "Asha Verma", "pan": "ABCDE1234F", "phone": "9876543210", "email": "asha@example.com"}
    state = recording_emulator.state
    state.auto_status = None
    ids = [state.create_identity("patron-demo-0001", {"type": "individualPan", **personal})["id"] for _ in range(3)]
    recording_emulator.faults.add(
        {"path": "/api/v2/patrons/*/identities", "method": "GET", "faults": [{"status": 401, "code": "INVALID_TOKEN"}]}
    )
    trigger = SignzyEventTrigger(emit_when={"status": "verified"}, poll_interval=0.05, emit_existing=True)
    for identity_id in ids:
        state.set_identity_status(identity_id, "verified")

    async def events() -> list[object]:
        found = []
        watch = trigger.run()
        try:
            async for event in watch:
                found.append(event)
                if len(found) == len(ids):
                    return found
        finally:
            await watch.aclose()  # as the triggerer ends a watcher: its shared token is revoked
        raise AssertionError("the watch ended")

    emitted = asyncio.run(asyncio.wait_for(events(), 30))
    stored = json.dumps([trigger.serialize(), [e.payload for e in emitted], [repr(e) for e in emitted]])
    assert all(identity_id in stored for identity_id in ids)  # the check below looks at the right text
    tokens = Path(str(state.token_log)).read_text().split()  # identities' tokens too
    assert len(patron_tokens(tokens, state)) == 2  # the shared login, and the one after the 401
    leak_check.assert_absent(*tokens, KEY, *personal.values())
    for secret in (*tokens, KEY, *personal.values()):
        assert secret not in stored
    assert state.snapshot()["live_tokens"] == 0
