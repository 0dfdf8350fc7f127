"""SignzySensor in whole DAG runs: deferred (trigger run in-process by dag.test()) and poking."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import pytest
from dagrun import run_dag, task_states

from airflow_provider_signzy.emulator import SignzyEmulator
from airflow_provider_signzy.operators.signzy import SignzyLoginOperator, SignzyLogoutOperator, SignzyOperator
from airflow_provider_signzy.sensors.signzy import SignzySensor

pytestmark = pytest.mark.dagrun
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
IDENTITIES = "/api/v2/patrons/{patron_id}/identities"
IDENTITY = IDENTITIES + "/{{ ti.xcom_pull(task_ids='create')['id'] }}"
POLL_ROUTE = "GET /api/v2/patrons/{userId}/identities/{id}"


def make_dag(dag_id: str, **kwargs: Any) -> Any:
    from airflow.sdk import DAG

    return DAG(dag_id, schedule=None, start_date=START, catchup=False, **kwargs)


def kyc_dag(dag_id: str, **sensor_kwargs: Any) -> Any:
    """login >> create identity >> wait >> logout (teardown)."""
    sensor_kwargs.setdefault("success_when", {"status": ["verified", "completed"]})
    sensor_kwargs.setdefault("poke_interval", 0.2)
    sensor_kwargs.setdefault("timeout", 30)
    with make_dag(dag_id) as dag:
        login = SignzyLoginOperator(token_ttl=600)
        create = SignzyOperator(task_id="create", method="POST", endpoint=IDENTITIES, json={"type": "individualPan"})
        wait = SignzySensor(task_id="wait", endpoint=IDENTITY, **sensor_kwargs)
        logout = SignzyLogoutOperator()
        login >> create >> wait >> logout.as_teardown(setups=login)
    return dag


def polls(emulator: SignzyEmulator) -> int:
    return int(emulator.state.snapshot()["requests"].get(POLL_ROUTE, 0))


def person_acts_after_first_poll(emulator: SignzyEmulator, status: str) -> threading.Thread:
    """Move every identity to ``status`` once the sensor has seen it unchanged at least once."""

    def act() -> None:
        deadline = time.monotonic() + 60
        while polls(emulator) < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        for identity_id in list(emulator.state.identities):
            emulator.state.set_identity_status(identity_id, status)

    thread = threading.Thread(target=act, daemon=True)
    thread.start()
    return thread


def test_deferred_wait_ends_when_the_status_moves(dag_env: SignzyEmulator) -> None:
    person_acts_after_first_poll(dag_env, "verified")
    run = run_dag(kyc_dag("deferred_verified", deferrable=True))
    assert str(run.state) == "success", task_states(run)
    wait = next(ti for ti in run.get_task_instances() if ti.task_id == "wait")
    assert wait.xcom_pull(task_ids="wait")["status"] == "verified"
    state = dag_env.state.snapshot()
    assert polls(dag_env) >= 2  # "pending" at least once, then "verified"
    assert state["logins"] == 2  # the run's login, and the triggerer's shared login
    assert state["live_tokens"] == 0  # the trigger revoked its token when it ended


def test_poking_sensor_uses_the_runs_token(dag_env: SignzyEmulator) -> None:
    person_acts_after_first_poll(dag_env, "completed")
    run = run_dag(kyc_dag("poking_verified", deferrable=False))
    assert str(run.state) == "success", task_states(run)
    wait = next(ti for ti in run.get_task_instances() if ti.task_id == "wait")
    assert wait.xcom_pull(task_ids="wait")["status"] == "completed"
    state = dag_env.state.snapshot()
    assert polls(dag_env) >= 2
    assert state["logins"] == 1  # pokes reuse the run's token: no login of their own
    assert state["live_tokens"] == 0


@pytest.mark.parametrize("deferrable", [True, False], ids=["deferred", "poking"])
def test_failure_when_fails_at_once_with_the_value(dag_env: SignzyEmulator, deferrable: bool, capfd) -> None:
    person_acts_after_first_poll(dag_env, "rejected")
    dag = kyc_dag(
        f"rejected_{deferrable}", deferrable=deferrable, failure_when={"status": ["rejected", "expired"]}, retries=3
    )
    run = run_dag(dag)
    states = task_states(run)
    assert states["wait"] == "failed"
    assert states["signzy_logout"] == "success"
    wait = next(ti for ti in run.get_task_instances() if ti.task_id == "wait")
    assert wait.try_number == 1  # failure_when is final: no retry
    assert "status is 'rejected', a failure_when state" in capfd.readouterr().out
    assert dag_env.state.snapshot()["live_tokens"] == 0


def test_response_check_runs_on_the_worker_and_defers_again(dag_env: SignzyEmulator) -> None:
    seen: list[str] = []

    def second_look_passes(body: dict[str, Any]) -> bool:
        seen.append(body["status"])
        return len(seen) >= 2

    dag_env.state.auto_status = ("verified", 0)
    run = run_dag(kyc_dag("response_check", deferrable=True, response_check=second_look_passes))
    assert str(run.state) == "success", task_states(run)
    assert seen == ["verified", "verified"]  # called in deferrable mode, said no once, deferred again
    state = dag_env.state.snapshot()
    assert polls(dag_env) == 2  # one poll per deferral: the second waited poke_interval first
    assert state["logins"] == 3  # the run's login, then one shared login per deferral
    assert state["live_tokens"] == 0


@pytest.mark.parametrize("deferrable", [True, False], ids=["deferred", "poking"])
def test_timeout_fails_the_sensor(dag_env: SignzyEmulator, deferrable: bool, capfd) -> None:
    run = run_dag(kyc_dag(f"timeout_{deferrable}", deferrable=deferrable, timeout=1, poke_interval=0.3))
    states = task_states(run)
    assert states["wait"] == "failed"
    assert states["signzy_logout"] == "success"
    output = capfd.readouterr().out
    assert "AirflowSensorTimeout" in output
    assert 2 <= polls(dag_env) <= 6  # one poll per poke_interval until the deadline
    assert dag_env.state.snapshot()["live_tokens"] == 0


def test_soft_fail_skips_on_timeout(dag_env: SignzyEmulator) -> None:
    run = run_dag(kyc_dag("soft_timeout", deferrable=True, timeout=0.5, soft_fail=True))
    assert task_states(run)["wait"] == "skipped"


def test_trigger_logs_in_again_once_after_a_401(dag_env: SignzyEmulator) -> None:
    dag_env.state.auto_status = ("verified", 0)
    dag_env.faults.add(
        {
            "path": "/api/v2/patrons/*/identities/*",
            "method": "GET",
            "faults": [{"status": 401, "code": "INVALID_TOKEN"}],
        }
    )
    run = run_dag(kyc_dag("relogin", deferrable=True))
    assert str(run.state) == "success", task_states(run)
    state = dag_env.state.snapshot()
    assert polls(dag_env) == 2
    assert state["logins"] == 3  # the run's, the shared one, and one fresh shared login after the 401
    assert state["live_tokens"] == 0  # the replaced shared token was revoked too


def test_a_401_with_a_fresh_token_is_a_permission_error(dag_env: SignzyEmulator, capfd) -> None:
    denied = {"status": 401, "code": "AUTHORIZATION_REQUIRED", "message": "Authorization Required"}
    dag_env.faults.add({"path": "/api/v2/patrons/*/identities/*", "method": "GET", "faults": [denied, denied]})
    run = run_dag(kyc_dag("denied", deferrable=True, retries=0))
    assert task_states(run)["wait"] == "failed"
    assert "This is a permission problem, not an expired token" in capfd.readouterr().out
    assert polls(dag_env) == 2
    assert dag_env.state.snapshot()["live_tokens"] == 0


def test_502_and_429_storm_is_survived_without_a_hot_loop(dag_env: SignzyEmulator, make_conn) -> None:
    make_conn(max_attempts=2)
    dag_env.state.auto_status = ("verified", 0)
    storm = [{"status": 502}] * 5 + [{"status": 429, "retry_after": 0.5}] * 2 + [{"status": 503}]
    dag_env.faults.add({"path": "/api/v2/patrons/*/identities/*", "method": "GET", "faults": storm})
    run = run_dag(kyc_dag("storm", deferrable=True))
    assert str(run.state) == "success", task_states(run)
    assert polls(dag_env) == len(storm) + 1  # every failed attempt was retried or re-polled, none more


def test_endless_429_storm_polls_at_the_retry_after_pace(dag_env: SignzyEmulator, make_conn) -> None:
    make_conn(max_attempts=1)
    dag_env.faults.add(
        {"path": "/api/v2/patrons/*/identities/*", "every": 1, "fault": {"status": 429, "retry_after": 1}}
    )
    run = run_dag(kyc_dag("endless_429", deferrable=True, timeout=2.5, poke_interval=0.05))
    assert task_states(run)["wait"] == "failed"
    # With poke_interval 0.05 s a loop that ignored Retry-After would poll ~50 times in 2.5 s.
    assert 2 <= polls(dag_env) <= 4
    assert dag_env.state.snapshot()["live_tokens"] == 0
