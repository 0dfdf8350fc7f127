"""A batch of paid calls whose worker is killed mid-batch (issue 12)."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any, NamedTuple

from airflow_provider_signzy.emulator.process import EmulatorControl

from .api import Api, posts_by_run, trigger, wait_runs
from .common import HOLD_SECONDS, IDENTITIES, say, yes
from .deployment import Deployment
from .kills import ended_as_expected, kill_worker

BATCH, BATCH_TASK = "signzy_e2e_batch", "create_identities"
BATCH_ITEMS = 300  # as in scripts/e2e_dags/signzy_e2e_batch.py
BATCH_HOLD_AFTER, BATCH_HELD = 120, 3  # POSTs 121 to 123 of the batch are held: the kill comes then


class ItemAccount(NamedTuple):
    """A batch run's items against what the emulator created: each result checked, stray and repeated POSTs."""

    created: list[int]  # per item index, how many times the emulator created it
    stray: int  # POSTs of this run whose key is no item's
    twice: list[int]  # items created more than once
    outcomes: Counter[str]
    unaccounted: list[str]

    @classmethod
    def of(cls, sent: Counter[str], run_id: str, results: list[dict[str, Any]], items: int, what: str) -> ItemAccount:
        """Check ``results`` against ``sent`` (posts_by_run), printing each item not accounted for."""
        created = [sent[f"{run_id}.i{n:03d}"] for n in range(items)]
        stray = sum(c for key, c in sent.items() if key.startswith(f"{run_id}.")) - sum(created)
        twice = [n for n, count in enumerate(created) if count > 1]
        outcomes = Counter(str(r.get("outcome")) for r in results)
        unaccounted = []
        for n in range(items):
            result = results[n] if n < len(results) else {}
            outcome = result.get("outcome")
            if result.get("index") != n:
                unaccounted.append(f"item {n}: no result")
            elif outcome in ("succeeded", "replayed") and (created[n] != 1 or not result.get("ok")):
                unaccounted.append(f"item {n}: {outcome}, created {created[n]} times")
            elif outcome == "unknown" and created[n] > 1:
                unaccounted.append(f"item {n}: unknown, created {created[n]} times")
            elif outcome not in ("succeeded", "replayed", "unknown"):
                unaccounted.append(f"item {n}: {outcome} ({result.get('error')})")
        for line in unaccounted[:20]:
            print(f"   unaccounted: {line}")
        for n in twice:
            print(f"   sent twice: {what} item {n} created {created[n]} times")
        return cls(created, stray, twice, outcomes, unaccounted)


def batch_results(api: Api, run_id: str, dag_id: str = BATCH, task_id: str = BATCH_TASK) -> list[dict[str, Any]]:
    """The batch task's return value (one result per item), read through the REST API."""
    path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value"
    value = api.call("GET", path)["value"]
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, list):
        raise SystemExit(f"the batch task's return value is not a list: {type(value).__name__}")
    return value


def run_batch(
    api: Api, emulator_url: str, deployment: Deployment, worker_argv: list[str], env: dict[str, str]
) -> tuple[list[list[str]], int]:
    """A ``SignzyBatchOperator`` of paid POSTs (retries=2) whose Celery worker is SIGKILLed mid-batch.

    The emulator holds the answers of POSTs 121 to 123, so the batch stalls with those in flight and its
    ledger windows around them written "sending"; the script SIGKILLs the worker, restarts it, and Airflow
    retries the task after its heartbeat timeout. Returns the figures and the identities the run created."""
    emulator = EmulatorControl(emulator_url)
    emulator_port = int(emulator_url.rsplit(":", 1)[1])
    run_id = "batch-000"
    api.call("PATCH", f"/dags/{BATCH}", json={"is_paused": False})
    emulator.clear_faults()
    say(
        f"Batch of {BATCH_ITEMS} paid POSTs, retries=2: the Celery worker killed while POSTs "
        f"{BATCH_HOLD_AFTER + 1} to {BATCH_HOLD_AFTER + BATCH_HELD} are held, then restarted"
    )
    held: list[dict[str, Any] | None] = [{"hold": HOLD_SECONDS}] * BATCH_HELD
    emulator.add_faults({"path": IDENTITIES, "method": "POST", "faults": [None] * BATCH_HOLD_AFTER + held})
    started = time.monotonic()
    trigger(api, BATCH, [run_id])
    kills = kill_worker(
        api, deployment, emulator, emulator_port, [run_id], BATCH_HELD, worker_argv, env, BATCH, BATCH_TASK
    )
    at_kill = sum(count for key, count in posts_by_run(emulator_url).items() if key.startswith(f"{run_id}.i"))
    say(f"{at_kill} items of the batch were created at the emulator when the worker died")
    emulator.clear_faults()
    wait_runs(api, BATCH, [run_id], 300)
    wall = time.monotonic() - started

    ti = api.call("GET", f"/dags/{BATCH}/dagRuns/{run_id}/taskInstances/{BATCH_TASK}")
    results = batch_results(api, run_id) if ti["state"] == "success" else []
    sent = posts_by_run(emulator_url)
    created, stray, twice, outcomes, unaccounted = ItemAccount.of(sent, run_id, results, BATCH_ITEMS, "batch")
    unknown_created = sum(1 for r in results if r.get("outcome") == "unknown" and created[int(r["index"])] == 1)
    landed = sum(k.landed for k in kills)
    for kill in kills:
        kill.seen = ended_as_expected(api, kill) and int(ti["try_number"]) > kill.try_number
    retried = sum(k.seen for k in kills)
    replayed, unknown, fresh = outcomes["replayed"], outcomes["unknown"], outcomes["succeeded"]
    print(
        f"   {run_id}: {BATCH_TASK} {ti['state']} after {ti['try_number']} tries; outcomes {dict(outcomes)}; "
        f"{at_kill} items created before the kill, {sum(created)} in all"
    )
    rows = [
        [
            f"batch run, retries=2: {BATCH_ITEMS} paid POSTs, Celery worker killed while POSTs held",
            f"{landed}/{len(kills)} SIGKILLs landed, {retried} retried after a heartbeat timeout",
            f"{BATCH_HELD} / {BATCH_HELD}",
            yes(landed == retried == len(kills) == BATCH_HELD and ti["state"] == "success"),
        ],
        ["batch items sent twice (created more than once)", str(len(twice) + stray), "0", yes(not twice and not stray)],
        [
            "batch items accounted for (succeeded/replayed: created once; unknown: at most once)",
            f"{BATCH_ITEMS - len(unaccounted)}/{BATCH_ITEMS}",
            "all",
            yes(not unaccounted and len(results) == BATCH_ITEMS),
        ],
        [
            "batch retry: replayed / unknown (windows in flight at the kill) / sent by the retry",
            f"{replayed} / {unknown} ({unknown_created} had reached Signzy, {unknown - unknown_created} not) / {fresh}",
            f"> 0 / >= {BATCH_HELD}, none sent again / the rest",
            yes(
                replayed > 0
                and unknown >= BATCH_HELD
                and replayed + unknown_created == at_kill
                and fresh == BATCH_ITEMS - replayed - unknown
            ),
        ],
        ["wall time of the batch run", f"{wall:.0f} s", "-", "-"],
    ]
    return rows, sum(created) + stray
