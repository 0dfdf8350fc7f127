"""1. Logins and round trips per DAG run (K Signzy calls): this provider's XCom token flow vs. the common
hand-written pattern, HttpOperator with an auth class that logs in for every task."""

from __future__ import annotations

import datetime as dt
import os
import time

from common import PATRON_ID, Row, airflow_home, set_connections

from airflow_provider_signzy.emulator.process import emulator_process

K = 10


def provider_dag():
    from airflow.sdk import DAG

    from airflow_provider_signzy.operators.signzy import SignzyLoginOperator, SignzyLogoutOperator, SignzyOperator

    with DAG("bench_provider", schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)) as dag:
        login = SignzyLoginOperator()
        calls = [
            SignzyOperator(task_id=f"call_{i}", endpoint="/api/v2/patrons/{patron_id}/identities") for i in range(K)
        ]
        login >> calls >> SignzyLogoutOperator().as_teardown(setups=login)
    return dag


def per_task_login_dag():
    import requests
    from airflow.providers.http.operators.http import HttpOperator
    from airflow.sdk import DAG

    class SignzyLoginAuth(requests.auth.AuthBase):
        """What users write by hand: log in with the connection's user and key, send the raw token."""

        def __init__(self, username: str, password: str) -> None:
            base = os.environ["SIGNZY_BENCH_URL"]
            answer = requests.post(
                f"{base}/api/v2/patrons/login", json={"username": username, "password": password}, timeout=30
            )
            self.token = answer.json()["id"]

        def __call__(self, request):
            request.headers["Authorization"] = self.token
            return request

    with DAG("bench_http_per_task", schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)) as dag:
        for i in range(K):
            HttpOperator(
                task_id=f"call_{i}",
                http_conn_id="signzy_http",
                method="GET",
                endpoint=f"/api/v2/patrons/{PATRON_ID}/identities",
                auth_type=SignzyLoginAuth,
            )
    return dag


def run(dag) -> float:
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    bag = DagBag(dag_folder=os.devnull)
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)
    started = time.perf_counter()
    dag_run = dag.test()
    assert str(dag_run.state) == "success", dag_run.state
    return time.perf_counter() - started


def main() -> None:
    airflow_home()
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.utils import db

    db.resetdb()
    DagBundlesManager().sync_bundles_to_db()
    with emulator_process() as emulator:
        os.environ["SIGNZY_BENCH_URL"] = emulator.url
        set_connections(emulator.url)
        results = {}
        dags = {"provider": provider_dag(), "per_task": per_task_login_dag()}
        for dag in dags.values():  # warm-up: the first dag.test() in a process starts Airflow's API
            run(dag)
        for name, dag in dags.items():
            emulator.reset()
            seconds = run(dag)
            state = emulator.state()
            results[name] = (state, seconds)
    ours, theirs = results["provider"][0], results["per_task"][0]
    Row(
        f"logins per run, K={K} calls",
        str(ours["logins"]),
        str(theirs["logins"]),
        f"{ours['logins'] / theirs['logins']:.2f}",
        "1 (the floor)",
        ours["logins"] == 1,
    ).emit()
    Row("logouts per run", str(ours["logouts"]), str(theirs["logouts"]), "-", "1", ours["logouts"] == 1).emit()
    Row(
        "HTTP round trips per run",
        str(ours["total_requests"]),
        str(theirs["total_requests"]),
        f"{ours['total_requests'] / theirs['total_requests']:.2f}",
        f"K + 2 = {K + 2}",
        ours["total_requests"] == K + 2,
    ).emit()
    Row(
        "live tokens after the run",
        str(ours["live_tokens"]),
        str(theirs["live_tokens"]),
        "-",
        "0",
        ours["live_tokens"] == 0,
    ).emit()
    Row(
        "DAG run wall time (dag.test, after a warm-up run)",
        f"{results['provider'][1]:.1f} s",
        f"{results['per_task'][1]:.1f} s",
        f"{results['provider'][1] / results['per_task'][1]:.2f}",
        "-",
        None,
    ).emit()


if __name__ == "__main__":
    main()
