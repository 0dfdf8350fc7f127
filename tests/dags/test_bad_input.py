"""Bad input at the edges: the task fails with a message that names the problem and the connection,
a short traceback (no requests/urllib3 internals), and no secret."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.fernet import Fernet
from dagrun import console_text, run_dag, task_states, unwrapped

from airflow_provider_signzy.emulator import SignzyEmulator
from airflow_provider_signzy.operators.signzy import SignzyLoginOperator, SignzyLogoutOperator, SignzyOperator

pytestmark = pytest.mark.dagrun
KEY = "demo-api-key-0123456789"
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def login_only_dag(dag_id: str) -> Any:
    from airflow.sdk import DAG

    with DAG(dag_id, schedule=None, start_date=START) as dag:
        SignzyLoginOperator()
    return dag


def failure_output(capfd: pytest.CaptureFixture[str]) -> str:
    return console_text(capfd)


def assert_clean_failure(output: str, *expected: str) -> None:
    for text in expected:
        assert text in output
    assert KEY not in unwrapped(output)
    assert "urllib3/connectionpool.py" not in output  # errors are raised `from None`: no internals
    assert "requests/adapters.py" not in output


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"password": ""}, "Connection 'signzy_default' has no API key (password field)"),
        ({"url": "signzy.tech"}, "Connection 'signzy_default': Base URL (host field) must start with https://"),
    ],
)
def test_bad_connection_fails_the_login_task_by_name(
    airflow_db: None, make_conn: Callable[..., str], capfd, fields: dict[str, str], expected: str
) -> None:
    make_conn(**fields)
    run = run_dag(login_only_dag("bad_conn_" + "_".join(fields)))
    assert task_states(run)["signzy_login"] == "failed"
    assert_clean_failure(failure_output(capfd), expected)


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (
            "<html><title>Maintenance</title></html>",
            "text/html",
            "Signzy login answered 200 with a body that is not JSON",
        ),
        ({"token": "abc", "user": "x"}, "application/json", "lacks 'id', 'userId': it is not the login shape"),
    ],
)
def test_odd_login_bodies_fail_clearly(
    dag_env: SignzyEmulator, capfd, body: object, content_type: str, expected: str
) -> None:
    dag_env.faults.add(
        {"path": "/api/v2/patrons/login", "faults": [{"status": 200, "body": body, "content_type": content_type}]}
    )
    run = run_dag(login_only_dag(f"odd_login_{content_type.split('/')[1]}"))
    assert task_states(run)["signzy_login"] == "failed"
    assert_clean_failure(failure_output(capfd), expected, "connection 'signzy_default'")


def tamper(ti: Any, how: str) -> None:
    """Rewrite the login task's record as an attacker or a misconfigured worker would."""
    from airflow_provider_signzy.utils.token_xcom import TOKEN_XCOM_KEY

    record = ti.xcom_pull(task_ids="signzy_login", key=TOKEN_XCOM_KEY)
    if how == "changed":
        record["token"] = record["token"][:-6] + "AAAAAA"
    else:  # encrypted under another key
        record["token"] = Fernet(Fernet.generate_key()).encrypt(b"x" * 64).decode()
    # The forging task stores it under the operators' key; the call reads it with login_task_id="forge".
    ti.xcom_push(key=TOKEN_XCOM_KEY, value=record)


@pytest.mark.parametrize("how", ["changed", "other-key"])
def test_tampered_token_record_fails_the_call_and_the_real_token_is_still_revoked(
    dag_env: SignzyEmulator, capfd, how: str
) -> None:
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.sdk import DAG

    with DAG(f"tampered_{how.replace('-', '_')}", schedule=None, start_date=START) as dag:
        login = SignzyLoginOperator()
        forge = PythonOperator(task_id="forge", python_callable=tamper, op_kwargs={"how": how})
        call = SignzyOperator(task_id="call", endpoint="/api/v2/patrons/{patron_id}", login_task_id="forge")
        logout = SignzyLogoutOperator()
        login >> forge >> call >> logout.as_teardown(setups=login)
    run = run_dag(dag)
    states = task_states(run)
    assert states["call"] == "failed"
    assert states["signzy_logout"] == "success"
    assert_clean_failure(
        failure_output(capfd),
        "XCom of task 'forge' holds a Signzy token that Airflow [core] fernet_key cannot decrypt",
        "encrypted under another key or changed after it was written",
    )
    assert dag_env.state.snapshot()["live_tokens"] == 0
