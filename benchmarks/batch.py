"""6. SignzyBatchOperator: throughput, per-item cost against task mapping, and pacing under a rate limit.

All against one emulator process, in real Airflow (dag.test, SQLite), in one run:
- 2,000 paid POSTs at concurrency 8 inside a task (call ledger on) vs. a hand-written
  ThreadPoolExecutor with one requests.Session per thread doing the same POSTs outside Airflow;
- 200 POSTs through the batch operator vs. ``SignzyOperator.partial().expand()`` over the same items:
  time per item from the first calling task's start to the last one's end (the goal), and of the whole
  DAG run (login and logout tasks and dag.test's own work included);
- a batch without a client-side cap against the emulator's rate limit of R calls/s: the rate achieved
  and the share of calls answered 429.
"""

from __future__ import annotations

import datetime as dt
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from common import PATRON_ID, Row, airflow_home, fresh_metadata_db, set_connections
from common import run_dag as run

from airflow_provider_signzy.emulator.process import emulator_process

BIG, CONCURRENCY, ROUNDS = 2000, 8, 5
MAPPED = 200
RATE, RATED_CALLS = 100, 1500
IDENTITIES = "/api/v2/patrons/{patron_id}/identities"


def bodies(n: int, tag: str) -> list[dict]:
    return [{"type": "individualPan", "email": f"{tag}-{i}@bench.in", "images": []} for i in range(n)]


def timed_batch_dag(dag_id: str, items: list[dict], seconds: dict[str, float], **batch_kwargs):
    """A DAG whose one task runs a SignzyBatch and records how long the batch itself took."""
    from airflow.sdk import DAG, task

    from airflow_provider_signzy.batch import SignzyBatch
    from airflow_provider_signzy.hooks.signzy import SignzyHook

    with DAG(dag_id, schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)) as dag:

        @task
        def batch() -> int:
            with SignzyHook() as hook:
                hook.get_token()  # the login is not part of the batch
                job = SignzyBatch(hook, endpoint=IDENTITIES, **batch_kwargs)
                started = time.perf_counter()
                results = job.run(items)
                seconds[dag_id] = time.perf_counter() - started
            assert all(r["ok"] for r in results), [r for r in results if not r["ok"]][:3]
            return len(results)

        batch()
    return dag


def hand_written_pool(url: str, token: str, items: list[dict]) -> float:
    """What users write by hand: a thread pool, a requests.Session per thread, the raw token header."""
    import requests

    local = threading.local()
    path = f"{url}/api/v2/patrons/{PATRON_ID}/identities"

    def post(body: dict) -> int:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
            session.headers["Authorization"] = token
        answer = session.post(path, json=body, timeout=30)
        answer.raise_for_status()
        return answer.status_code

    started = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(post, items))
    return time.perf_counter() - started


def mapped_dag(items: list[dict]):
    from airflow.sdk import DAG

    from airflow_provider_signzy.operators.signzy import SignzyLoginOperator, SignzyLogoutOperator, SignzyOperator

    with DAG("bench_mapped", schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)) as dag:
        login = SignzyLoginOperator()
        calls = SignzyOperator.partial(task_id="verify", method="POST", endpoint=IDENTITIES).expand(json=items)
        login >> calls >> SignzyLogoutOperator().as_teardown(setups=login)
    return dag


def batch_operator_dag(items: list[dict]):
    from airflow.sdk import DAG

    from airflow_provider_signzy.operators.batch import SignzyBatchOperator
    from airflow_provider_signzy.operators.signzy import SignzyLoginOperator, SignzyLogoutOperator

    with DAG("bench_batch_operator", schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)) as dag:
        login = SignzyLoginOperator()
        batch = SignzyBatchOperator(task_id="verify", endpoint=IDENTITIES, items=items, max_concurrency=CONCURRENCY)
        login >> batch >> SignzyLogoutOperator().as_teardown(setups=login)
    return dag


def work_span(dag_run) -> float:
    """Seconds from the first calling task's start to the last one's end (the task ``verify``)."""
    tis = [ti for ti in dag_run.get_task_instances() if ti.task_id == "verify"]
    return (max(ti.end_date for ti in tis) - min(ti.start_date for ti in tis)).total_seconds()


def main() -> None:
    airflow_home()
    fresh_metadata_db()
    seconds: dict[str, float] = {}
    with emulator_process() as emulator:
        set_connections(emulator.url)
        from airflow_provider_signzy.hooks.signzy import SignzyHook

        # 1. Throughput: the batch in a task (ledger on) vs a hand-written pool, same POSTs, in rounds whose
        # order alternates; the ratio is the median of the rounds' ratios (this machine is shared and noisy).
        run(timed_batch_dag("bench_warm_up", bodies(50, "warm"), seconds, max_concurrency=CONCURRENCY))
        ours, theirs, ratios = [], [], []
        with SignzyHook() as hook:
            token = hook.get_token()
            hand_written_pool(emulator.url, token.id, bodies(50, "warm-pool"))
            for n in range(ROUNDS):
                dag = timed_batch_dag(
                    f"bench_batch_{n}", bodies(BIG, f"batch{n}"), seconds, max_concurrency=CONCURRENCY
                )
                if n % 2:
                    run(dag)
                pool_rate = BIG / hand_written_pool(emulator.url, token.id, bodies(BIG, f"pool{n}"))
                if not n % 2:
                    run(dag)
                ours.append(BIG / seconds[f"bench_batch_{n}"])
                theirs.append(pool_rate)
                ratios.append(ours[-1] / pool_rate)
        ratio = statistics.median(ratios)
        Row(
            f"calls/s, {BIG} paid POSTs at concurrency {CONCURRENCY}: batch in a task (ledger on) vs hand-written "
            f"pool (median of {ROUNDS} rounds)",
            f"{statistics.median(ours):.0f}/s",
            f"{statistics.median(theirs):.0f}/s",
            f"{ratio:.2f}",
            ">= 0.90",
            ratio >= 0.90,
        ).emit()

        # 2. Per item: the batch operator vs task mapping over the same items, in whole DAG runs.
        emulator.reset()
        spans, walls = {}, {}
        for name, dag in (
            ("batch", batch_operator_dag(bodies(MAPPED, "op"))),
            ("mapped", mapped_dag(bodies(MAPPED, "m"))),
        ):
            started = time.perf_counter()
            dag_run = run(dag)
            walls[name] = (time.perf_counter() - started) / MAPPED
            spans[name] = work_span(dag_run) / MAPPED
        posts = emulator.state()["requests"].get("POST /api/v2/patrons/{userId}/identities", 0)
        assert posts == 2 * MAPPED, posts
        Row(
            f"time per item of the calling task(s), {MAPPED} POSTs: batch operator vs SignzyOperator.partial().expand",
            f"{spans['batch'] * 1000:.1f} ms",
            f"{spans['mapped'] * 1000:.0f} ms",
            f"{spans['mapped'] / spans['batch']:.0f}x faster",
            ">= 20x",
            spans["mapped"] / spans["batch"] >= 20,
        ).emit()
        Row(
            f"whole DAG run per item (login, calls, logout; dag.test), {MAPPED} POSTs: the same two",
            f"{walls['batch'] * 1000:.1f} ms",
            f"{walls['mapped'] * 1000:.0f} ms",
            f"{walls['mapped'] / walls['batch']:.0f}x faster",
            "-",
            None,
        ).emit()

        # 3. Pacing under the emulator's rate limit, no client-side cap.
        emulator.reset()
        emulator.rate_limit(RATE)
        run(timed_batch_dag("bench_rate_limited", bodies(RATED_CALLS, "rl"), seconds, max_concurrency=CONCURRENCY))
        state = emulator.state()
        achieved = RATED_CALLS / seconds["bench_rate_limited"]
        limited = state["rate_limited"] / state["requests"]["POST /api/v2/patrons/{userId}/identities"]
        Row(
            f"rate achieved under the emulator's limit of {RATE}/s ({RATED_CALLS} POSTs, no client cap)",
            f"{achieved:.1f}/s",
            f"limit {RATE}/s",
            f"{achieved / RATE:.2f}",
            ">= 0.90",
            achieved / RATE >= 0.90,
        ).emit()
        Row(
            "share of those calls answered 429",
            f"{limited:.1%}",
            f"{state['rate_limited']} of {state['total_requests']}",
            "-",
            "<= 5%",
            limited <= 0.05,
        ).emit()


if __name__ == "__main__":
    main()
