"""Paid calls under the ledger's own faults (issue 16), in real DAG runs against the emulator.

Each test names the case of the issue it reproduces. Where a test makes the task state store fail, it
wraps the task's *real* store (Airflow's accessor, writing to the metadata DB) and says so; nothing else
is mocked. Under ``dag.test()`` a retry runs inside the same invocation.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from airflow_version import airflow_at_least, requires_airflow, requires_airflow_below
from dagrun import console_text, run_dag, task_states
from outage import OutageProxy

from airflow_provider_signzy.emulator import SignzyEmulator
from airflow_provider_signzy.operators.batch import SignzyBatchOperator
from airflow_provider_signzy.operators.signzy import SignzyLoginOperator, SignzyLogoutOperator, SignzyOperator
from airflow_provider_signzy.privacy import unseal

pytestmark = pytest.mark.dagrun
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
IDENTITIES = "/api/v2/patrons/{patron_id}/identities"
ANY_IDENTITIES = "/api/v2/patrons/*/identities"
LOGIN = "/api/v2/patrons/login"
POSTS = "POST /api/v2/patrons/{userId}/identities"
CHARGED = "may have been charged"
STORE = requires_airflow("3.3", why="the call ledger lives in the task state store, new in Airflow 3.3")
#: Airflow's default [state_store] max_value_storage_bytes: the REST API refuses bigger values.
STORE_LIMIT = 65535


def make_dag(dag_id: str, retries: int = 1) -> Any:
    from airflow.sdk import DAG

    default_args = {"retries": retries, "retry_delay": dt.timedelta(seconds=1)}
    return DAG(dag_id, schedule=None, start_date=START, catchup=False, default_args=default_args)


def bodies(n: int, prefix: str) -> list[dict[str, Any]]:
    return [{"type": "individualPan", "email": f"{prefix}{i}@kyc.in", "images": []} for i in range(n)]


def emails_created(emulator: SignzyEmulator) -> Counter[str]:
    return Counter(i["email"] for i in emulator.state.identities.values())


def the_task(run: Any, task_id: str) -> Any:
    return next(ti for ti in run.get_task_instances() if ti.task_id == task_id)


def first_try_only(marker: Any) -> bool:
    """True the first time it is called for ``marker`` (a path): a later step that fails once."""
    if marker.exists():
        return False
    marker.write_text("x")
    return True


def store_rows(dag_id: str) -> list[tuple[str, str]]:
    from airflow.models.task_state_store import TaskStateStoreModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(select(TaskStateStoreModel).where(TaskStateStoreModel.dag_id == dag_id)).all()
        return [(r.key, r.value) for r in rows]


class WrappedStore:
    """The task's real state store (Airflow's accessor, backed by the metadata DB), wrapped so that the
    ``set`` calls ``fail(key, value, n)`` picks raise instead of writing (``n``: how many times that key
    was set before through this wrapper's process)."""

    seen: Counter[str] = Counter()

    def __init__(self, real: Any, fail: Callable[[str, Any, int], str | None]) -> None:
        self.real = real
        self.fail = fail

    def get(self, key: str, default: Any = None) -> Any:
        return self.real.get(key, default)

    def set(self, key: str, value: Any, **kwargs: Any) -> None:
        why = self.fail(key, value, WrappedStore.seen[key])
        WrappedStore.seen[key] += 1
        if why:
            raise RuntimeError(f"the task state store refused the write ({why}; injected by the test)")
        self.real.set(key, value, **kwargs)

    def delete(self, key: str) -> None:
        self.real.delete(key)


def wrap_the_real_store(monkeypatch: pytest.MonkeyPatch, fail: Callable[[str, Any, int], str | None]) -> None:
    """Every ledger opened in this test's tasks writes through :class:`WrappedStore` around the real store."""
    from airflow_provider_signzy import ledger

    real_current = ledger.TaskScope.current.__func__  # type: ignore[attr-defined]
    WrappedStore.seen = Counter()

    def current(cls: Any) -> Any:
        scope = real_current(cls)
        return None if scope is None else dataclasses.replace(scope, store=WrappedStore(scope.store, fail))

    monkeypatch.setattr(ledger.TaskScope, "current", classmethod(current))


def over_the_limit(key: str, value: Any, n: int) -> str | None:
    """A store that enforces [state_store] max_value_storage_bytes, as the REST API does (3.3.2's worker
    path only warns, and writes)."""
    size = len(json.dumps(value))
    return f"value of {size} bytes exceeds max_value_storage_bytes ({STORE_LIMIT})" if size > STORE_LIMIT else None


def is_success_record(value: Any) -> bool:
    return isinstance(value, dict) and value.get("state") == "succeeded"


# -- case 1: two batches on one endpoint in one task ---------------------------------------------------


@STORE
def test_chunked_batches_in_one_task_pay_once_across_a_retry(dag_env: SignzyEmulator, tmp_path) -> None:
    """Case 1: a TaskFlow task sends 12 items in two chunks of 6, then a later step fails once. Before:
    the chunks shared ledger keys, so the retry sent the first chunk again (18 POSTs, task green)."""
    from airflow.sdk import task

    from airflow_provider_signzy.batch import SignzyBatch
    from airflow_provider_signzy.hooks.signzy import SignzyHook

    items = bodies(12, "chunk")
    with make_dag("faults_chunks") as dag:

        @task
        def verify_in_chunks() -> list[str]:
            outcomes = []
            with SignzyHook() as hook:
                for start in (0, 6):
                    results = SignzyBatch(hook, endpoint=IDENTITIES, max_concurrency=2).run(items[start : start + 6])
                    outcomes += [r["outcome"] for r in results]
            if first_try_only(tmp_path / "later-step"):
                raise RuntimeError("a later step of the task failed (first try only)")
            return outcomes

        verify_in_chunks()
    run = run_dag(dag)
    assert str(run.state) == "success", task_states(run)
    assert the_task(run, "verify_in_chunks").xcom_pull(task_ids="verify_in_chunks") == ["replayed"] * 12
    assert dag_env.state.snapshot()["requests"][POSTS] == 12
    assert emails_created(dag_env) == Counter(i["email"] for i in items)


@STORE
def test_a_ledger_key_keeps_batches_apart_whatever_their_order(dag_env: SignzyEmulator, tmp_path) -> None:
    """Case 1 (``ledger_key``): the retry runs the two chunks in the other order; named scopes still match."""
    from airflow.sdk import task

    from airflow_provider_signzy.batch import SignzyBatch
    from airflow_provider_signzy.hooks.signzy import SignzyHook

    chunks = {"north": bodies(4, "north"), "south": bodies(4, "south")}
    with make_dag("faults_ledger_key") as dag:

        @task
        def verify_regions() -> dict[str, list[str]]:
            first = first_try_only(tmp_path / "first")
            order = ["north", "south"] if first else ["south", "north"]
            with SignzyHook() as hook:
                outcomes = {
                    name: [
                        r["outcome"] for r in SignzyBatch(hook, endpoint=IDENTITIES, ledger_key=name).run(chunks[name])
                    ]
                    for name in order
                }
            if first:
                raise RuntimeError("a later step failed (first try only)")
            return outcomes

        verify_regions()
    run = run_dag(dag)
    assert str(run.state) == "success", task_states(run)
    assert the_task(run, "verify_regions").xcom_pull(task_ids="verify_regions") == {
        "north": ["replayed"] * 4,
        "south": ["replayed"] * 4,
    }
    assert dag_env.state.snapshot()["requests"][POSTS] == 8


@STORE
def test_a_batch_call_key_names_items_whose_bodies_change_between_tries(dag_env: SignzyEmulator, tmp_path) -> None:
    """Case 6 (the batch has no ``call_key``): each body carries the time it was built, so it differs on the
    retry; ``call_key="email"`` names each item by that field, and the retry replays instead of paying again."""
    from airflow.sdk import task

    from airflow_provider_signzy.batch import SignzyBatch
    from airflow_provider_signzy.hooks.signzy import SignzyHook

    with make_dag("faults_item_call_key") as dag:

        @task
        def verify_stamped() -> list[str]:
            items = [{**b, "requestedAt": time.time_ns()} for b in bodies(5, "stamped")]
            with SignzyHook() as hook:
                results = SignzyBatch(hook, endpoint=IDENTITIES, call_key="email").run(items)
            if first_try_only(tmp_path / "first"):
                raise RuntimeError("a later step failed (first try only)")
            return [r["outcome"] for r in results]

        verify_stamped()
    run = run_dag(dag)
    assert str(run.state) == "success", task_states(run)
    assert the_task(run, "verify_stamped").xcom_pull(task_ids="verify_stamped") == ["replayed"] * 5
    assert dag_env.state.snapshot()["requests"][POSTS] == 5


# -- case 2: a login that fails inside the ledger window -----------------------------------------------


def test_a_login_that_fails_before_a_paid_call_is_retried_not_reported_as_charged(
    dag_env: SignzyEmulator, make_conn: Callable[..., str], tmp_path
) -> None:
    """Case 2 (the first login): the task's own login meets 503s until its retries run out. Nothing was
    sent, so Airflow's retry sends the call once. Before: "may have been charged", failed without retries."""
    from airflow.sdk import task

    from airflow_provider_signzy.hooks.signzy import SignzyHook

    make_conn(max_attempts=2)
    dag_env.faults.add({"path": LOGIN, "method": "POST", "faults": [{"status": 503}, {"status": 503}]})
    with make_dag("faults_login_first") as dag:

        @task
        def verify() -> str:
            with SignzyHook() as hook:
                answer = hook.request("POST", "/api/v2/patrons/patron-demo-0001/identities", json=bodies(1, "l")[0])
            return str(answer.json()["id"])

        verify()
    run = run_dag(dag)
    assert str(run.state) == "success", task_states(run)
    assert the_task(run, "verify").try_number == 2
    assert dag_env.state.snapshot()["requests"][POSTS] == 1
    assert dag_env.state.snapshot()["identities_created"] == 1


def test_a_relogin_that_fails_after_a_401_leaves_the_call_not_acted(
    dag_env: SignzyEmulator, make_conn: Callable[..., str], capfd
) -> None:
    """Case 2 (the re-login): the paid POST is refused with 401 (Signzy did not act), and the re-login
    after it meets 503s. Before: failed at once, "may have been charged", and every clear refused to send
    it. Now: the entry says not acted, Airflow's retry sends it once."""
    make_conn(max_attempts=2)
    dag_env.faults.add({"path": ANY_IDENTITIES, "method": "POST", "faults": [{"status": 401, "code": "INVALID_TOKEN"}]})
    # The login task's login goes through; the re-login after the 401 does not.
    dag_env.faults.add({"path": LOGIN, "method": "POST", "faults": [None, {"status": 503}, {"status": 503}]})
    with make_dag("faults_relogin") as dag:
        login = SignzyLoginOperator()
        create = SignzyOperator(task_id="create", method="POST", endpoint=IDENTITIES, json=bodies(1, "r")[0])
        login >> create >> SignzyLogoutOperator().as_teardown(setups=login)
    run = run_dag(dag)
    assert str(run.state) == "success", task_states(run)
    assert the_task(run, "create").try_number == 2
    state = dag_env.state.snapshot()
    assert state["requests"][POSTS] == 2  # the 401, then the one that was acted on
    assert state["identities_created"] == 1
    assert CHARGED not in console_text(capfd)


def test_a_batch_item_whose_relogin_fails_is_refused_not_unknown(
    dag_env: SignzyEmulator, make_conn: Callable[..., str]
) -> None:
    """Case 2 in a batch: item 0's POST gets a 401, the re-login after it meets 503s. Before: the item was
    ``unknown`` (never sent again); now ``refused`` (Signzy did not act), so a retry may send it."""
    make_conn(max_attempts=2)
    dag_env.faults.add({"path": ANY_IDENTITIES, "method": "POST", "faults": [{"status": 401, "code": "INVALID_TOKEN"}]})
    dag_env.faults.add({"path": LOGIN, "method": "POST", "faults": [None, {"status": 503}, {"status": 503}]})
    with make_dag("faults_batch_relogin", retries=0) as dag:
        login = SignzyLoginOperator()
        batch = SignzyBatchOperator(task_id="verify", endpoint=IDENTITIES, items=bodies(3, "b"), max_concurrency=1)
        login >> batch >> SignzyLogoutOperator().as_teardown(setups=login)
    run = run_dag(dag)
    results = unseal(the_task(run, "verify").xcom_pull(task_ids="verify"))
    assert [r["outcome"] for r in results] == ["refused", "succeeded", "succeeded"]
    assert dag_env.state.snapshot()["identities_created"] == 2


# -- case 3: the outcome write -------------------------------------------------------------------------


@STORE
def test_an_outcome_write_that_keeps_failing_returns_the_answer_anyway(
    dag_env: SignzyEmulator, monkeypatch: pytest.MonkeyPatch, capfd
) -> None:
    """Case 3: every write of the success record fails (the real store, wrapped to raise on them). Before:
    the answer in hand was dropped, the task failed, and its retry said the try was "killed or timed out".
    Now the task gets its answer, and the log says, without the answer, that the ledger could not record it."""
    wrap_the_real_store(monkeypatch, lambda key, value, n: "API server blip" if is_success_record(value) else None)
    with make_dag("faults_outcome_lost") as dag:
        login = SignzyLoginOperator()
        create = SignzyOperator(
            task_id="create", method="POST", endpoint=IDENTITIES, json=bodies(1, "o")[0], result_privacy="plain"
        )
        login >> create >> SignzyLogoutOperator().as_teardown(setups=login)
    run = run_dag(dag)
    assert str(run.state) == "success", task_states(run)
    create_ti = the_task(run, "create")
    assert create_ti.try_number == 1
    [identity] = dag_env.state.identities.values()
    assert create_ti.xcom_pull(task_ids="create")["id"] == identity["id"]
    output = console_text(capfd)
    assert "could not record" in output
    assert identity["id"] not in output.replace(create_ti.xcom_pull(task_ids="create")["id"], "", 0)
    assert "o0@kyc.in" not in output


@STORE
def test_an_outcome_write_that_fails_once_is_retried_and_replayed_later(
    dag_env: SignzyEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    """Case 3: the first write of the success record fails once (the real store, wrapped); the ledger
    retries it, so a later try replays the answer. Before: the answer was lost on the first failure."""
    wrap_the_real_store(monkeypatch, lambda key, value, n: "blip" if is_success_record(value) and n <= 1 else None)
    from airflow.sdk import task

    from airflow_provider_signzy.hooks.signzy import SignzyHook

    with make_dag("faults_outcome_retried") as dag:

        @task
        def verify() -> str:
            with SignzyHook() as hook:
                answer = hook.request("POST", "/api/v2/patrons/patron-demo-0001/identities", json=bodies(1, "t")[0])
            if first_try_only(tmp_path / "first"):
                raise RuntimeError("a later step failed (first try only)")
            return str(answer.json()["id"])

        verify()
    run = run_dag(dag)
    assert str(run.state) == "success", task_states(run)
    assert dag_env.state.snapshot()["requests"][POSTS] == 1
    [identity] = dag_env.state.identities.values()
    assert the_task(run, "verify").xcom_pull(task_ids="verify") == identity["id"]


@STORE
def test_an_answer_of_100_kb_is_kept_within_the_store_limit_and_replayed(
    dag_env: SignzyEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    """Case 3: a 100 KB answer (the store wrapped to enforce max_value_storage_bytes as the REST API does).
    Before: single-call answers were stored uncompressed in one value, over the limit, and lost."""
    wrap_the_real_store(monkeypatch, over_the_limit)
    big = os.urandom(50_000).hex()  # 100 KB that compresses badly, as scans do
    from airflow.sdk import task

    from airflow_provider_signzy.hooks.signzy import SignzyHook

    with make_dag("faults_big_answer") as dag:

        @task
        def verify() -> int:
            body = {**bodies(1, "big")[0], "images": [big]}
            with SignzyHook() as hook:
                answer = hook.request("POST", "/api/v2/patrons/patron-demo-0001/identities", json=body)
            if first_try_only(tmp_path / "first"):
                raise RuntimeError("a later step failed (first try only)")
            return len(answer.json()["images"][0])

        verify()
    run = run_dag(dag)
    assert str(run.state) == "success", task_states(run)
    assert the_task(run, "verify").xcom_pull(task_ids="verify") == len(big)
    assert dag_env.state.snapshot()["requests"][POSTS] == 1
    rows = store_rows("faults_big_answer")
    assert len(rows) > 1  # split into parts
    assert all(len(value) <= STORE_LIMIT for _, value in rows)
    assert not any(big[:64] in value for _, value in rows)


@STORE
def test_a_batch_of_large_answers_keeps_every_item(dag_env: SignzyEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """Case 3 (batch): answers of 60 KB each. Before: the adaptive window shrank to 0 items and the rest of
    the batch was never sent nor reported (``KeyError: 'ok'`` in the operator); window records were not
    size-checked. The store is wrapped to enforce max_value_storage_bytes as the REST API does."""
    wrap_the_real_store(monkeypatch, over_the_limit)
    items = [{**b, "images": [os.urandom(30_000).hex()]} for b in bodies(40, "large")]
    run = run_dag(_batch_dag("faults_batch_large", items))
    assert str(run.state) == "success", task_states(run)
    results = unseal(the_task(run, "verify").xcom_pull(task_ids="verify"))
    assert [r["outcome"] for r in results] == ["succeeded"] * 40
    assert all(len(value) <= STORE_LIMIT for _, value in store_rows("faults_batch_large"))


def _batch_dag(dag_id: str, items: Any, retries: int = 0, **kwargs: Any) -> Any:
    with make_dag(dag_id, retries=retries) as dag:
        login = SignzyLoginOperator()
        batch = SignzyBatchOperator(task_id="verify", endpoint=IDENTITIES, items=items, **kwargs)
        login >> batch >> SignzyLogoutOperator().as_teardown(setups=login)
    return dag


@STORE
def test_a_batch_window_outcome_write_that_fails_keeps_the_answers(
    dag_env: SignzyEmulator, monkeypatch: pytest.MonkeyPatch, capfd
) -> None:
    """Case 3 (batch): every window's outcome write fails (the real store, wrapped to raise on a window key's
    second write). Before: the batch raised and its answers were lost; now the task gets every answer and
    the log says the ledger could not record them."""
    wrap_the_real_store(
        monkeypatch, lambda key, value, n: "blip" if key.startswith("signzy-batch:") and n >= 1 else None
    )
    run = run_dag(_batch_dag("faults_window_lost", bodies(10, "w"), ledger_window=5))
    assert str(run.state) == "success", task_states(run)
    results = unseal(the_task(run, "verify").xcom_pull(task_ids="verify"))
    assert [r["outcome"] for r in results] == ["succeeded"] * 10
    assert all(r["response"]["email"] == f"w{i}@kyc.in" for i, r in enumerate(results))
    assert "could not record" in console_text(capfd)


# -- case 4: before 3.3, an interrupted POST batch -----------------------------------------------------


@requires_airflow_below("3.3", why="with a task state store an interrupted batch resumes; without one it must not")
def test_an_interrupted_post_batch_without_a_ledger_fails_without_retries_naming_what_was_sent(
    dag_env: SignzyEmulator, capfd
) -> None:
    """Case 4: Airflow's execution_timeout interrupts the batch mid-way, retries=2, no task state store.
    Before: the retry sent every item again (items created twice). Now the task fails without retries,
    and the message says how many items were sent and which."""
    dag_env.faults.add({"path": ANY_IDENTITIES, "method": "POST", "every": 1, "fault": {"delay": 0.05}})
    dag = _batch_dag("faults_interrupted_old", bodies(80, "i"), retries=2, max_concurrency=2)
    dag.task_dict["verify"].execution_timeout = dt.timedelta(seconds=1)
    run = run_dag(dag)
    verify = the_task(run, "verify")
    assert (str(verify.state), verify.try_number) == ("failed", 1)
    created = emails_created(dag_env)
    assert 0 < len(created) < 80
    assert max(created.values()) == 1
    output = console_text(capfd)
    assert f"{len(created)} of 80 items were sent" in output
    assert "does not retry" in output


# -- case 5: Signzy down mid-batch ---------------------------------------------------------------------


def _stop_after(emulator: SignzyEmulator, proxy: OutageProxy, posts: int, back_after: float | None) -> threading.Thread:
    def watch() -> None:
        while emulator.state.snapshot()["requests"].get(POSTS, 0) < posts:
            time.sleep(0.005)
        proxy.stop()
        if back_after is not None:
            time.sleep(back_after)
            proxy.start()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_a_dead_signzy_stops_the_batch_within_seconds_and_fails_the_task(
    dag_env: SignzyEmulator, make_conn: Callable[..., str], capfd
) -> None:
    """Case 5: Signzy stops answering (connections refused) after 20 of 100 POSTs. Before: every remaining
    item was tried with full retries, the batch reported "80 of 100 items failed ... the task succeeds" and
    the run was green. Now the circuit breaker stops it, the items not sent are refused, the task fails."""
    with OutageProxy(dag_env.url) as proxy:
        make_conn(url=proxy.url, max_attempts=3, backoff_initial=0.2, backoff_max=1)
        _stop_after(dag_env, proxy, 20, back_after=None)
        started = time.monotonic()
        run = run_dag(_batch_dag("faults_dead_signzy", bodies(100, "d"), max_concurrency=4))
        elapsed = time.monotonic() - started
    verify = the_task(run, "verify")
    assert str(verify.state) == "failed"
    output = console_text(capfd)
    assert "unreachable" in output
    assert output.count("retrying in") < 40  # not 80 items x 2 retries each
    assert elapsed < 60
    assert max(emails_created(dag_env).values()) == 1


@STORE
def test_after_signzy_returns_the_retry_sends_each_item_once(
    dag_env: SignzyEmulator, make_conn: Callable[..., str]
) -> None:
    """Case 5, then Signzy comes back: the retry sends the items not sent, replays the rest, and no item is
    created twice."""
    with OutageProxy(dag_env.url) as proxy:
        make_conn(url=proxy.url, max_attempts=3, backoff_initial=0.2, backoff_max=1)
        _stop_after(dag_env, proxy, 20, back_after=1.0)
        run = run_dag(_batch_dag("faults_signzy_back", bodies(100, "back"), retries=2, max_concurrency=4))
    assert str(the_task(run, "verify").state) == "success", task_states(run)
    results = unseal(the_task(run, "verify").xcom_pull(task_ids="verify"))
    outcomes = Counter(r["outcome"] for r in results)
    assert outcomes["replayed"] >= 16
    assert set(outcomes) <= {"replayed", "succeeded", "unknown"}
    created = emails_created(dag_env)
    assert max(created.values()) == 1  # no item sent twice
    assert len(created) >= 100 - outcomes["unknown"]


def test_a_batch_with_most_items_failed_fails_its_task_under_continue(dag_env: SignzyEmulator) -> None:
    """Case 5 (``max_failed_ratio``, default 0.5): 6 of 10 items refused under on_item_error="continue".
    Before: the task succeeded."""
    refused = {"status": 422, "code": "INVALID"}
    dag_env.faults.add({"path": ANY_IDENTITIES, "method": "POST", "faults": [refused] * 6})
    run = run_dag(_batch_dag("faults_most_failed", bodies(10, "m"), max_concurrency=1))
    assert str(the_task(run, "verify").state) == "failed"


def test_max_failed_items_fails_the_task_under_continue(dag_env: SignzyEmulator) -> None:
    """Case 5 (``max_failed_items``): 2 of 10 items refused, at most 1 allowed."""
    refused = {"status": 422, "code": "INVALID"}
    dag_env.faults.add({"path": ANY_IDENTITIES, "method": "POST", "faults": [refused] * 2})
    run = run_dag(_batch_dag("faults_max_items", bodies(10, "x"), max_concurrency=1, max_failed_items=1))
    assert str(the_task(run, "verify").state) == "failed"


# -- case 6: smaller ones --------------------------------------------------------------------------------


@STORE
def test_a_replayed_batch_item_whose_answer_was_not_kept_is_not_ok(
    dag_env: SignzyEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    """Case 6: without a Fernet key the ledger keeps no answers. A replayed item then reported ``ok=True,
    response=None`` while the single call refuses; now it is not ok, and says why."""
    from airflow.sdk import task

    from airflow_provider_signzy.batch import SignzyBatch
    from airflow_provider_signzy.hooks.signzy import SignzyHook
    from airflow_provider_signzy.utils.fernet_cipher import SignzyCipher

    monkeypatch.setattr(
        SignzyCipher, "for_connection", classmethod(lambda cls, extra, conn_id: cls(None, key_source="none"))
    )
    with make_dag("faults_no_answer_kept") as dag:

        @task
        def verify() -> list[list[Any]]:
            with SignzyHook() as hook:
                results = SignzyBatch(hook, endpoint=IDENTITIES).run(bodies(3, "nokey"))
            if first_try_only(tmp_path / "first"):
                raise RuntimeError("a later step failed (first try only)")
            return [[r["outcome"], r["ok"], r["error"]] for r in results]

        verify()
    run = run_dag(dag)
    assert str(run.state) == "success", task_states(run)
    results = the_task(run, "verify").xcom_pull(task_ids="verify")
    assert [(outcome, ok) for outcome, ok, _ in results] == [("replayed", False)] * 3
    assert all("not kept" in error for _, _, error in results)
    assert dag_env.state.snapshot()["requests"][POSTS] == 3


def test_a_task_with_paid_calls_logs_one_summary_line_and_emits_metrics(
    dag_env: SignzyEmulator, monkeypatch: pytest.MonkeyPatch, capfd
) -> None:
    """Case 8 (accounting): one summary line per task, and Airflow metrics through Airflow's stats API,
    with no ids or personal data in names or tags."""
    from airflow.providers.common.compat.sdk import Stats

    emitted: list[tuple[str, int, dict[str, Any]]] = []

    def incr(stat: str, count: int = 1, rate: Any = None, *, tags: dict[str, Any] | None = None) -> None:
        emitted.append((stat, count, dict(tags or {})))

    monkeypatch.setattr(Stats, "incr", incr, raising=False)
    lost = {"drop": "after"}
    dag_env.faults.add({"path": ANY_IDENTITIES, "method": "POST", "faults": [None, lost, {"status": 422}]})
    run = run_dag(_batch_dag("faults_summary", bodies(5, "s"), max_concurrency=1))
    assert str(run.state) == "success", task_states(run)
    output = console_text(capfd)
    summaries = output.split("Signzy paid calls")[1:]
    # One per task: as many as the hook's one login line (the same logger), since Airflow 3.0's dag.test()
    # prints each task log line twice on the console (its task handler and the root logger's).
    assert len(summaries) == output.count("Logged in to Signzy as patron") >= 1, summaries
    assert all("sent 3, replayed 0, refused 1, unknown 1" in line for line in summaries)
    calls = Counter()
    for stat, count, tags in emitted:
        assert not any(s in json.dumps(tags) for s in ("patron-demo-0001", "@kyc.in"))
        if stat == "signzy.calls":
            calls[tags["outcome"]] += count
            assert tags["endpoint"] == IDENTITIES
            assert tags["method"] == "POST"
    assert calls == {"succeeded": 3, "unknown": 1, "refused": 1}
    assert sum(c for s, c, _ in emitted if s == "signzy.paid_calls") == 4
    if airflow_at_least("3.3"):
        assert store_rows("faults_summary")
