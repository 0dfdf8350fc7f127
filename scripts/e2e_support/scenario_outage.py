"""A batch of paid calls through a proxy the script stops mid-batch: Signzy down, then back (issue 16)."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from airflow_provider_signzy.emulator.process import EmulatorControl

from .api import Api, posts_by_run, trigger, wait_runs
from .common import POSTS, say, timing, yes
from .processes import wait_for
from .scenario_batch import ItemAccount, batch_results

if TYPE_CHECKING:
    from outage import OutageProxy  # tests/outage.py, which scripts/e2e.py puts on sys.path

OUTAGE, OUTAGE_TASK = "signzy_e2e_outage", "create_identities"
OUTAGE_ITEMS = 200  # as in scripts/e2e_dags/signzy_e2e_outage.py
OUTAGE_AFTER = 60  # Signzy goes down once this many of the batch's POSTs reached it
OUTAGE_STOP_WITHIN = 15.0  # seconds from Signzy going down to the batch's try ending


def task_log(api: Api, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
    path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}"
    return json.dumps(api.call("GET", path, params={"full_content": "true"}, headers={"Accept": "application/json"}))


def run_outage(api: Api, emulator_url: str, proxy: OutageProxy) -> tuple[list[list[str]], int]:
    """A batch of paid POSTs through a proxy the script stops mid-batch (Signzy down), then starts again.

    Returns the figures and the identities the run created."""
    emulator = EmulatorControl(emulator_url)
    run_id = "outage-000"
    ti_path = f"/dags/{OUTAGE}/dagRuns/{run_id}/taskInstances/{OUTAGE_TASK}"
    api.call("PATCH", f"/dags/{OUTAGE}", json={"is_paused": False})
    emulator.clear_faults()
    say(
        f"Batch of {OUTAGE_ITEMS} paid POSTs, retries=2: Signzy goes down (connections refused) after "
        f"{OUTAGE_AFTER} of them, and comes back once the task's try has ended"
    )

    def posts() -> int:
        return int(emulator.state()["requests"].get(POSTS, 0))

    before = posts()
    started = time.monotonic()
    trigger(api, OUTAGE, [run_id])
    wait_for(lambda: posts() - before >= OUTAGE_AFTER, f"{OUTAGE_AFTER} POSTs of the outage batch", 240)
    proxy.stop()
    down_at = time.monotonic()
    reached = posts() - before
    say(f"Signzy is down after {reached} POSTs of the batch reached it")

    def first_try_over() -> bool:
        ti = api.call("GET", ti_path)
        return bool(ti["state"] != "running" or int(ti["try_number"]) > 1)

    wait_for(first_try_over, "the outage batch's first try to end", 120)
    stopped_after = time.monotonic() - down_at
    at_outage = sum(count for key, count in posts_by_run(emulator_url).items() if key.startswith(f"{run_id}.i"))
    proxy.start()
    say(f"The batch's try ended {stopped_after:.1f} s after Signzy went down; Signzy is back")
    wait_runs(api, OUTAGE, [run_id], 300)
    wall = time.monotonic() - started

    ti = api.call("GET", ti_path)
    first_log = task_log(api, OUTAGE, run_id, OUTAGE_TASK, 1)
    try:
        first_state = str(api.call("GET", f"{ti_path}/tries/1")["state"])
    except Exception:  # an API without the tries endpoint: the log says how the try ended
        first_state = "failed" if "Task failed with exception" in first_log else "?"
    unreachable_said = "Signzy was unreachable" in first_log and "circuit breaker" in first_log
    results = batch_results(api, run_id, OUTAGE, OUTAGE_TASK) if ti["state"] == "success" else []
    sent = posts_by_run(emulator_url)
    created, stray, twice, outcomes, unaccounted = ItemAccount.of(sent, run_id, results, OUTAGE_ITEMS, "outage")
    replayed, unknown, fresh = outcomes["replayed"], outcomes["unknown"], outcomes["succeeded"]
    print(
        f"   {run_id}: {OUTAGE_TASK} {ti['state']} after {ti['try_number']} tries (try 1: {first_state}); "
        f"outcomes {dict(outcomes)}; {at_outage} items created by the outage, {sum(created)} in all"
    )
    rows = [
        [
            f"outage run: Signzy down after {reached} of {OUTAGE_ITEMS} paid POSTs -> the batch's try",
            f"{first_state}, 'Signzy was unreachable' {yes(unreachable_said)}",
            "failed, says so",
            yes(first_state == "failed" and unreachable_said),
        ],
        [
            "outage run: from Signzy going down to the try's end",
            f"{stopped_after:.1f} s",
            f"<= {OUTAGE_STOP_WITHIN:.0f} s",
            timing(stopped_after <= OUTAGE_STOP_WITHIN),
        ],
        [
            "outage run: Signzy back, Airflow's retry -> task state / tries",
            f"{ti['state']} / {ti['try_number']}",
            "success / 2",
            yes(ti["state"] == "success" and int(ti["try_number"]) == 2),
        ],
        [
            "outage items sent twice (created more than once)",
            str(len(twice) + stray),
            "0",
            yes(not twice and not stray),
        ],
        [
            "outage items accounted for (succeeded/replayed: created once; unknown: at most once)",
            f"{OUTAGE_ITEMS - len(unaccounted)}/{OUTAGE_ITEMS}",
            "all",
            yes(not unaccounted and len(results) == OUTAGE_ITEMS),
        ],
        [
            "outage retry: replayed / unknown (cut mid-call) / sent by the retry",
            f"{replayed} / {unknown} / {fresh}",
            "> 0 / - / the rest",
            yes(replayed > 0 and fresh == OUTAGE_ITEMS - replayed - unknown),
        ],
        ["wall time of the outage run", f"{wall:.0f} s", "-", "-"],
    ]
    return rows, sum(created) + stray
