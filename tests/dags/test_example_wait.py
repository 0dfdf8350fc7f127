"""The deferrable example DAG runs as its docstring says: the wait ends when the verification does."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagrun import dag_bag, run_dag, task_states

from airflow_provider_signzy.emulator import SignzyEmulator

pytestmark = pytest.mark.dagrun
EXAMPLE = Path(__file__).resolve().parents[2] / "dags_examples" / "signzy_wait_for_verification.py"


def example_dag(monkeypatch: pytest.MonkeyPatch) -> object:
    monkeypatch.setenv("SIGNZY_EXAMPLE_POKE_INTERVAL", "0.2")  # read when the file is parsed
    bag = dag_bag(str(EXAMPLE))
    assert bag.import_errors == {}
    return bag.dags["signzy_wait_for_verification"]


def test_waits_until_verified_then_reads_the_result(dag_env: SignzyEmulator, monkeypatch) -> None:
    dag_env.state.auto_status = ("verified", 1.0)
    run = run_dag(example_dag(monkeypatch))
    assert str(run.state) == "success", task_states(run)
    result = next(ti for ti in run.get_task_instances() if ti.task_id == "read_result")
    assert result.xcom_pull(task_ids="read_result")["status"] == "verified"  # readable beside the seal
    outcome = next(ti for ti in run.get_task_instances() if ti.task_id == "record_outcome")
    [identity] = dag_env.state.identities.values()
    recorded = outcome.xcom_pull(task_ids="record_outcome")
    assert (recorded["id"], recorded["status"]) == (identity["id"], "verified")  # opened downstream
    state = dag_env.state.snapshot()
    assert state["identities_created"] == 1
    assert state["logins"] == 2  # the run's token, and the triggerer's shared one
    assert state["live_tokens"] == 0  # both revoked: the trigger's when it ended, the run's by the teardown


def test_a_rejected_identity_fails_the_wait_and_still_revokes(dag_env: SignzyEmulator, monkeypatch) -> None:
    dag_env.state.auto_status = ("rejected", 0.5)
    run = run_dag(example_dag(monkeypatch))
    states = task_states(run)
    assert states["wait_until_verified"] == "failed"
    assert states["read_result"] == "upstream_failed"
    assert states["record_outcome"] == "upstream_failed"
    assert states["signzy_logout"] == "success"
    assert dag_env.state.snapshot()["live_tokens"] == 0
