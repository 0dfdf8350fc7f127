"""SIGKILLs aimed at the processes whose paid POSTs the emulator holds: one task process, or the whole
Celery worker (then restarted), and whether each landed before the answer went out (issues 9 and 12)."""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass
from typing import Any

from airflow_provider_signzy.emulator.process import EmulatorControl

from .api import Api
from .common import RETRIES, say
from .deployment import Deployment
from .processes import command_of, pids_holding, poll_until, process_table, process_tree, with_suppressed


@dataclass
class Kill:
    """One SIGKILL aimed at the process whose paid POST the emulator held."""

    what: str  # "task process" or "Celery worker"
    pid: int  # the process that had sent the POST
    client_port: int
    run_id: str | None  # the run whose task try Airflow recorded with that pid
    try_number: int = 0  # that try
    dag_id: str = RETRIES
    task_id: str = "create_identity"
    landed: bool = False  # the process died while its answer was held, and the answer never went out
    seen: bool = False  # Airflow ended the try the expected way (supervisor saw the signal / heartbeat timeout)


def wait_held(emulator: EmulatorControl, count: int, seconds: float) -> list[dict[str, Any]]:
    """The paid POSTs the emulator acted on and is holding the answers of, once there are ``count``."""
    held: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        held = [h for h in emulator.state()["held"] if h["route"].startswith("POST ")]
        if len(held) >= count:
            return held[:count]
        time.sleep(0.2)
    raise SystemExit(f"the emulator held {len(held)} of {count} paid POSTs within {seconds:.0f} s")


def try_of_pid(
    api: Api, run_ids: list[str], pid: int, dag_id: str = RETRIES, task_id: str = "create_identity"
) -> tuple[str | None, int]:
    """(run, try) of the running task try that Airflow recorded with ``pid`` (its task process)."""
    for run_id in run_ids:
        ti = api.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")
        if ti.get("pid") == pid and ti["state"] == "running":
            return run_id, int(ti["try_number"])
    return None, 0


def ended_as_expected(api: Api, kill: Kill) -> bool:
    """A killed task process: its supervisor logged the signal. A killed worker: the scheduler's heartbeat
    timeout (an event-log entry). Either way Airflow, not the task, decided the retry."""
    if kill.run_id is None:
        return False
    if kill.what == "task process":
        path = f"/dags/{kill.dag_id}/dagRuns/{kill.run_id}/taskInstances/{kill.task_id}/logs/{kill.try_number}"
        log = api.call("GET", path, params={"full_content": "true"}, headers={"Accept": "application/json"})
        return "terminated by signal" in json.dumps(log)
    events = api.call(
        "GET", "/eventLogs", params={"dag_id": kill.dag_id, "run_id": kill.run_id, "event": "heartbeat timeout"}
    )
    return int(events["total_entries"]) > 0


def sender_of(entry: dict[str, Any], emulator_port: int) -> int:
    pids = pids_holding(int(entry["client_port"]), emulator_port)
    if len(pids) != 1:
        raise SystemExit(f"expected one process holding the held POST from port {entry['client_port']}, found {pids}")
    return pids.pop()


def confirm_kills(emulator: EmulatorControl, kills: list[Kill], undelivered_before: int, sent_before: int) -> None:
    """A kill landed when its process is gone and the emulator saw the client leave before the answer."""

    def settled() -> bool:
        state, live = emulator.state(), set(process_table())
        ports = {h["client_port"] for h in state["held"]}
        return all(k.pid not in live and k.client_port not in ports for k in kills) and (
            state["held_answers_undelivered"] - undelivered_before >= len(kills)
        )

    poll_until(settled, 15)
    state, live = emulator.state(), set(process_table())
    ports = {h["client_port"] for h in state["held"]}
    counted = state["held_answers_undelivered"] - undelivered_before == len(kills)
    none_sent = state["held_answers_sent"] == sent_before
    for kill in kills:
        kill.landed = kill.pid not in live and kill.client_port not in ports and counted and none_sent


def kill_task_processes(
    api: Api, deployment: Deployment, emulator: EmulatorControl, emulator_port: int, run_ids: list[str], count: int
) -> list[Kill]:
    """SIGKILL, one by one, the task processes whose paid POSTs the emulator holds; nothing else."""
    held = wait_held(emulator, count, 180)
    state = emulator.state()
    worker = deployment.processes["celery-worker"]
    table = process_table()
    kills = []
    for entry in held:
        pid = sender_of(entry, emulator_port)
        parent, group = table[pid]
        # Celery worker -> pool process (runs Airflow's supervisor) -> task process (forked, own group).
        if group != pid or table.get(parent, (0, 0))[0] != worker.pid:
            raise SystemExit(f"process {pid} ({command_of(pid)}) is not a task process of the Celery worker")
        kill = Kill("task process", pid, int(entry["client_port"]), *try_of_pid(api, run_ids, pid))
        say(
            f"SIGKILL task process {pid} of run {kill.run_id} (its supervisor: pool process {parent}, "
            f"{command_of(parent)!r}); the emulator holds its POST from port {kill.client_port}"
        )
        os.kill(pid, signal.SIGKILL)
        kills.append(kill)
    confirm_kills(emulator, kills, state["held_answers_undelivered"], state["held_answers_sent"])
    return kills


def kill_worker(
    api: Api,
    deployment: Deployment,
    emulator: EmulatorControl,
    emulator_port: int,
    run_ids: list[str],
    count: int,
    restart: list[str],
    env: dict[str, str],
    dag_id: str = RETRIES,
    task_id: str = "create_identity",
) -> list[Kill]:
    """SIGKILL the Celery worker and everything under it while ``count`` paid POSTs are held; restart it."""
    held = wait_held(emulator, count, 180)
    state = emulator.state()
    worker = deployment.processes["celery-worker"]
    table = process_table()
    tree = process_tree(worker.pid, table)
    kills = []
    for entry in held:
        pid = sender_of(entry, emulator_port)
        if pid not in tree:
            raise SystemExit(f"process {pid} ({command_of(pid)}) holding a paid POST is not under the Celery worker")
        run_id, try_number = try_of_pid(api, run_ids, pid, dag_id, task_id)
        kills.append(Kill("Celery worker", pid, int(entry["client_port"]), run_id, try_number, dag_id, task_id))
    # A node lost or an OOM-killed container: every process at once. Airflow 3 gives each task process a
    # process group of its own, so the worker's group alone would leave them running, orphaned.
    groups = {table[pid][1] for pid in tree}
    say(
        f"SIGKILL the Celery worker: {len(tree)} processes in {len(groups)} process groups, while the emulator "
        f"holds the paid POSTs of runs {sorted(str(k.run_id) for k in kills)}"
    )
    for group in groups:
        with_suppressed(lambda group=group: os.killpg(group, signal.SIGKILL))
    for pid in tree:
        with_suppressed(lambda pid=pid: os.kill(pid, signal.SIGKILL))
    worker.wait(timeout=10)
    if not poll_until(lambda: not tree & set(process_table()), 15):
        raise SystemExit(f"processes of the killed worker still alive: {sorted(tree & set(process_table()))}")
    confirm_kills(emulator, kills, state["held_answers_undelivered"], state["held_answers_sent"])
    restarts = sum(name.startswith("celery-worker-killed") for name in deployment.processes) + 1
    deployment.processes[f"celery-worker-killed-{restarts}"] = worker
    deployment.spawn("celery-worker", restart, env, log_name=f"celery-worker-restarted-{restarts}")
    say("Restarted the Celery worker; Airflow retries the killed tasks once their heartbeats time out")
    return kills
