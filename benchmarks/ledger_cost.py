"""5. What the call ledger costs a paid call: the same POSTs in one real task, with the ledger and without.

Inside one TaskFlow task run by ``dag.test()`` (SQLite metadata DB, Airflow's in-process supervisor),
rounds alternate between paid POSTs (ledger on: a read and two task-state-store writes each) and the same
POSTs marked ``idempotent=True`` (no ledger). The store's writes are counted by wrapping its ``set``.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import time

from common import Row, airflow_home, set_connections

from airflow_provider_signzy.emulator.process import emulator_process

ROUNDS, PER_ROUND = 10, 20


def ledger_dag(results: dict[str, list[float]]):
    from airflow.sdk import DAG, get_current_context, task

    from airflow_provider_signzy.hooks.signzy import SignzyHook

    with DAG("bench_ledger", schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)) as dag:

        @task
        def paid_calls() -> None:
            context = get_current_context()
            store = context["task_state_store"]
            writes = []
            real_set = store.set

            def counting_set(key, value, **kwargs):
                writes.append(key)
                return real_set(key, value, **kwargs)

            store.set = counting_set
            with SignzyHook() as hook:
                token = hook.get_token()
                path = f"/api/v2/patrons/{token.user_id}/identities"
                for n in range(ROUNDS):
                    for ledger in (n % 2 == 0, n % 2 == 1):  # alternate which goes first
                        started = time.perf_counter()
                        for i in range(PER_ROUND):
                            body = {"type": "individualPan", "email": f"{n}-{i}-{ledger}@bench.in"}
                            hook.request("POST", path, json=body, idempotent=None if ledger else True)
                        results["with" if ledger else "without"].append((time.perf_counter() - started) / PER_ROUND)
            results["writes"] = [len(writes) / (ROUNDS * PER_ROUND)]

        paid_calls()
    return dag


def main() -> None:
    airflow_home()
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.utils import db

    db.resetdb()
    DagBundlesManager().sync_bundles_to_db()
    with emulator_process() as emulator:
        set_connections(emulator.url)
        results: dict[str, list[float]] = {"with": [], "without": []}
        dag = ledger_dag(results)
        bag = DagBag(dag_folder=os.devnull)
        bag.bag_dag(dag)
        sync_bag_to_db(bag, "dags-folder", None)
        dag_run = dag.test()
        assert str(dag_run.state) == "success", dag_run.state
        state = emulator.state()
    with_ledger = statistics.median(results["with"]) * 1000
    without = statistics.median(results["without"]) * 1000
    writes = results["writes"][0]
    assert state["identities_created"] == 2 * ROUNDS * PER_ROUND
    Row(
        f"paid POST with the call ledger vs without (median of {ROUNDS} rounds x {PER_ROUND}, in a task)",
        f"{with_ledger:.2f} ms",
        f"{without:.2f} ms",
        f"{with_ledger / without:.2f}",
        "-",
        None,
    ).emit()
    Row("task state store writes per paid call", f"{writes:.2f}", "0", "-", "<= 2", writes <= 2).emit()


if __name__ == "__main__":
    main()
