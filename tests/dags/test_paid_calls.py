"""Paid calls across Airflow's own task retries: the call ledger in real DAG runs (Airflow 3.3+).

Each DAG has ``retries=2``, the most common ``default_args``; the emulator loses answers or refuses calls,
and the tests count what reached it. Under ``dag.test()`` a retry runs inside the same invocation.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from airflow_version import airflow_at_least, requires_airflow
from dagrun import clear_and_rerun, console_text, run_dag, task_states

from airflow_provider_signzy.emulator import SignzyEmulator
from airflow_provider_signzy.ledger import LEDGER_KEY_PREFIX
from airflow_provider_signzy.operators.signzy import SignzyLoginOperator, SignzyLogoutOperator, SignzyOperator
from airflow_provider_signzy.privacy import unseal

pytestmark = pytest.mark.dagrun
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
IDENTITIES = "/api/v2/patrons/{patron_id}/identities"
POSTS = "POST /api/v2/patrons/{userId}/identities"
RETRIES = {"retries": 2, "retry_delay": dt.timedelta(seconds=1)}
CHARGED = "it may have been charged"
#: Tests of what only the call ledger gives; the others hold on every Airflow line (README's table).
STORE = requires_airflow("3.3", why="the call ledger lives in the task state store, new in Airflow 3.3")


def make_dag(dag_id: str, **kwargs: Any) -> Any:
    from airflow.sdk import DAG

    return DAG(dag_id, schedule=None, start_date=START, catchup=False, default_args=RETRIES, **kwargs)


def lifecycle(create: Any) -> None:
    login = SignzyLoginOperator()
    login >> create >> SignzyLogoutOperator().as_teardown(setups=login)


def task_instance(run: Any, task_id: str, map_index: int = -1) -> Any:
    return next(ti for ti in run.get_task_instances() if ti.task_id == task_id and ti.map_index == map_index)


def ledger_rows(dag_id: str) -> list[dict[str, Any]]:
    """What the task state store holds for ``dag_id``'s runs, read from the metadata DB."""
    from airflow.models.task_state_store import TaskStateStoreModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(select(TaskStateStoreModel).where(TaskStateStoreModel.dag_id == dag_id)).all()
        return [
            {"task_id": r.task_id, "map_index": r.map_index, "key": r.key, "raw": r.value, "value": json.loads(r.value)}
            for r in rows
        ]


def identity_body(email: str) -> dict[str, Any]:
    return {"type": "individualPan", "email": email, "images": []}


def test_lost_answer_is_sent_once_and_fails_without_retries(dag_env: SignzyEmulator, capfd) -> None:
    dag_env.faults.add({"path": "/api/v2/patrons/*/identities", "method": "POST", "faults": [{"drop": "after"}]})
    with make_dag("paid_lost_answer") as dag:
        lifecycle(SignzyOperator(task_id="create", method="POST", endpoint=IDENTITIES, json=identity_body("a@x.in")))
    run = run_dag(dag)
    assert str(run.state) == "failed"
    create = task_instance(run, "create")
    assert str(create.state) == "failed"
    assert create.try_number == 1  # failed at once: Airflow's two retries were not used
    state = dag_env.state.snapshot()
    assert state["requests"][POSTS] == 1
    assert state["identities_created"] == 1
    assert state["live_tokens"] == 0
    output = console_text(capfd)
    assert CHARGED in output
    if not airflow_at_least("3.3"):
        assert "There is no call ledger here" in output  # and so no entry to delete
        return
    assert "DELETE /api/v2/dags/paid_lost_answer/dagRuns/" in output
    [row] = ledger_rows("paid_lost_answer")
    assert row["key"].startswith(LEDGER_KEY_PREFIX)
    assert row["value"]["state"] == "unknown"
    assert row["value"]["try"] == 1


@STORE
def test_answer_kept_when_a_later_step_fails_is_replayed_on_retry(dag_env: SignzyEmulator, tmp_path) -> None:
    seen = tmp_path / "filter-calls"

    def keep_id_but_fail_first_time(response: Any) -> str:
        calls = int(seen.read_text()) + 1 if seen.exists() else 1
        seen.write_text(str(calls))
        if calls == 1:
            raise RuntimeError("writing the result downstream failed (on purpose, first try only)")
        return str(response.json()["id"])

    with make_dag("paid_replayed") as dag:
        lifecycle(
            SignzyOperator(
                task_id="create",
                method="POST",
                endpoint=IDENTITIES,
                json=identity_body("b@x.in"),
                response_filter=keep_id_but_fail_first_time,
            )
        )
    run = run_dag(dag)
    assert str(run.state) == "success", task_states(run)
    create = task_instance(run, "create")
    assert create.try_number == 2
    state = dag_env.state.snapshot()
    assert state["requests"][POSTS] == 1
    [identity] = dag_env.state.identities.values()
    # The same value the first try saw (sealed: a response_filter's value may hold personal data too).
    assert unseal(create.xcom_pull(task_ids="create")) == identity["id"]


@STORE
def test_taskflow_hook_call_is_replayed_on_retry(dag_env: SignzyEmulator, tmp_path) -> None:
    from airflow.sdk import task

    from airflow_provider_signzy.hooks.signzy import SignzyHook

    tries = tmp_path / "tries"

    with make_dag("paid_taskflow") as dag:

        @task
        def verify() -> str:
            with SignzyHook() as hook:
                token = hook.get_token()
                answer = hook.request("POST", IDENTITIES.format(patron_id=token.user_id), json=identity_body("c@x.in"))
            tries.write_text(tries.read_text() + "x" if tries.exists() else "x")
            if tries.read_text() == "x":
                raise RuntimeError("a later step of the task failed (first try only)")
            return str(answer.json()["id"])

        verify()
    run = run_dag(dag)
    assert str(run.state) == "success", task_states(run)
    assert tries.read_text() == "xx"
    state = dag_env.state.snapshot()
    assert state["requests"][POSTS] == 1
    [identity] = dag_env.state.identities.values()
    assert task_instance(run, "verify").xcom_pull(task_ids="verify") == identity["id"]
    assert state["live_tokens"] == 0


def test_call_refused_without_effect_is_sent_again_on_retry(dag_env: SignzyEmulator) -> None:
    dag_env.faults.add(
        {"path": "/api/v2/patrons/*/identities", "method": "POST", "faults": [{"status": 422, "code": "INVALID"}]}
    )
    with make_dag("paid_refused") as dag:
        lifecycle(SignzyOperator(task_id="create", method="POST", endpoint=IDENTITIES, json=identity_body("d@x.in")))
    run = run_dag(dag)
    assert str(run.state) == "success", task_states(run)
    assert task_instance(run, "create").try_number == 2
    state = dag_env.state.snapshot()
    assert state["requests"][POSTS] == 2  # refused once, then sent again
    assert state["identities_created"] == 1


def test_mapped_calls_keep_one_ledger_per_map_index(dag_env: SignzyEmulator, capfd) -> None:
    lost = {"drop": "after"}
    dag_env.faults.add(
        {"path": "/api/v2/patrons/*/identities", "method": "POST", "faults": [None, lost, None, lost, None, None]}
    )
    bodies = [identity_body(f"m{i}@x.in") for i in range(6)]
    with make_dag("paid_mapped") as dag:
        login = SignzyLoginOperator()
        verify = SignzyOperator.partial(task_id="verify", method="POST", endpoint=IDENTITIES).expand(json=bodies)
        login >> verify >> SignzyLogoutOperator().as_teardown(setups=login)
    run = run_dag(dag)
    mapped = [ti for ti in run.get_task_instances() if ti.task_id == "verify"]
    assert sorted(str(ti.state) for ti in mapped) == ["failed"] * 2 + ["success"] * 4
    assert all(ti.try_number == 1 for ti in mapped if str(ti.state) == "failed")
    state = dag_env.state.snapshot()
    assert state["requests"][POSTS] == 6
    assert state["identities_created"] == 6
    assert console_text(capfd).count(CHARGED) >= 2
    if not airflow_at_least("3.3"):
        return  # no task state store: the in-process guarantee above is all there is
    rows = ledger_rows("paid_mapped")
    assert sorted(r["map_index"] for r in rows) == list(range(6))
    assert sorted(r["value"]["state"] for r in rows) == ["succeeded"] * 4 + ["unknown"] * 2


@STORE
def test_reads_write_nothing_to_the_ledger(dag_env: SignzyEmulator) -> None:
    with make_dag("paid_reads_only") as dag:
        lifecycle(SignzyOperator(task_id="list", endpoint=IDENTITIES))
    run = run_dag(dag)
    assert str(run.state) == "success", task_states(run)
    assert ledger_rows("paid_reads_only") == []


@STORE
def test_ledger_holds_no_pii_or_answer_in_the_clear(dag_env: SignzyEmulator) -> None:
    email = "pii.person@example.in"
    with make_dag("paid_no_pii") as dag:
        lifecycle(SignzyOperator(task_id="create", method="POST", endpoint=IDENTITIES, json=identity_body(email)))
    run = run_dag(dag)
    assert str(run.state) == "success", task_states(run)
    [row] = ledger_rows("paid_no_pii")
    [identity] = dag_env.state.identities.values()
    assert row["value"]["state"] == "succeeded"
    assert row["value"]["enc"] == "fernet"  # the answer is kept for a replay, compressed and encrypted
    assert row["value"]["data"]
    assert set(row["value"]) == {"v", "kind", "state", "try", "enc", "data"}  # nothing else in the clear
    for secret in (email, identity["id"]):
        assert secret not in row["raw"]


def lost_answer_dag(dag_env: SignzyEmulator, dag_id: str, email: str) -> Any:
    with make_dag(dag_id) as dag:
        lifecycle(SignzyOperator(task_id="create", method="POST", endpoint=IDENTITIES, json=identity_body(email)))
    return dag


def delete_through_rest_api(path: str, monkeypatch: pytest.MonkeyPatch) -> int:
    """The documented way to resend on purpose, through Airflow's own public REST API app."""
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
    with TestClient(create_app(apps="core")) as client:
        token = client.get("/auth/token").json()["access_token"]
        return client.delete(path, headers={"Authorization": f"Bearer {token}"}).status_code


@STORE
def test_clear_alone_does_not_resend_deleting_the_entry_does(
    dag_env: SignzyEmulator, capfd, monkeypatch: pytest.MonkeyPatch
) -> None:
    import re

    dag_env.faults.add({"path": "/api/v2/patrons/*/identities", "method": "POST", "faults": [{"drop": "after"}]})
    dag = lost_answer_dag(dag_env, "paid_clear", "e@x.in")
    run = run_dag(dag)
    assert str(run.state) == "failed"
    first_output = capfd.readouterr().out
    assert clear_and_rerun(dag, run, "create") == "failed"  # a user's "Clear" of the failed task
    assert dag_env.state.snapshot()["requests"][POSTS] == 1  # not sent again
    output = capfd.readouterr().out
    assert "was sent by try 1 at" in output
    assert CHARGED in output
    # The message gives the one deliberate way to send it again: delete the entry, then clear.
    [path] = set(re.findall(r"DELETE (/api/v2/dags/paid_clear/\S+/state-store/signzy-call:[0-9a-f]+)", first_output))
    assert path in output
    assert delete_through_rest_api(path, monkeypatch) == 204
    assert clear_and_rerun(dag, run, "create") == "success"
    # Sent once more on purpose: the teardown had revoked the run's token, so that send met a 401 (no
    # effect) and went again with a fresh login. Signzy acted on two calls in all.
    assert dag_env.state.snapshot()["identities_created"] == 2


@STORE
def test_a_fixed_body_after_a_clear_is_a_new_call(dag_env: SignzyEmulator, tmp_path) -> None:
    dag_env.faults.add({"path": "/api/v2/patrons/*/identities", "method": "POST", "faults": [{"drop": "after"}]})
    dag = lost_answer_dag(dag_env, "paid_fixed", "typo@x")
    run = run_dag(dag)
    assert str(run.state) == "failed"
    dag.task_dict["create"].json = identity_body("fixed@x.in")  # the user fixed the input, then cleared
    assert clear_and_rerun(dag, run, "create") == "success"
    assert dag_env.state.snapshot()["identities_created"] == 2
    assert sorted(i["email"] for i in dag_env.state.identities.values()) == ["fixed@x.in", "typo@x"]


@STORE
def test_a_try_that_died_mid_call_is_not_sent_again(dag_env: SignzyEmulator, capfd) -> None:
    # A try that ends while its POST is in flight: Airflow's own execution_timeout interrupts the call
    # (the in-process stand-in for a killed worker; make e2e kills real ones with SIGKILL).
    dag_env.faults.add({"path": "/api/v2/patrons/*/identities", "method": "POST", "faults": [{"delay": 5}]})
    with make_dag("paid_try_died") as dag:
        lifecycle(
            SignzyOperator(
                task_id="create",
                method="POST",
                endpoint=IDENTITIES,
                json=identity_body("f@x.in"),
                execution_timeout=dt.timedelta(seconds=2),
            )
        )
    run = run_dag(dag)
    create = task_instance(run, "create")
    assert str(create.state) == "failed"
    # A timeout is retried; the try after the one that sent refused to send (on a loaded machine the first
    # try can time out before it sends, so that is try 2 or 3).
    assert create.try_number in (2, 3)
    assert dag_env.state.snapshot()["requests"][POSTS] == 1  # the later tries sent nothing
    output = capfd.readouterr().out
    assert "that try ended (killed or timed out) before the answer was recorded" in output
    assert CHARGED in output
    [row] = ledger_rows("paid_try_died")
    assert row["value"]["state"] == "sending"
