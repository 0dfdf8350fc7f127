"""SignzyBatchOperator in real DAG runs against the emulator: order, placeholders, errors, pacing, resume."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from typing import Any

import pytest
from airflow_version import requires_airflow, requires_airflow_below
from dagrun import console_text, run_dag, task_states

from airflow_provider_signzy.emulator import SignzyEmulator
from airflow_provider_signzy.operators.batch import SignzyBatchOperator
from airflow_provider_signzy.operators.signzy import SignzyLoginOperator, SignzyLogoutOperator
from airflow_provider_signzy.privacy import unseal

pytestmark = pytest.mark.dagrun
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
IDENTITIES = "/api/v2/patrons/{patron_id}/identities"
POSTS = "POST /api/v2/patrons/{userId}/identities"
ANY_IDENTITIES = "/api/v2/patrons/*/identities"
STORE = requires_airflow("3.3", why="the call ledger lives in the task state store, new in Airflow 3.3")


def bodies(n: int, prefix: str = "c") -> list[dict[str, Any]]:
    return [{"type": "individualPan", "email": f"{prefix}{i}@kyc.in", "images": []} for i in range(n)]


def batch_dag(dag_id: str, items: Any, *, retries: int = 0, **batch_kwargs: Any) -> Any:
    from airflow.sdk import DAG

    default_args = {"retries": retries, "retry_delay": dt.timedelta(seconds=1)}
    with DAG(dag_id, schedule=None, start_date=START, catchup=False, default_args=default_args) as dag:
        login = SignzyLoginOperator()
        batch = SignzyBatchOperator(
            task_id="verify", endpoint=batch_kwargs.pop("endpoint", IDENTITIES), items=items, **batch_kwargs
        )
        login >> batch >> SignzyLogoutOperator().as_teardown(setups=login)
    return dag


def stored_results(run: Any) -> list[dict[str, Any]]:
    """The batch's results as XCom holds them (each response sealed)."""
    ti = next(t for t in run.get_task_instances() if t.task_id == "verify")
    return ti.xcom_pull(task_ids="verify")


def results_of(run: Any) -> list[dict[str, Any]]:
    """The batch's results with each response opened, as a downstream task reads them."""
    return unseal(stored_results(run))


def emails_created(emulator: SignzyEmulator) -> Counter[str]:
    return Counter(i["email"] for i in emulator.state.identities.values())


def test_results_come_back_in_input_order_with_one_token(dag_env: SignzyEmulator) -> None:
    items = bodies(40)
    run = run_dag(batch_dag("batch_order", items, max_concurrency=8))
    assert str(run.state) == "success", task_states(run)
    stored = stored_results(run)
    assert all(set(r["response"]) == {"id", "status", "signzy_sealed"} for r in stored)
    assert not any(i["email"] in json.dumps(stored) for i in items)  # customers' e-mails are sealed
    results = results_of(run)
    assert [r["index"] for r in results] == list(range(40))
    assert [r["response"]["id"] for r in results] == [r["response"]["id"] for r in stored]
    assert [r["response"]["email"] for r in results] == [i["email"] for i in items]
    assert {r["outcome"] for r in results} == {"succeeded"}
    state = dag_env.state.snapshot()
    assert state["requests"][POSTS] == 40
    assert (state["logins"], state["logouts"], state["live_tokens"]) == (1, 1, 0)  # the run's one token


def test_item_fields_fill_endpoint_placeholders(dag_env: SignzyEmulator) -> None:
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.sdk import DAG

    from airflow_provider_signzy.hooks.signzy import SignzyHook

    def create_three() -> list[dict[str, str]]:
        with SignzyHook() as hook:
            patron = hook.get_token().user_id
            made = [hook.request("POST", f"/api/v2/patrons/{patron}/identities", json=b).json() for b in bodies(3)]
        return [{"identity_id": m["id"]} for m in made] + [{"no_id": "x"}]

    with DAG("batch_placeholders", schedule=None, start_date=START) as dag:
        login = SignzyLoginOperator()
        made = PythonOperator(task_id="made", python_callable=create_three)
        fetch = SignzyBatchOperator(
            task_id="verify", method="GET", endpoint=IDENTITIES + "/{identity_id}", items=made.output
        )
        login >> made >> fetch >> SignzyLogoutOperator().as_teardown(setups=login)
    run = run_dag(dag)
    assert str(run.state) == "success", task_states(run)
    results = results_of(run)
    created = [i["id"] for i in dag_env.state.identities.values()]
    assert [r["response"]["id"] for r in results[:3]] == created
    assert results[3]["outcome"] == "invalid"
    assert "has no field 'identity_id'" in results[3]["error"]


@pytest.mark.parametrize("on_item_error", ["continue", "fail"])
def test_refused_items_under_each_on_item_error(dag_env: SignzyEmulator, on_item_error: str) -> None:
    refused = {"status": 422, "code": "INVALID"}
    dag_env.faults.add({"path": ANY_IDENTITIES, "method": "POST", "faults": [None, refused, None, refused]})
    run = run_dag(
        batch_dag(f"batch_refused_{on_item_error}", bodies(10), max_concurrency=1, on_item_error=on_item_error)
    )
    verify = next(t for t in run.get_task_instances() if t.task_id == "verify")
    if on_item_error == "continue":
        assert str(verify.state) == "success"
        outcomes = Counter(r["outcome"] for r in results_of(run))
        assert outcomes == {"succeeded": 8, "refused": 2}
    else:
        assert str(verify.state) == "failed"
    assert dag_env.state.snapshot()["identities_created"] == 8


@STORE
def test_a_retried_batch_resends_only_the_refused_items(dag_env: SignzyEmulator) -> None:
    refused = {"status": 422, "code": "INVALID"}
    dag_env.faults.add({"path": ANY_IDENTITIES, "method": "POST", "faults": [None, refused, None, refused]})
    items = bodies(30)
    run = run_dag(batch_dag("batch_resume", items, retries=2, max_concurrency=4, on_item_error="fail", ledger_window=8))
    assert str(run.state) == "success", task_states(run)
    results = results_of(run)
    outcomes = Counter(r["outcome"] for r in results)
    assert outcomes == {"replayed": 28, "succeeded": 2}  # try 2 sent only the two refused items
    assert [r["response"]["email"] for r in results] == [i["email"] for i in items]  # replayed answers too
    state = dag_env.state.snapshot()
    assert state["requests"][POSTS] == 32
    assert emails_created(dag_env) == Counter(i["email"] for i in items)  # each identity exactly once


def test_a_lost_answer_is_never_resent_and_fails_without_retries(dag_env: SignzyEmulator, capfd) -> None:
    dag_env.faults.add({"path": ANY_IDENTITIES, "method": "POST", "faults": [None, None, {"drop": "after"}]})
    run = run_dag(batch_dag("batch_lost", bodies(12), retries=2, max_concurrency=2, on_item_error="fail"))
    verify = next(t for t in run.get_task_instances() if t.task_id == "verify")
    assert (str(verify.state), verify.try_number) == ("failed", 1)
    assert dag_env.state.snapshot()["requests"][POSTS] == 12
    output = console_text(capfd)
    assert "1 unknown (items" in output
    assert "they may have been charged" in output


@STORE
def test_a_batch_interrupted_mid_way_resumes_without_sending_any_item_twice(dag_env: SignzyEmulator) -> None:
    # Airflow's execution_timeout interrupts try 1 mid-batch (the in-process stand-in for a killed
    # worker); try 2 replays what finished, sends what never left, and sends the rest.
    dag_env.faults.add({"path": ANY_IDENTITIES, "method": "POST", "every": 1, "fault": {"delay": 0.05}})
    items = bodies(80)
    dag = batch_dag("batch_interrupted", items, retries=2, max_concurrency=2, ledger_window=10)
    tries: list[int] = []

    def time_out_the_first_try(context: Any) -> None:
        tries.append(context["ti"].try_number)
        context["task"].execution_timeout = dt.timedelta(seconds=1) if len(tries) == 1 else None

    dag.task_dict["verify"].pre_execute = time_out_the_first_try
    run = run_dag(dag)
    assert str(run.state) == "success", task_states(run)
    assert tries == [1, 2]
    results = results_of(run)
    outcomes = Counter(r["outcome"] for r in results)
    assert outcomes["replayed"] > 0  # try 1 got some way
    assert outcomes["succeeded"] > 0  # try 2 sent the rest
    assert set(outcomes) <= {"replayed", "succeeded", "unknown"}
    created = emails_created(dag_env)
    assert max(created.values()) == 1  # no item was sent twice
    answered = {r["response"]["email"] for r in results if r["ok"]}
    assert answered <= set(created)
    assert len(answered) + outcomes["unknown"] == len(items)  # every item accounted for


def test_rate_limited_batch_backs_off_together(dag_env: SignzyEmulator) -> None:
    dag_env.rate_limit(25, burst=5)
    run = run_dag(batch_dag("batch_rate_limited", bodies(60), max_concurrency=8))
    assert str(run.state) == "success", task_states(run)
    assert {r["outcome"] for r in results_of(run)} == {"succeeded"}
    state = dag_env.state.snapshot()
    assert state["identities_created"] == 60
    # One shared back-off: a handful of threads meet the limit before the pace is set, not every call.
    assert state["rate_limited"] <= 16


def test_client_side_rate_cap_keeps_clear_of_the_limit(dag_env: SignzyEmulator) -> None:
    dag_env.rate_limit(40, burst=2)
    run = run_dag(batch_dag("batch_capped", bodies(30), max_concurrency=8, max_calls_per_second=30))
    assert str(run.state) == "success", task_states(run)
    assert dag_env.state.snapshot()["rate_limited"] == 0


@STORE
def test_the_batch_ledger_holds_no_personal_data_in_the_clear(dag_env: SignzyEmulator) -> None:
    from airflow.models.task_state_store import TaskStateStoreModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    items = bodies(12, prefix="pii.person")
    run = run_dag(batch_dag("batch_no_pii", items, ledger_window=5))
    assert str(run.state) == "success", task_states(run)
    with create_session() as session:
        rows = session.scalars(select(TaskStateStoreModel).where(TaskStateStoreModel.dag_id == "batch_no_pii")).all()
        stored = [(row.key, row.value) for row in rows]
    assert len(stored) == 3  # windows of 5, 5 and 2 items: one key each, written twice
    text = " ".join(value for _, value in stored)
    identity_ids = [i["id"] for i in dag_env.state.identities.values()]
    for secret in [i["email"] for i in items] + identity_ids:
        assert secret not in text


@requires_airflow_below("3.3", why="with a task state store a retry sends only the refused items")
def test_without_a_ledger_a_failed_batch_is_not_retried(dag_env: SignzyEmulator, capfd) -> None:
    refused = {"status": 422, "code": "INVALID"}
    dag_env.faults.add({"path": ANY_IDENTITIES, "method": "POST", "faults": [None, refused]})
    run = run_dag(batch_dag("batch_no_ledger", bodies(6), retries=2, max_concurrency=1, on_item_error="fail"))
    verify = next(t for t in run.get_task_instances() if t.task_id == "verify")
    assert (str(verify.state), verify.try_number) == ("failed", 1)  # a retry would pay again for the other 5
    assert dag_env.state.snapshot()["identities_created"] == 5
    assert "a retry would send every item again" in console_text(capfd)
