"""Whole DAG runs: one login per run, and no live token after any run, failed or not."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from dagrun import console_text, run_dag, task_states, unwrapped

from airflow_provider_signzy.callbacks import revoke_token_on_failure
from airflow_provider_signzy.emulator import SignzyEmulator
from airflow_provider_signzy.operators.signzy import (
    SignzyLoginOperator,
    SignzyLogoutOperator,
    SignzyOperator,
    SignzyRevokeTokenOperator,
)

pytestmark = pytest.mark.dagrun
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
IDENTITIES = "/api/v2/patrons/{patron_id}/identities"


def make_dag(dag_id: str, **kwargs: Any) -> Any:
    from airflow.sdk import DAG

    return DAG(dag_id, schedule=None, start_date=START, catchup=False, **kwargs)


def failing_task(task_id: str = "work_fails", **kwargs: Any) -> Any:
    from airflow.providers.standard.operators.python import PythonOperator

    def fail() -> None:
        raise RuntimeError("work failed on purpose")

    return PythonOperator(task_id=task_id, python_callable=fail, **kwargs)


def test_one_login_five_calls_no_live_token(dag_env: SignzyEmulator) -> None:
    with make_dag("five_calls") as dag:
        login = SignzyLoginOperator(token_ttl=600)
        create = SignzyOperator(task_id="create", method="POST", endpoint=IDENTITIES, json={"type": "individualPan"})
        calls = [SignzyOperator(task_id=f"list_{i}", endpoint=IDENTITIES) for i in range(4)]
        logout = SignzyLogoutOperator()
        login >> create >> calls >> logout.as_teardown(setups=login)
    run = run_dag(dag)
    assert str(run.state) == "success", task_states(run)
    state = dag_env.state.snapshot()
    assert state["logins"] == 1
    assert state["requests"]["POST /api/v2/patrons/{userId}/identities"] == 1
    assert state["requests"]["GET /api/v2/patrons/{userId}/identities"] == 4
    assert state["logouts"] == 1
    assert state["live_tokens"] == 0
    listed = next(ti for ti in run.get_task_instances() if ti.task_id == "list_3")
    assert len(listed.xcom_pull(task_ids="list_3")) == 1  # the call's JSON went to XCom


def test_failed_work_task_teardown_revokes(dag_env: SignzyEmulator) -> None:
    with make_dag("teardown_revokes") as dag:
        login = SignzyLoginOperator()
        call = SignzyOperator(task_id="call", endpoint=IDENTITIES)
        logout = SignzyLogoutOperator()
        login >> call >> failing_task() >> logout.as_teardown(setups=login)
    run = run_dag(dag)
    states = task_states(run)
    assert str(run.state) == "failed"
    assert states["work_fails"] == "failed"
    assert states["signzy_logout"] == "success"
    state = dag_env.state.snapshot()
    assert (state["logins"], state["logouts"], state["live_tokens"]) == (1, 1, 0)


def test_without_teardown_the_task_callback_revokes(dag_env: SignzyEmulator) -> None:
    with make_dag("callback_revokes") as dag:
        login = SignzyLoginOperator()
        login >> failing_task(on_failure_callback=revoke_token_on_failure())
    run = run_dag(dag)
    assert str(run.state) == "failed"
    state = dag_env.state.snapshot()
    assert (state["logins"], state["logouts"], state["live_tokens"]) == (1, 1, 0)


def test_teardown_and_callback_together_revoke_once_without_error(dag_env: SignzyEmulator, capfd) -> None:
    with make_dag("both_nets") as dag:
        login = SignzyLoginOperator()
        logout = SignzyLogoutOperator()
        login >> failing_task(on_failure_callback=revoke_token_on_failure()) >> logout.as_teardown(setups=login)
    run = run_dag(dag)
    states = task_states(run)
    assert states["signzy_logout"] == "success"
    state = dag_env.state.snapshot()
    assert state["logins"] == 1
    assert state["logouts"] == 1  # revoked once; the second net found it dead
    assert state["live_tokens"] == 0
    output = console_text(capfd)
    assert "Could not revoke" not in output


def test_revoke_operator_is_idempotent_and_green(dag_env: SignzyEmulator) -> None:
    with make_dag("revoke_twice") as dag:
        login = SignzyLoginOperator()
        first = SignzyRevokeTokenOperator(task_id="revoke_1")
        second = SignzyRevokeTokenOperator(task_id="revoke_2")
        login >> first >> second
    run = run_dag(dag)
    assert str(run.state) == "success", task_states(run)
    outcomes = {ti.task_id: ti.xcom_pull(task_ids=ti.task_id) for ti in run.get_task_instances()}
    assert outcomes["revoke_1"] == "revoked"
    assert outcomes["revoke_2"] == "already-dead"
    assert dag_env.state.snapshot()["live_tokens"] == 0


def test_call_without_login_task_logs_in_and_revokes_its_own_token(dag_env: SignzyEmulator) -> None:
    with make_dag("standalone_call") as dag:
        SignzyOperator(task_id="call", endpoint=IDENTITIES)
    run = run_dag(dag)
    assert str(run.state) == "success", task_states(run)
    state = dag_env.state.snapshot()
    assert (state["logins"], state["logouts"], state["live_tokens"]) == (1, 1, 0)


def test_expired_token_mid_run_logs_in_again_once_and_revokes_it(dag_env: SignzyEmulator) -> None:
    from airflow.providers.standard.operators.python import PythonOperator

    with make_dag("expired_mid_run") as dag:
        login = SignzyLoginOperator(token_ttl=60)
        expire = PythonOperator(task_id="expire", python_callable=lambda: dag_env.state.advance_clock(61))
        call = SignzyOperator(task_id="call", endpoint=IDENTITIES)
        logout = SignzyLogoutOperator()
        login >> expire >> call >> logout.as_teardown(setups=login)
    run = run_dag(dag)
    assert str(run.state) == "success", task_states(run)
    state = dag_env.state.snapshot()
    assert state["logins"] == 2  # once for the run, once more for the expired call
    assert state["expired"] == 1
    assert state["live_tokens"] == 0  # the call revoked its fresh token; the teardown found the old one dead


def test_wrong_api_key_fails_login_clearly_without_retries(
    airflow_db: None, make_conn: Callable[..., str], emulator: SignzyEmulator, capfd
) -> None:
    make_conn(password="wrong-key-1234567")
    with make_dag("wrong_key") as dag:
        login = SignzyLoginOperator()
        logout = SignzyLogoutOperator()
        login >> SignzyOperator(task_id="call", endpoint=IDENTITIES) >> logout.as_teardown(setups=login)
    run = run_dag(dag)
    states = task_states(run)
    assert states["signzy_login"] == "failed"
    assert states["call"] == "upstream_failed"
    assert emulator.state.snapshot()["requests"]["POST /api/v2/patrons/login"] == 1
    output = console_text(capfd)
    assert "Signzy refused the login of user 'demo'" in output
    assert "Check the Username and API key of connection 'signzy_default'" in output
    assert "wrong-key-1234567" not in unwrapped(output)


def test_token_from_another_connection_is_refused(dag_env: SignzyEmulator, make_conn, capfd) -> None:
    make_conn("signzy_other")
    with make_dag("conn_mismatch") as dag:
        login = SignzyLoginOperator()
        call = SignzyOperator(task_id="call", endpoint=IDENTITIES, signzy_conn_id="signzy_other")
        logout = SignzyLogoutOperator()
        login >> call >> logout.as_teardown(setups=login)
    run = run_dag(dag)
    assert task_states(run)["call"] == "failed"
    assert "was issued for connection 'signzy_default', but this task uses 'signzy_other'" in console_text(capfd)
    assert dag_env.state.snapshot()["live_tokens"] == 0
