"""SignzySensor in whole DAG runs: deferred (trigger run in-process by dag.test()) and poking."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import pytest
from dagrun import console_text, run_dag, task_states

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
    assert "status is 'rejected', a failure_when state" in console_text(capfd)  # 3.0: rich, wrapped
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
    assert "This is a permission problem, not an expired token" in console_text(capfd)
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


# -- ending in the triggerer ----------------------------------------------------------------------


def test_without_response_check_the_trigger_ends_the_task(dag_env: SignzyEmulator, capfd) -> None:
    person_acts_after_first_poll(dag_env, "verified")
    run = run_dag(kyc_dag("ends_in_trigger", deferrable=True))
    assert str(run.state) == "success", task_states(run)
    output = capfd.readouterr().out
    assert "the task ends here, in the triggerer, with the answer (sealed) as its XCom" in output
    wait = next(ti for ti in run.get_task_instances() if ti.task_id == "wait")
    result = wait.xcom_pull(task_ids="wait")
    assert result["status"] == "verified"
    assert "signzy_sealed" in result
    # dag.test() does not honour end events (no 3.x line does): it resumed the task with the event's
    # payload, so the outcome is the same as on a deployment. Airflow's own handler is tested below.
    assert dag_env.state.snapshot()["live_tokens"] == 0


def test_airflows_triggerer_handler_ends_the_deferred_task_and_pushes_the_sealed_xcom(
    dag_env: SignzyEmulator,
) -> None:
    """The end event, as the triggerer's supervisor gets it, through Airflow's own ``handle_event_submit``.

    The supervisor calls ``Trigger.submit_event`` -> ``handle_event_submit`` for each task deferred on the
    trigger; here the task instance of a finished run is put back in ``deferred`` first (the triggerer
    process itself runs in `make bench-sensors` and `make e2e`).
    """
    import asyncio

    from airflow.models.trigger import handle_event_submit
    from airflow.models.xcom import XComModel
    from airflow.triggers.base import DiscrimatedTriggerEvent, TaskSuccessEvent
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState
    from pydantic import TypeAdapter
    from sqlalchemy import delete

    from airflow_provider_signzy.triggers.signzy import SignzyTrigger

    dag_env.state.auto_status = ("verified", 0)
    run = run_dag(kyc_dag("handler_ends_task", deferrable=True))
    [identity_id] = dag_env.state.identities
    trigger = SignzyTrigger(
        endpoint=IDENTITIES + "/" + identity_id,
        deadline=time.time() + 30,
        success_when={"status": ["verified"]},
        end_from_trigger=True,
    )

    async def first() -> Any:
        async for event in trigger.run():
            return event

    adapter = TypeAdapter(DiscrimatedTriggerEvent)
    event = adapter.validate_json(adapter.dump_json(asyncio.run(first())))
    assert isinstance(event, TaskSuccessEvent)
    with create_session() as session:
        wait = next(ti for ti in run.get_task_instances(session=session) if ti.task_id == "wait")
        session.execute(delete(XComModel).where(XComModel.dag_id == wait.dag_id, XComModel.task_id == "wait"))
        wait.state = TaskInstanceState.DEFERRED
        session.flush()
        handle_event_submit(event, task_instance=wait, session=session)
    with create_session() as session:
        wait = next(ti for ti in run.get_task_instances(session=session) if ti.task_id == "wait")
        assert str(wait.state) == "success"
        result = wait.xcom_pull(task_ids="wait", session=session)
    assert result == event.xcoms["return_value"]
    assert result["status"] == "verified"
    assert "signzy_sealed" in result


def test_failure_when_without_retries_ends_in_the_trigger(dag_env: SignzyEmulator, capfd) -> None:
    person_acts_after_first_poll(dag_env, "rejected")
    run = run_dag(kyc_dag("rejected_no_retries", deferrable=True, failure_when={"status": "rejected"}, retries=0))
    assert task_states(run)["wait"] == "failed"
    output = capfd.readouterr().out
    assert "status is 'rejected', a failure_when state (status: ['rejected']): the task fails here" in output
    assert dag_env.state.snapshot()["live_tokens"] == 0


def test_end_from_trigger_false_hands_every_wait_to_a_worker(dag_env: SignzyEmulator, capfd) -> None:
    dag_env.state.auto_status = ("verified", 0)
    run = run_dag(kyc_dag("handed_back", deferrable=True, end_from_trigger=False))
    assert str(run.state) == "success", task_states(run)
    assert "the task ends here, in the triggerer" not in capfd.readouterr().out


def test_end_from_trigger_cannot_run_a_response_check() -> None:
    with pytest.raises(ValueError, match="end_from_trigger=True cannot run a response_check"):
        SignzySensor(
            task_id="x", endpoint="/e", success_when={"status": "ok"}, response_check=bool, end_from_trigger=True
        )


# -- a dead Signzy ------------------------------------------------------------------------------------


def test_a_stopped_signzy_fails_the_wait_after_the_limit_not_at_the_timeout(
    airflow_db: None, emulator: SignzyEmulator, make_conn, capfd
) -> None:
    from datetime import timedelta

    from outage import OutageProxy

    with OutageProxy(emulator.url) as proxy:
        make_conn(url=proxy.url, max_attempts=2)
        proxy.stop()  # Signzy's host is down before the wait starts
        with make_dag("stopped_signzy") as dag:
            SignzySensor(
                task_id="wait",
                endpoint=IDENTITIES + "/abc",
                success_when={"status": "verified"},
                deferrable=True,
                poke_interval=0.1,
                timeout=timedelta(hours=1),
                max_consecutive_failures=4,
            )
        started = time.monotonic()
        run = run_dag(dag)
    assert task_states(run)["wait"] == "failed"
    assert time.monotonic() - started < 60  # the limit, not the hour
    output = console_text(capfd)
    assert "4 polls in a row failed" in output
    assert "max_consecutive_failures=4" in output
    state = emulator.state.snapshot()
    assert (state["logins"], state["live_tokens"]) == (0, 0)


def test_a_signzy_failing_every_poll_fails_the_wait_and_revokes(dag_env: SignzyEmulator, make_conn) -> None:
    make_conn(max_attempts=1)
    dag_env.faults.add(
        {"path": "/api/v2/patrons/*/identities/*", "method": "GET", "every": 1, "fault": {"status": 503}}
    )
    run = run_dag(kyc_dag("failing_polls", deferrable=True, max_consecutive_failures=3, timeout=3600, retries=0))
    states = task_states(run)
    assert states["wait"] == "failed"
    assert states["signzy_logout"] == "success"
    assert polls(dag_env) == 3
    assert dag_env.state.snapshot()["live_tokens"] == 0  # the shared token and the run's, both revoked
