"""Every DAG in dags_examples/ parses, is scheduled, and runs as its docstring says against the emulator."""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow_version import requires_airflow
from dagrun import clear_and_rerun, console_text, dag_bag, run_dag, task_states

from airflow_provider_signzy.emulator import SignzyEmulator

pytestmark = pytest.mark.dagrun
EXAMPLES = Path(__file__).resolve().parents[2] / "dags_examples"


@pytest.fixture(scope="module")
def example_bag():
    return dag_bag(str(EXAMPLES))


def test_examples_parse_without_import_errors_and_are_scheduled(example_bag) -> None:
    assert example_bag.import_errors == {}
    assert set(example_bag.dags) == {
        "signzy_token_lifecycle",
        "signzy_taskflow",
        "signzy_failure_revocation",
        "signzy_wait_for_verification",
        "signzy_batch_verification",
        "signzy_on_identity_verified",
        "signzy_pan_verification",
    }
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


@requires_airflow("3.3", why="replaying on a clear needs the call ledger in the task state store, new in 3.3")
def test_taskflow_example_cleared_after_a_lost_answer_pays_for_nothing_twice(
    example_bag, dag_env: SignzyEmulator, capfd
) -> None:
    dag_env.faults.add(
        {"path": "/api/v2/patrons/*/identities", "method": "POST", "faults": [None, None, {"drop": "after"}]}
    )
    dag = example_bag.dags["signzy_taskflow"]
    run = run_dag(dag)
    verify = next(ti for ti in run.get_task_instances() if ti.task_id == "verify_customers")
    assert (str(verify.state), verify.try_number) == ("failed", 1)  # the lost answer used no retry
    assert clear_and_rerun(dag, run, "verify_customers") == "failed"  # a user's Clear after the failure
    output = capfd.readouterr().out
    assert "already succeeded in try 1" in output  # the first two were replayed, not paid again
    assert "was sent by try 1" in output  # the third is not sent blind
    state = dag_env.state.snapshot()
    assert state["requests"]["POST /api/v2/patrons/{userId}/identities"] == 3
    assert state["identities_created"] == 3
    assert state["live_tokens"] == 0


def test_batch_example_verifies_every_customer_once_on_one_login(example_bag, dag_env: SignzyEmulator) -> None:
    run = run_dag(example_bag.dags["signzy_batch_verification"])
    assert str(run.state) == "success", task_states(run)
    report = next(ti for ti in run.get_task_instances() if ti.task_id == "report")
    # report opened each sealed answer and found the customer's e-mail in it
    assert report.xcom_pull(task_ids="report") == {"succeeded": 25, "answers_checked": 25}
    state = dag_env.state.snapshot()
    assert state["identities_created"] == 25
    assert (state["logins"], state["logouts"], state["live_tokens"]) == (1, 1, 0)


def test_pan_example_verifies_by_product_on_one_login(example_bag, dag_env: SignzyEmulator, capfd) -> None:
    run = run_dag(example_bag.dags["signzy_pan_verification"])
    assert str(run.state) == "success", task_states(run)
    report = next(ti for ti in run.get_task_instances() if ti.task_id == "report")
    assert report.xcom_pull(task_ids="report") == {"verified": 3, "not_verified": 1, "invalid": 1, "single_verified": 1}
    state = dag_env.state.snapshot()
    assert (state["identities_created"], state["snoops"]) == (5, 5)  # the invalid PAN was never sent
    assert (state["logins"], state["logouts"], state["live_tokens"]) == (1, 1, 0)
    output = console_text(capfd)
    for pan in ("ABCDE1234F", "FGHIJ5678K", "BAD-PAN", "UVWXY9753Z"):
        assert pan not in output


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
    assert "SUPERVISOR_COMMS" not in output  # one calm line, not Airflow's internal ImportError
