"""Every DAG in dags_examples/ parses, is scheduled, and runs as its docstring says against the emulator."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagrun import console_text, dag_bag, run_dag, task_states

from airflow_provider_signzy.emulator import SignzyEmulator

pytestmark = pytest.mark.dagrun
EXAMPLES = Path(__file__).resolve().parents[2] / "dags_examples"


@pytest.fixture(scope="module")
def example_bag():
    return dag_bag(str(EXAMPLES))


def test_examples_parse_without_import_errors_and_are_scheduled(example_bag) -> None:
    assert example_bag.import_errors == {}
    assert set(example_bag.dags) == {"signzy_token_lifecycle", "signzy_taskflow", "signzy_failure_revocation"}
    for dag in example_bag.dags.values():
        assert dag.schedule not in (None, "None"), f"{dag.dag_id} has no schedule"
        assert dag.catchup is False


def test_lifecycle_example_succeeds_with_one_login(example_bag, dag_env: SignzyEmulator) -> None:
    run = run_dag(example_bag.dags["signzy_token_lifecycle"])
    assert str(run.state) == "success", task_states(run)
    state = dag_env.state.snapshot()
    assert state["logins"] == 1
    assert state["identities_created"] == 1
    assert state["logouts"] == 1
    assert state["live_tokens"] == 0


def test_taskflow_example_succeeds_and_revokes(example_bag, dag_env: SignzyEmulator) -> None:
    run = run_dag(example_bag.dags["signzy_taskflow"])
    assert str(run.state) == "success", task_states(run)
    state = dag_env.state.snapshot()
    assert state["identities_created"] == 3
    assert state["logins"] == state["logouts"] == 2  # one per task, each revoked by its with-block
    assert state["live_tokens"] == 0


def test_failure_example_fails_and_leaves_no_live_token(example_bag, dag_env: SignzyEmulator, capfd) -> None:
    run = run_dag(example_bag.dags["signzy_failure_revocation"])
    states = task_states(run)
    assert str(run.state) == "failed"
    assert states["fail_on_purpose"] == "failed"
    assert states["signzy_logout"] == "success"
    state = dag_env.state.snapshot()
    assert state["logins"] == 1
    assert state["logouts"] == 1
    assert state["live_tokens"] == 0
    output = console_text(capfd)
    assert "Failing on purpose after seeing 0 identities" in output
    # Under dag.test() the DAG-level callback runs in-process, where XCom cannot be read: it says so
    # plainly instead of crashing (on a deployment the DAG processor runs it with XCom access).
    assert "Executing on_failure dag callback: revoke_signzy_token_of_signzy_login" in output
    assert "Cannot read the Signzy token from XCom of task 'signzy_login' here" in output
