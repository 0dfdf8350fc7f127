"""8. Products: what calling Signzy's products by name costs over writing the two POSTs by hand.

Against one emulator process (latency 0), in one run:
- one ``pan.verification`` through ``SignzyHook.run_product`` (inputs checked, identity, snoop) vs the same
  two POSTs written by hand with one ``requests.Session``, in interleaved rounds (median of per-round ratios);
- 2,000 ``pan.verification`` items through ``run_product_batch`` inside a task (dag.test, call ledger on
  for both passes) vs a hand-written ThreadPoolExecutor doing both steps per item, at concurrency 8.
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

CALLS, ROUNDS = 400, 10
BIG, CONCURRENCY, BATCH_ROUNDS = 2000, 8, 3
IDENTITIES = f"/api/v2/patrons/{PATRON_ID}/identities"


def essentials(n: int, tag: int) -> list[dict]:
    return [{"number": f"ABCDE{1000 + (i + tag * 7) % 9000:04d}F", "name": "RAVI KUMAR"} for i in range(n)]


def by_hand(session, url: str, item: dict) -> dict:
    """The two calls a user writes from Signzy's docs: the identity (patron token), then the snoop."""
    identity = session.post(
        url + IDENTITIES, json={"type": "individualPan", "email": "", "callbackUrl": "", "images": []}, timeout=30
    )
    identity.raise_for_status()
    created = identity.json()
    snoop = session.post(
        url + "/api/v2/snoops",
        json={
            "service": "Identity",
            "itemId": created["id"],
            "accessToken": created["accessToken"],
            "task": "verification",
            "essentials": item,
        },
        headers={"Authorization": None},  # the identity's token in the body is the credential
        timeout=30,
    )
    snoop.raise_for_status()
    return snoop.json()["response"]["result"]


def hand_written_pool(url: str, token: str, items: list[dict]) -> float:
    import requests

    local = threading.local()

    def one(item: dict) -> dict:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
            session.headers["Authorization"] = token
        return by_hand(session, url, item)

    started = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(one, items))
    return time.perf_counter() - started


def timed_product_batch_dag(dag_id: str, items: list[dict], seconds: dict[str, float]):
    """One task: the product batch (both passes, ledger on), timed without the login."""
    import functools

    from airflow.sdk import DAG, task

    from airflow_provider_signzy.batch import SignzyBatch
    from airflow_provider_signzy.batch.products import run_product_batch
    from airflow_provider_signzy.hooks.signzy import SignzyHook

    with DAG(dag_id, schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)) as dag:

        @task
        def batch() -> int:
            with SignzyHook() as hook:
                token = hook.get_token()
                make = functools.partial(SignzyBatch, hook, token=token, max_concurrency=CONCURRENCY)
                started = time.perf_counter()
                results, _ = run_product_batch(hook, "pan.verification", items, make)
                seconds[dag_id] = time.perf_counter() - started
            assert all(r["ok"] for r in results), [r for r in results if not r["ok"]][:3]
            return len(results)

        batch()
    return dag


def main() -> None:
    airflow_home()
    fresh_metadata_db()
    with emulator_process() as emulator:
        url = emulator.url
        set_connections(url)
        import requests

        from airflow_provider_signzy.hooks.signzy import SignzyHook

        # 1. One product call: run_product vs the two POSTs by hand, interleaved rounds.
        with SignzyHook() as hook:
            token = hook.get_token()
            session = requests.Session()
            session.headers["Authorization"] = token.id
            items = essentials(CALLS, 0)
            for item in items[:20]:  # warm up both paths
                hook.run_product("pan.verification", item, token=token)
                by_hand(session, url, item)
            ratios, ours, theirs = [], [], []
            per_round = CALLS // ROUNDS
            for n in range(ROUNDS):
                chunk = items[n * per_round : (n + 1) * per_round]
                timings = {}
                for name in ("hook", "hand") if n % 2 else ("hand", "hook"):
                    started = time.perf_counter()
                    for item in chunk:
                        if name == "hook":
                            hook.run_product("pan.verification", item, token=token)
                        else:
                            by_hand(session, url, item)
                    timings[name] = (time.perf_counter() - started) / len(chunk)
                ours.append(timings["hook"])
                theirs.append(timings["hand"])
                ratios.append(timings["hook"] / timings["hand"])
        ratio = statistics.median(ratios)
        Row(
            f"time per product call, {CALLS} pan.verification: run_product vs the two POSTs by hand",
            f"{statistics.median(ours) * 1000:.2f} ms",
            f"{statistics.median(theirs) * 1000:.2f} ms",
            f"{ratio:.2f}",
            "<= 1.30",
            ratio <= 1.30,
        ).emit()

        # 2. A 2,000-item product batch in a task vs a hand-written pool doing both steps.
        seconds: dict[str, float] = {}
        with SignzyHook() as hook:
            token = hook.get_token()
            hand_written_pool(url, token.id, essentials(50, 99))  # warm up
            run(timed_product_batch_dag("bench_products_warm", essentials(50, 98), seconds))
            rates, pool_rates = [], []
            for n in range(BATCH_ROUNDS):
                dag = timed_product_batch_dag(f"bench_products_{n}", essentials(BIG, n + 1), seconds)
                if n % 2:
                    run(dag)
                pool_rates.append(BIG / hand_written_pool(url, token.id, essentials(BIG, n + 11)))
                if not n % 2:
                    run(dag)
                rates.append(BIG / seconds[f"bench_products_{n}"])
        ratio = statistics.median(o / t for o, t in zip(rates, pool_rates, strict=True))
        Row(
            f"items/s, {BIG} pan.verification (identity + snoop each) at concurrency {CONCURRENCY}: product batch "
            f"in a task (ledger on) vs hand-written pool (median of {BATCH_ROUNDS} rounds)",
            f"{statistics.median(rates):.0f}/s",
            f"{statistics.median(pool_rates):.0f}/s",
            f"{ratio:.2f}",
            ">= 0.90",
            ratio >= 0.90,
        ).emit()


if __name__ == "__main__":
    main()
