"""Signzy's products in real DAG runs: SignzyProductOperator and SignzyBatchOperator(product=...) for every
catalog product, and both steps of a document product under the paid-call promise across Airflow retries.

The emulator counts identities and snoops; a "lost answer" is its fault plan dropping the connection
after it acted (the answer never arrives), as in the call ledger's own tests.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from airflow_version import requires_airflow
from dagrun import clear_and_rerun, console_text, run_dag, task_states
from product_inputs import product_kwargs, valid_essentials

from airflow_provider_signzy.emulator import SignzyEmulator
from airflow_provider_signzy.operators.batch import SignzyBatchOperator
from airflow_provider_signzy.operators.product import SignzyProductOperator
from airflow_provider_signzy.operators.signzy import SignzyLoginOperator, SignzyLogoutOperator
from airflow_provider_signzy.privacy import unseal
from airflow_provider_signzy.products import PRODUCTS

pytestmark = pytest.mark.dagrun
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
RETRIES = {"retries": 2, "retry_delay": dt.timedelta(seconds=1)}
STORE = requires_airflow("3.3", why="the call ledger lives in the task state store, new in Airflow 3.3")
CHARGED = "it may have been charged"
PAN = "QWERT4321Y"  # synthetic
IDENTITY_POSTS = "POST /api/v2/patrons/{userId}/identities"
SNOOPS = "POST /api/v2/snoops"


def task_name(product: str) -> str:
    return product.replace(".", "__")


def lifecycle_dag(dag_id: str, build: Any, **default_args: Any) -> Any:
    from airflow.sdk import DAG

    with DAG(dag_id, schedule=None, start_date=START, catchup=False, default_args=default_args) as dag:
        login = SignzyLoginOperator()
        tasks = build()
        login >> tasks >> SignzyLogoutOperator().as_teardown(setups=login)
    return dag


def xcom(run: Any, task_id: str) -> Any:
    ti = next(t for t in run.get_task_instances() if t.task_id == task_id)
    return ti.xcom_pull(task_ids=task_id)


def test_every_product_runs_as_an_operator_with_the_runs_one_login(dag_env: SignzyEmulator) -> None:
    def build() -> list[Any]:
        return [
            SignzyProductOperator(
                task_id=task_name(name),
                product=name,
                essentials=valid_essentials(product),
                **{k: v for k, v in product_kwargs(product).items() if v is not None},
            )
            for name, product in sorted(PRODUCTS.items())
        ]

    run = run_dag(lifecycle_dag("products_all", build))
    assert str(run.state) == "success", task_states(run)
    state = dag_env.state.snapshot()
    assert (state["logins"], state["live_tokens"]) == (1, 0)
    for name, product in PRODUCTS.items():
        stored = xcom(run, task_name(name))
        assert "signzy_sealed" in stored, name
        assert set(stored) - {"signzy_sealed"} <= set(product.clear_fields), name
        result = unseal(stored)
        assert all(f in result for f in product.result_fields if f != "ownerName"), name
    verdict = xcom(run, task_name("pan.verification"))
    assert verdict["verified"] is True  # the verdict stays readable for templates and branches
    assert "name" not in verdict
    assert PAN not in json.dumps(verdict)


def test_every_product_runs_as_a_batch_with_bad_items_marked_invalid(dag_env: SignzyEmulator) -> None:
    def build() -> list[Any]:
        tasks = []
        for name, product in sorted(PRODUCTS.items()):
            images = product_kwargs(product)["images"]
            good = {**valid_essentials(product), **({"images": images} if images else {})}
            overrides = {k: v for k, v in product_kwargs(product).items() if k != "images" and v is not None}
            tasks.append(SignzyBatchOperator(task_id=task_name(name), product=name, items=[good, good], **overrides))
        return tasks

    run = run_dag(lifecycle_dag("products_batch_all", build))
    assert str(run.state) == "success", task_states(run)
    for name, product in PRODUCTS.items():
        results = unseal(xcom(run, task_name(name)))
        assert [r["outcome"] for r in results] == ["succeeded", "succeeded"], (name, results)
        assert all(all(f in r["response"] for f in product.result_fields if f != "ownerName") for r in results)
        assert all("accessToken" not in json.dumps(r["response"]) for r in results)
    identity_products = sum(p.flow == "identity" for p in PRODUCTS.values())
    state = dag_env.state.snapshot()
    assert state["identities_created"] == 2 * identity_products
    assert state["snoops"] == 2 * identity_products
    assert (state["logins"], state["live_tokens"]) == (1, 0)


def test_a_batch_checks_every_item_before_sending_any(dag_env: SignzyEmulator) -> None:
    items = [
        {"number": PAN, "name": "RAVI KUMAR"},
        {"number": "not-a-pan", "name": "RAVI KUMAR"},
        {"name": "NO NUMBER"},
        {"number": "ASDFG9876H", "name": "ANITA MISMATCH"},
    ]

    def build() -> Any:
        return SignzyBatchOperator(task_id="verify", product="pan.verification", items=items)

    run = run_dag(lifecycle_dag("products_batch_invalid", build))
    assert str(run.state) == "success", task_states(run)  # 2 of 4 failed: within max_failed_ratio
    results = unseal(xcom(run, "verify"))
    assert [r["outcome"] for r in results] == ["succeeded", "invalid", "invalid", "succeeded"]
    assert [r["response"]["verified"] if r["ok"] else None for r in results] == [True, None, None, False]
    assert "'number'" in results[1]["error"]
    assert "AAAAA9999A" in results[1]["error"]
    assert "not-a-pan" not in results[1]["error"]
    assert "'number' is missing" in results[2]["error"]
    state = dag_env.state.snapshot()
    assert state["identities_created"] == 2  # the invalid items created nothing
    assert state["snoops"] == 2


def test_bad_essentials_fail_the_task_at_once_without_retries(dag_env: SignzyEmulator, capfd) -> None:
    def build() -> Any:
        return SignzyProductOperator(
            task_id="verify", product="pan.verification", essentials={"number": "QWERT432Y", "name": "R"}
        )

    run = run_dag(lifecycle_dag("products_bad_input", build, **RETRIES))
    verify = next(t for t in run.get_task_instances() if t.task_id == "verify")
    assert str(verify.state) == "failed"
    assert verify.try_number == 1  # no retry: it cannot help
    output = console_text(capfd)
    assert "essentials field 'number' must be a PAN" in output
    assert "QWERT432Y" not in output
    state = dag_env.state.snapshot()
    assert state["identities_created"] == 0
    assert state["requests"].get(IDENTITY_POSTS, 0) == 0


def test_an_unknown_product_fails_when_the_dag_is_parsed() -> None:
    from airflow_provider_signzy.exceptions import SignzyInputError

    with pytest.raises(SignzyInputError, match=r"Did you mean 'pan\.verification'"):
        SignzyProductOperator(task_id="x", product="pan.verificaton", essentials={})
    with pytest.raises(SignzyInputError, match="Unknown Signzy product"):
        SignzyBatchOperator(task_id="y", product="pan.nothing", items=[])


@STORE
def test_a_lost_snoop_answer_is_one_identity_one_snoop_and_no_retry(dag_env: SignzyEmulator, capfd) -> None:
    dag_env.faults.add({"path": "/api/v2/snoops", "method": "POST", "faults": [{"drop": "after"}]})

    def build() -> Any:
        return SignzyProductOperator(
            task_id="verify", product="pan.verification", essentials={"number": PAN, "name": "RAVI KUMAR"}
        )

    run = run_dag(lifecycle_dag("products_lost_snoop", build, **RETRIES))
    verify = next(t for t in run.get_task_instances() if t.task_id == "verify")
    assert str(verify.state) == "failed"
    assert verify.try_number == 1
    state = dag_env.state.snapshot()
    assert state["requests"][IDENTITY_POSTS] == 1
    assert state["requests"][SNOOPS] == 1
    assert CHARGED in console_text(capfd)


@STORE
def test_a_lost_identity_answer_creates_no_second_identity_and_sends_no_snoop(dag_env: SignzyEmulator, capfd) -> None:
    dag_env.faults.add({"path": "/api/v2/patrons/*/identities", "method": "POST", "faults": [{"drop": "after"}]})

    def build() -> Any:
        return SignzyProductOperator(task_id="fetch", product="pan.fetch", essentials={"number": PAN})

    run = run_dag(lifecycle_dag("products_lost_identity", build, **RETRIES))
    fetch = next(t for t in run.get_task_instances() if t.task_id == "fetch")
    assert (str(fetch.state), fetch.try_number) == ("failed", 1)
    state = dag_env.state.snapshot()
    assert state["identities_created"] == 1  # Signzy created it; its answer was lost
    assert state["requests"][IDENTITY_POSTS] == 1
    assert state["requests"].get(SNOOPS, 0) == 0
    assert CHARGED in console_text(capfd)


@STORE
def test_a_clear_after_a_lost_snoop_answer_sends_nothing_again(dag_env: SignzyEmulator, capfd) -> None:
    dag_env.faults.add({"path": "/api/v2/snoops", "method": "POST", "faults": [{"drop": "after"}]})

    def build() -> Any:
        return SignzyProductOperator(
            task_id="verify", product="pan.verification", essentials={"number": PAN, "name": "RAVI KUMAR"}
        )

    dag = lifecycle_dag("products_clear", build, **RETRIES)
    run = run_dag(dag)
    assert clear_and_rerun(dag, run, "verify") == "failed"  # a user's Clear: still not sent blind
    state = dag_env.state.snapshot()
    assert state["requests"][IDENTITY_POSTS] == 1  # the identity was replayed from the ledger
    assert state["requests"][SNOOPS] == 1
    output = console_text(capfd)
    assert "already succeeded in try 1" in output  # the identity step
    assert "was sent by try 1" in output  # the snoop step


@STORE
def test_a_retry_reuses_the_identity_and_sends_a_refused_snoop_again(dag_env: SignzyEmulator) -> None:
    # The first snoop is refused without effect (a 422): the retry must not create a second identity.
    dag_env.faults.add({"path": "/api/v2/snoops", "method": "POST", "faults": [{"status": 422, "code": "INVALID"}]})

    def build() -> Any:
        return SignzyProductOperator(task_id="fetch", product="pan.fetch", essentials={"number": PAN})

    run = run_dag(lifecycle_dag("products_retry_snoop", build, **RETRIES))
    assert str(run.state) == "success", task_states(run)
    fetch = next(t for t in run.get_task_instances() if t.task_id == "fetch")
    assert fetch.try_number == 2
    state = dag_env.state.snapshot()
    assert state["requests"][IDENTITY_POSTS] == 1  # the identity was replayed from the ledger
    assert state["identities_created"] == 1
    assert state["requests"][SNOOPS] == 2
    assert state["snoops"] == 1
    assert unseal(xcom(run, "fetch"))["number"].upper() == PAN


@STORE
def test_a_try_that_died_during_the_snoop_sends_nothing_again(dag_env: SignzyEmulator, capfd) -> None:
    # Airflow's execution_timeout ends the try while its snoop is in flight: the in-process stand-in for a
    # killed worker (make e2e SIGKILLs real ones).
    dag_env.faults.add({"path": "/api/v2/snoops", "method": "POST", "faults": [{"delay": 5}]})

    def build() -> Any:
        return SignzyProductOperator(
            task_id="verify",
            product="pan.verification",
            essentials={"number": PAN, "name": "RAVI KUMAR"},
            execution_timeout=dt.timedelta(seconds=2),
        )

    run = run_dag(lifecycle_dag("products_died", build, **RETRIES))
    verify = next(t for t in run.get_task_instances() if t.task_id == "verify")
    assert str(verify.state) == "failed"
    state = dag_env.state.snapshot()
    assert state["requests"][IDENTITY_POSTS] == 1
    assert state["requests"][SNOOPS] == 1
    assert "before the answer was recorded" in console_text(capfd)


@STORE
def test_a_batch_retry_replays_identities_and_snoops_and_sends_only_the_refused(dag_env: SignzyEmulator) -> None:
    # Item 3's snoop is refused without effect (a 422) and on_item_error="fail" fails the try: the retry
    # replays all six identities and five snoops, and sends that one snoop again.
    items = [{"number": f"ASDFG{1234 + n}H", "name": "RAVI KUMAR"} for n in range(6)]
    dag_env.faults.add(
        {"path": "/api/v2/snoops", "method": "POST", "faults": [None, None, None, {"status": 422, "code": "INVALID"}]}
    )

    def build() -> Any:
        return SignzyBatchOperator(
            task_id="verify", product="pan.verification", items=items, max_concurrency=1, on_item_error="fail"
        )

    run = run_dag(lifecycle_dag("products_batch_retry", build, **RETRIES))
    assert str(run.state) == "success", task_states(run)
    state = dag_env.state.snapshot()
    assert state["requests"][IDENTITY_POSTS] == 6  # never a second identity for an item
    assert state["identities_created"] == 6
    assert state["requests"][SNOOPS] == 7
    assert state["snoops"] == 6
    results = unseal(xcom(run, "verify"))
    assert [r["outcome"] for r in results] == ["replayed"] * 3 + ["succeeded"] + ["replayed"] * 2
    assert all(r["response"]["verified"] is True for r in results)
