"""Mistakes no retry can fix fail the task at once, with ``retries=3`` and a 20-second ``retry_delay``; what a
retry can fix is still retried. A firewall's 403 (an HTML page) is told apart from Signzy's rate-limit 403.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import pytest
from dagrun import console_text, run_dag, task_states, unwrapped

from airflow_provider_signzy.emulator import SignzyEmulator
from airflow_provider_signzy.operators.signzy import SignzyLoginOperator, SignzyLogoutOperator, SignzyOperator
from airflow_provider_signzy.sensors.signzy import SignzySensor

pytestmark = pytest.mark.dagrun
KEY = "demo-api-key-0123456789"
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
SLOW_RETRIES = {"retries": 3, "retry_delay": dt.timedelta(seconds=20)}
PATRON = "/api/v2/patrons/{patron_id}"
FIREWALL_PAGE = (
    "<html><head><title>403 Forbidden - Request blocked by edge firewall</title></head>"
    "<body><h1>Access denied</h1><p>Your IP is not on the allow-list.</p></body></html>"
)
MakeConn = Callable[..., str]


def lifecycle_dag(dag_id: str, *calls: Any, **default_args: Any) -> Any:
    from airflow.sdk import DAG

    with DAG(dag_id, schedule=None, start_date=START, default_args=default_args or SLOW_RETRIES) as dag:
        login = SignzyLoginOperator()
        built = [call() for call in calls]
        login >> built >> SignzyLogoutOperator().as_teardown(setups=login)
    return dag


def try_of(run: Any, task_id: str) -> tuple[str, int]:
    ti = next(t for t in run.get_task_instances() if t.task_id == task_id)
    return str(ti.state), ti.try_number


def timed(dag: Any) -> tuple[Any, float]:
    started = time.monotonic()
    run = run_dag(dag)
    return run, time.monotonic() - started


def test_a_wrong_api_key_fails_the_login_at_once(make_conn: MakeConn, airflow_db: None, capfd) -> None:
    make_conn(password="not-the-key-0000")
    run, seconds = timed(lifecycle_dag("fail_fast_wrong_key"))
    assert try_of(run, "signzy_login") == ("failed", 1)  # Airflow's three retries were not used
    assert seconds < 20  # not one retry_delay waited
    output = console_text(capfd)
    assert "Signzy refused the login of user 'demo'" in output
    assert "Check the Username and API key of connection 'signzy_default'" in output
    assert "not-the-key-0000" not in unwrapped(output)


def test_every_misspelled_extra_is_named_at_once(make_conn: MakeConn, airflow_db: None, capfd) -> None:
    make_conn(password=KEY, token_tll=600, max_atempts=3)
    run, seconds = timed(lifecycle_dag("fail_fast_extras"))
    assert try_of(run, "signzy_login") == ("failed", 1)
    assert seconds < 20
    output = console_text(capfd)
    assert "unknown extra 'token_tll'; did you mean 'token_ttl'?" in output
    assert "unknown extra 'max_atempts'; did you mean 'max_attempts'?" in output


def test_a_transient_503_is_still_retried_to_success(dag_env: SignzyEmulator) -> None:
    dag_env.faults.add({"path": "/api/v2/patrons/login", "method": "POST", "faults": [{"status": 503}]})
    run = run_dag(lifecycle_dag("fail_fast_503", lambda: SignzyOperator(task_id="read", endpoint=PATRON)))
    assert str(run.state) == "success", task_states(run)
    assert dag_env.state.snapshot()["faults_served"] == 1


def test_a_firewalls_403_fails_the_call_at_once_naming_the_host(dag_env: SignzyEmulator, capfd) -> None:
    dag_env.faults.add(
        {
            "path": "/api/v2/patrons/*",
            "method": "GET",
            "faults": [{"status": 403, "body": FIREWALL_PAGE, "content_type": "text/html"}],
        }
    )
    run, seconds = timed(lifecycle_dag("fail_fast_firewall", lambda: SignzyOperator(task_id="read", endpoint=PATRON)))
    assert try_of(run, "read") == ("failed", 1)
    assert seconds < 20
    state = dag_env.state.snapshot()
    assert state["requests"]["GET /api/v2/patrons/{userId}"] == 1  # not retried as a rate limit
    assert state["live_tokens"] == 0
    output = console_text(capfd)
    assert "127.0.0.1 answered 403 to GET" in output
    assert "Request blocked by edge firewall" in output
    assert "not a rate limit" in output


def test_signzys_own_403_is_still_a_rate_limit_waited_out(dag_env: SignzyEmulator) -> None:
    dag_env.faults.add(
        {"path": "/api/v2/patrons/*", "method": "GET", "faults": [{"status": 403, "code": "RATE_LIMIT_EXCEEDED"}]}
    )
    run = run_dag(lifecycle_dag("fail_fast_rate_limit", lambda: SignzyOperator(task_id="read", endpoint=PATRON)))
    assert str(run.state) == "success", task_states(run)
    assert try_of(run, "read") == ("success", 1)
    assert dag_env.state.snapshot()["requests"]["GET /api/v2/patrons/{userId}"] == 2


def test_a_deferred_sensor_behind_a_firewall_ends_at_once_without_a_live_token(dag_env: SignzyEmulator, capfd) -> None:
    dag_env.faults.add(
        {
            "path": "/api/v2/patrons/*",
            "method": "GET",
            "faults": [{"status": 403, "body": FIREWALL_PAGE, "content_type": "text/html"}] * 50,
        }
    )

    def wait() -> Any:
        return SignzySensor(
            task_id="wait",
            endpoint=PATRON,
            success_when={"id": "never"},
            poke_interval=1,
            timeout=300,
            deferrable=True,
        )

    run, seconds = timed(lifecycle_dag("fail_fast_sensor", wait))
    assert try_of(run, "wait")[0] == "failed"
    assert seconds < 60
    assert dag_env.state.snapshot()["live_tokens"] == 0
    assert "not a rate limit" in console_text(capfd)
