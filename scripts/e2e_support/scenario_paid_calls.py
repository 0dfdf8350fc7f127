"""Paid calls across Airflow's own retries and SIGKILLs (issue 9)."""

from __future__ import annotations

import json
import time

from airflow_provider_signzy.emulator.process import EmulatorControl

from .api import Api, posts_by_run, trigger, wait_runs
from .common import CHARGED, HOLD_SECONDS, IDENTITIES, POSTS, RETRIES, say, yes
from .deployment import Deployment
from .kills import ended_as_expected, kill_task_processes, kill_worker


def charged_message(api: Api, run_id: str) -> tuple[str, int, list[int]]:
    """(state, tries, tries whose log says the call may have been charged) of the run's create_identity."""
    path = f"/dags/{RETRIES}/dagRuns/{run_id}/taskInstances/create_identity"
    ti = api.call("GET", path)
    said = []
    for attempt in range(1, int(ti["try_number"]) + 1):
        log = api.call(
            "GET", f"{path}/logs/{attempt}", params={"full_content": "true"}, headers={"Accept": "application/json"}
        )
        if CHARGED in json.dumps(log):
            said.append(attempt)
    return ti["state"], int(ti["try_number"]), said


def run_paid_calls(
    api: Api, emulator_url: str, deployment: Deployment, worker_argv: list[str], env: dict[str, str]
) -> tuple[list[list[str]], list[str]]:
    """Runs of ``signzy_e2e_retries`` (retries=2) whose paid POST is lost or killed mid-flight."""
    lost, task_kills, worker_kills = 3, 2, 2
    emulator = EmulatorControl(emulator_url)
    emulator_port = int(emulator_url.rsplit(":", 1)[1])
    api.call("PATCH", f"/dags/{RETRIES}", json={"is_paused": False})
    emulator.clear_faults()
    before = emulator.state()["faults_by_kind"]
    started = time.monotonic()

    # At once: the first paid POSTs to arrive are held and their task processes killed; the rest lose their
    # answers. Each run's single POST takes one fault, whichever run it comes from.
    batch = [f"paid-{n:03d}" for n in range(task_kills + lost)]
    say(f"Paid calls, retries=2: {lost} lost answers and {task_kills} task processes killed mid-call, at once")
    emulator.add_faults(
        {
            "path": IDENTITIES,
            "method": "POST",
            "faults": [{"hold": HOLD_SECONDS}] * task_kills + [{"drop": "after"}] * lost,
        }
    )
    trigger(api, RETRIES, batch)
    kills = kill_task_processes(api, deployment, emulator, emulator_port, batch, task_kills)
    wait_runs(api, RETRIES, batch, 300)
    emulator.clear_faults()

    crashed = [f"worker-kill-{n:03d}" for n in range(worker_kills)]
    say(f"Paid calls, retries=2: the Celery worker killed while {worker_kills} paid POSTs are held, then restarted")
    emulator.add_faults({"path": IDENTITIES, "method": "POST", "faults": [{"hold": HOLD_SECONDS}] * worker_kills})
    trigger(api, RETRIES, crashed)
    kills += kill_worker(api, deployment, emulator, emulator_port, crashed, worker_kills, worker_argv, env)
    wait_runs(api, RETRIES, crashed, 300)
    emulator.clear_faults()

    # A user who sees the failed task and clears it (the UI's Clear, `airflow tasks clear`): that alone
    # must not send the call again.
    run_ids = batch + crashed
    tries_before = {run_id: charged_message(api, run_id)[1] for run_id in run_ids}
    posts_before = emulator.state()["requests"].get(POSTS, 0)
    say(f"Clearing the {len(run_ids)} paid-call tasks, as a user would after reading their failure")
    for run_id in run_ids:
        api.call(
            "POST",
            f"/dags/{RETRIES}/clearTaskInstances",
            json={"dry_run": False, "dag_run_id": run_id, "task_ids": ["create_identity"], "only_failed": False},
        )
    wait_runs(api, RETRIES, run_ids, 300)
    resent = emulator.state()["requests"].get(POSTS, 0) - posts_before
    wall = time.monotonic() - started

    outcomes = {run_id: charged_message(api, run_id) for run_id in run_ids}
    sent = posts_by_run(emulator_url)
    for run_id, (state, tries, said) in outcomes.items():
        print(
            f"   {run_id}: {sent[run_id]} paid POST(s) received; create_identity {state} after {tries} tries; "
            f"'{CHARGED}' in the log of tries {said}"
        )
    served = {k: v - before.get(k, 0) for k, v in emulator.state()["faults_by_kind"].items() if v > before.get(k, 0)}
    landed = sum(k.landed for k in kills)
    for kill in kills:
        kill.seen = ended_as_expected(api, kill) and outcomes[str(kill.run_id)][1] > kill.try_number
    retried = {what: sum(k.seen for k in kills if k.what == what) for what in ("task process", "Celery worker")}
    reran = sum(1 for run_id in run_ids if outcomes[run_id][1] > tries_before[run_id])
    told = sum(1 for state, tries, said in outcomes.values() if state == "failed" and tries in said)  # its last try
    rows = [
        [
            "paid-call runs, retries=2: lost answers / task process killed / worker killed",
            f"{served.get('drop-after', 0)} / {task_kills} / {worker_kills}",
            f"{lost} / {task_kills} / {worker_kills}",
            yes(served.get("drop-after", 0) == lost and served.get("hold", 0) == task_kills + worker_kills),
        ],
        [
            "SIGKILLs landed while the paid POST was held",
            f"{landed}/{len(kills)}",
            "all",
            yes(landed == len(kills) == task_kills + worker_kills),
        ],
        [
            "killed tries retried by Airflow: supervisor saw SIGKILL / heartbeat timeout",
            f"{retried['task process']} / {retried['Celery worker']}",
            f"{task_kills} / {worker_kills}",
            yes(retried == {"task process": task_kills, "Celery worker": worker_kills}),
        ],
        [
            f"lost or killed paid calls -> tasks failed '{CHARGED}'",
            f"{len(run_ids)} -> {told}",
            "all",
            yes(told == len(run_ids)),
        ],
        [
            "paid-call tasks cleared -> ran again / POSTs sent again",
            f"{len(run_ids)} -> {reran} / {resent}",
            f"{len(run_ids)} / 0",
            yes(reran == len(run_ids) and resent == 0),
        ],
        ["wall time of the paid-call runs", f"{wall:.0f} s", "-", "-"],
    ]
    return rows, run_ids
