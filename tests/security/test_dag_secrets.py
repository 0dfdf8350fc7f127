"""The token and the API key never appear in task logs, console output, rendered fields or stored XCom."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from airflow_version import AIRFLOW_VERSION, airflow_at_least, requires_airflow
from dagrun import MASK_ECHO_FIXED_IN, dag_bag, run_dag, task_states, unwrapped

from airflow_provider_signzy.emulator import SignzyEmulator
from airflow_provider_signzy.emulator.pytest_plugin import connection_json

pytestmark = pytest.mark.dagrun
KEY = "demo-api-key-0123456789"
EXAMPLES = Path(__file__).resolve().parents[2] / "dags_examples"


@pytest.fixture
def recording_emulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, airflow_db: None) -> Iterator[SignzyEmulator]:
    """An emulator that writes every token it issues to a file, so the test knows what to look for."""
    with SignzyEmulator(token_log=str(tmp_path / "issued-tokens")) as emu:
        monkeypatch.setenv("AIRFLOW_CONN_SIGNZY_DEFAULT", connection_json(emu.url, backoff_initial=0.01))
        yield emu


def issued_tokens(emu: SignzyEmulator) -> list[str]:
    assert emu.state.token_log
    tokens = Path(emu.state.token_log).read_text().split()
    assert tokens, "no token was issued: the checks below would prove nothing"
    return tokens


def stored_text(dag_id: str) -> tuple[str, str]:
    """(rendered template fields, XCom values) as the metadata DB stores them, for one DAG."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields as Rtif
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rendered = session.scalars(select(Rtif.rendered_fields).where(Rtif.dag_id == dag_id)).all()
        xcoms = session.execute(select(XComModel.key, XComModel.value).where(XComModel.dag_id == dag_id)).all()
    return json.dumps(rendered, default=str), json.dumps([list(x) for x in xcoms], default=str)


def run_example_in_process(dag_file: str, dag_id: str) -> object:
    bag = dag_bag(str(EXAMPLES / dag_file))
    assert not bag.import_errors
    return run_dag(bag.dags[dag_id])


def test_dag_run_leaves_no_secret_anywhere(recording_emulator: SignzyEmulator, capfd) -> None:
    from airflow.sdk import DAG

    from airflow_provider_signzy.operators.signzy import SignzyLoginOperator, SignzyLogoutOperator, SignzyOperator

    with DAG("secrets_everywhere", schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)) as dag:
        login = SignzyLoginOperator(token_ttl=600)
        call = SignzyOperator(
            task_id="create",
            method="POST",
            endpoint="/api/v2/patrons/{patron_id}/identities",
            json={"type": "individualPan", "note": "{{ run_id }}"},
            headers={"X-Request-Id": "{{ ti.task_id }}"},
        )
        expire = SignzyOperator(task_id="second", endpoint="/api/v2/patrons/{patron_id}")
        logout = SignzyLogoutOperator()
        login >> call >> expire >> logout.as_teardown(setups=login)
    run = run_dag(dag)
    assert str(run.state) == "success", task_states(run)
    console = "".join(capfd.readouterr())
    log_files = "".join(
        p.read_text(errors="replace") for p in Path(os.environ["AIRFLOW_HOME"], "logs").rglob("*") if p.is_file()
    )
    rendered, xcoms = stored_text("secrets_everywhere")
    assert "signzy_token" in xcoms
    assert '"encrypted": true' in xcoms
    assert '"type": "<str, 13 chars>"' in rendered  # rendered fields were stored (the body as its shape)
    for secret in (*issued_tokens(recording_emulator), KEY):
        assert secret not in unwrapped(console)
        assert secret not in log_files
        assert secret not in rendered
        assert secret not in xcoms
    assert recording_emulator.state.snapshot()["live_tokens"] == 0


def test_airflow_dags_test_console_output_has_no_secret(recording_emulator: SignzyEmulator) -> None:
    env = {**os.environ, "AIRFLOW__CORE__DAGS_FOLDER": str(EXAMPLES)}
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "test", "signzy_token_lifecycle"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "Logged in to Signzy as patron patron-demo-0001" in output
    for secret in (*issued_tokens(recording_emulator), KEY):
        assert secret not in unwrapped(output)
    # What the README tells users: 3.0 echoes MaskSecret bodies under `airflow dags test`, 3.1+ do not.
    echoed = "msg=MaskSecret(value=" in output
    assert echoed == (not airflow_at_least(MASK_ECHO_FIXED_IN)), f"Airflow {AIRFLOW_VERSION}: echo {echoed}"
    state = recording_emulator.state.snapshot()
    assert (state["logins"], state["live_tokens"]) == (1, 0)


@requires_airflow("3.3", why="the call ledger lives in the task state store, new in Airflow 3.3")
def test_retried_paid_calls_leave_no_secret_in_logs_or_the_ledger(
    recording_emulator: SignzyEmulator, capfd, tmp_path: Path
) -> None:
    from airflow.models.task_state_store import TaskStateStoreModel
    from airflow.sdk import DAG
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from airflow_provider_signzy.operators.signzy import SignzyLoginOperator, SignzyLogoutOperator, SignzyOperator

    recording_emulator.faults.add(
        {"path": "/api/v2/patrons/*/identities", "method": "POST", "faults": [None, {"drop": "after"}]}
    )
    first_try = tmp_path / "first-try-done"

    def fail_first_try(response: object) -> str:
        if not first_try.exists():
            first_try.touch()
            raise RuntimeError("a later step failed (first try only)")
        return "kept"

    identities = "/api/v2/patrons/{patron_id}/identities"
    default_args = {"retries": 2, "retry_delay": dt.timedelta(seconds=1)}
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with DAG("secrets_ledger", schedule=None, start_date=start, default_args=default_args) as dag:
        login = SignzyLoginOperator(token_ttl=600)
        lost = SignzyOperator(task_id="lost", method="POST", endpoint=identities, json={"type": "individualPan"})
        replayed = SignzyOperator(
            task_id="replayed",
            method="POST",
            endpoint=identities,
            json={"type": "individualPan", "email": "r@x.in"},
            response_filter=fail_first_try,
        )
        login >> replayed >> lost >> SignzyLogoutOperator().as_teardown(setups=login)
    run = run_dag(dag)
    states = task_states(run)
    assert (states["lost"], states["replayed"]) == ("failed", "success")
    with create_session() as session:
        ledger = json.dumps(session.scalars(select(TaskStateStoreModel.value)).all())
    assert "unknown" in ledger
    assert "succeeded" in ledger  # both outcomes were written: the check below covers them
    console = "".join(capfd.readouterr())
    assert "it may have been charged" in console
    log_files = "".join(
        p.read_text(errors="replace") for p in Path(os.environ["AIRFLOW_HOME"], "logs").rglob("*") if p.is_file()
    )
    for secret in (*issued_tokens(recording_emulator), KEY):
        assert secret not in unwrapped(console)
        assert secret not in log_files
        assert secret not in ledger


def test_batch_with_retries_and_rate_limits_leaves_no_secret(recording_emulator: SignzyEmulator, capfd) -> None:
    from airflow.sdk import DAG

    from airflow_provider_signzy.operators.batch import SignzyBatchOperator
    from airflow_provider_signzy.operators.signzy import SignzyLoginOperator, SignzyLogoutOperator

    recording_emulator.rate_limit(30, burst=3)
    recording_emulator.faults.add(
        {"path": "/api/v2/patrons/*/identities", "method": "POST", "faults": [None, {"status": 503}, {"status": 422}]}
    )
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with DAG("secrets_batch", schedule=None, start_date=start) as dag:
        login = SignzyLoginOperator(token_ttl=600)
        items = [{"type": "individualPan", "email": f"s{i}@x.in"} for i in range(25)]
        batch = SignzyBatchOperator(task_id="batch", endpoint="/api/v2/patrons/{patron_id}/identities", items=items)
        login >> batch >> SignzyLogoutOperator().as_teardown(setups=login)
    run = run_dag(dag)
    assert str(run.state) == "success", task_states(run)
    state = recording_emulator.state.snapshot()
    assert state["rate_limited"] > 0  # the paths that log retries and rate limits ran
    console = "".join(capfd.readouterr())
    assert "Signzy batch finished: 25/25 done" in console
    log_files = "".join(
        p.read_text(errors="replace") for p in Path(os.environ["AIRFLOW_HOME"], "logs").rglob("*") if p.is_file()
    )
    _, xcoms = stored_text("secrets_batch")
    for secret in (*issued_tokens(recording_emulator), KEY):
        assert secret not in unwrapped(console)
        assert secret not in log_files
        assert secret not in xcoms
