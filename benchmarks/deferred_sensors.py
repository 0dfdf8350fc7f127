"""N sensors waiting at once on a real local deployment: SignzySensor (deferred) vs HttpSensor (reschedule).

Reuses `make e2e`'s deployment (scripts/e2e.py: PostgreSQL, Redis, the emulator, api-server, scheduler,
dag-processor, triggerer, a Celery worker with 4 slots), with benchmarks/sensor_dags/ as DAGs folder.
For each DAG: trigger one run of N mapped sensors, wait until all N wait, sample for WAIT_SECONDS how
many hold a worker slot (running or queued), count logins while waiting, read the triggerer's memory,
then verify every identity at once and time each sensor from that moment to leaving its wait state
(the trigger, or the reschedule poke, saw the change) and to success, and count the sensors that went
back to a worker to finish (scheduled, queued or running after the change). The DAGs:
``signzy_bench_deferred`` (the trigger ends the task), ``signzy_bench_handoff`` (``end_from_trigger=False``:
each wait resumes on a worker, as before), ``signzy_bench_reschedule`` (HttpSensor).

Then the event-driven example (``SENSOR_BENCH_EVENTS=0`` skips it): ``signzy_on_identity_verified``
unpaused, its watcher polling every SENSOR_BENCH_POKE_INTERVAL, N new identities verified in one instant;
status change -> asset event -> DAG run queued, per identity (scripts/event_driven.py).

    SENSOR_BENCH_N=200 SENSOR_BENCH_POKE_INTERVAL=5 .venv/bin/python benchmarks/deferred_sensors.py

Takes about 25 minutes with N=200 on 2 shared cores (the reschedule DAG is the slow one). Not part of
CI (.ci/run): too long.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import e2e  # noqa: E402 - the deployment of `make e2e`
import event_driven  # noqa: E402 - the event-driven example's scenario, shared with make demo and make e2e

from airflow_provider_signzy.emulator.process import EmulatorControl  # noqa: E402

e2e.common.WORK = WORK = REPO / ".bench-sensors"  # where the deployment puts its files
N = int(os.environ.get("SENSOR_BENCH_N", "200"))
POKE = float(os.environ.get("SENSOR_BENCH_POKE_INTERVAL", "5"))
WAIT_SECONDS = float(os.environ.get("SENSOR_BENCH_WAIT_SECONDS", "60"))
DAGS_ALL = ("signzy_bench_deferred", "signzy_bench_handoff", "signzy_bench_reschedule")
DAGS = tuple(os.environ.get("SENSOR_BENCH_DAGS", ",".join(DAGS_ALL)).split(","))
EVENTS = os.environ.get("SENSOR_BENCH_EVENTS", "1") != "0"
TERMINAL = {"success", "failed", "skipped", "upstream_failed"}
RUNNING, QUEUED = {"running"}, {"running", "queued"}


def say(message: str) -> None:
    print(f">> {message}", flush=True)


def tree_rss_mb(pid: int) -> float:
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += proc.memory_info().rss
    return total / 2**20


def sensor_states(api: e2e.Api, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    tis = api.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=1000")["task_instances"]
    return [ti for ti in tis if ti["task_id"] == "wait"]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def measure(api: e2e.Api, emulator: EmulatorControl, triggerer_pid: int, dag_id: str) -> dict[str, Any]:
    emulator.reset()
    api.call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
    rss_before = tree_rss_mb(triggerer_pid)
    run_id = api.call("POST", f"/dags/{dag_id}/dagRuns", json={"dag_run_id": "bench", "logical_date": None})[
        "dag_run_id"
    ]
    say(f"{dag_id}: waiting until all {N} sensors have started waiting")
    started = time.monotonic()
    waiting_state = "up_for_reschedule" if "reschedule" in dag_id else "deferred"
    seen_waiting: set[int] = set()
    while len(seen_waiting) < N:
        # Reschedule sensors keep cycling through scheduled/queued/running: "has waited once" is the mark.
        # A sensor that already ended (Airflow failed some reschedule sensors under load) counts as seen.
        seen_waiting |= {
            ti["map_index"]
            for ti in sensor_states(api, dag_id, run_id)
            if ti["state"] == waiting_state or ti["state"] in TERMINAL
        }
        if time.monotonic() - started > 1800:
            raise SystemExit(f"{dag_id}: only {len(seen_waiting)}/{N} sensors waiting after 30 min")
        time.sleep(2)
    all_waiting_after = time.monotonic() - started
    say(f"{dag_id}: all {N} wait ({all_waiting_after:.0f} s); sampling for {WAIT_SECONDS:.0f} s")
    running, queued, rss_peak = [], [], 0.0
    sample_end = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < sample_end:
        states = [ti["state"] for ti in sensor_states(api, dag_id, run_id)]
        running.append(sum(s in RUNNING for s in states))
        queued.append(sum(s in QUEUED for s in states))
        rss_peak = max(rss_peak, tree_rss_mb(triggerer_pid))
        time.sleep(1)
    state = emulator.state()
    logins = state["logins"]  # since the run started: the create task's one included
    polls = state["requests"].get("GET /api/v2/patrons/{userId}/identities/{id}", 0)
    print(json.dumps({"dag_id": dag_id, "running": running, "queued_or_running": queued, "logins": logins}), flush=True)
    say(f"{dag_id}: verifying all {N} identities at once")
    changed_at = time.time()
    emulator.set_identity_status("*", "verified")
    left_wait: dict[int, float] = {}
    done: dict[int, float] = {}
    ended: dict[int, str] = {}
    on_worker: set[int] = set()  # went back to a worker to finish: scheduled, queued or running after the change
    running_after: list[int] = []
    while len(ended) < N and time.time() - changed_at < 1800:
        now = time.time()
        states = sensor_states(api, dag_id, run_id)
        running_after.append(sum(ti["state"] in RUNNING for ti in states))
        for ti in states:
            index = ti["map_index"]
            if waiting_state == "deferred" and index not in left_wait and ti["state"] != waiting_state:
                left_wait[index] = now - changed_at
            if ti["state"] in {"scheduled", "queued", "running"}:
                on_worker.add(index)
            if index not in done and ti["state"] == "success":
                done[index] = now - changed_at
            if ti["state"] in TERMINAL:
                ended[index] = ti["state"]
        time.sleep(0.5)
    return {
        "dag_id": dag_id,
        "all_waiting_after_s": all_waiting_after,
        "running_max": max(running),
        "running_mean": statistics.mean(running),
        "queued_or_running_max": max(queued),
        "logins": logins,
        "polls": polls,
        "triggerer_rss_before_mb": rss_before,
        "triggerer_rss_peak_mb": rss_peak,
        "left_wait_p50_s": percentile(list((left_wait or done).values()), 0.5),
        "left_wait_max_s": max((left_wait or done).values(), default=float("nan")),
        "success_p50_s": percentile(list(done.values()), 0.5),
        "success_max_s": max(done.values(), default=float("nan")),
        "succeeded": len(done),
        "failed": sum(state == "failed" for state in ended.values()),
        "finished_on_a_worker": len(on_worker),
        "running_after_max": max(running_after, default=0),
        "logins_total": emulator.state()["logins"],
        "live_tokens_after": emulator.state()["live_tokens"],
    }


def measure_events(api: e2e.Api, emulator: EmulatorControl, emulator_url: str) -> dict[str, Any]:
    """N identities verified in one instant -> N asset events -> DAG runs of the event-driven example."""
    emulator.reset()
    dag_id = event_driven.DAG_ID
    api.call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
    rest = event_driven.RestApi(api.base)
    rest.session.headers.update(api.session.headers)
    say(f"{dag_id}: waiting for its watcher (registered when the DAG processor parses the unpaused DAG)")
    event_driven.watcher_ready(emulator, rest, seconds=600)
    started = time.monotonic()
    outcome = event_driven.run_stream(rest, emulator, emulator_url, before=N, settle=10, run_timeout=300)
    state = emulator.state()
    return {
        "dag_id": dag_id,
        "identities": len(outcome.verified),
        "events": sum(outcome.events_per_identity.values()),
        "each_once": outcome.each_once,
        "twice": len(outcome.twice),
        "missing": len(outcome.missing),
        "not_run": len(outcome.not_run),
        "runs": outcome.runs,
        "runs_succeeded": outcome.runs_succeeded,
        "to_event": outcome.latency(outcome.to_event),
        "to_run": outcome.latency(outcome.to_run),
        "watcher_logins": state["logins"] - 1 - outcome.runs,  # less the script's own and one per run
        "seconds": time.monotonic() - started,
    }


def main() -> int:
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "logs").mkdir(parents=True)
    deployment = e2e.Deployment(e2e.ensure_prerequisites())
    results = []
    events: dict[str, Any] | None = None
    try:
        say("Starting PostgreSQL, Redis and the Signzy emulator on 127.0.0.1")
        db_url = deployment.start_postgres()
        broker = deployment.start_redis()
        emulator_url = deployment.start_emulator()
        api_port = e2e.free_port()
        env = e2e.airflow_env(db_url, broker, emulator_url, api_port, outage_url=emulator_url)  # no outage here
        dags = WORK / "dags"  # the sensor DAGs and the event-driven example (paused until its turn)
        dags.mkdir()
        shutil.copy(REPO / "benchmarks" / "sensor_dags" / "signzy_bench_sensors.py", dags)
        shutil.copy(REPO / "dags_examples" / "signzy_start_on_verification.py", dags)
        env.update(
            {
                "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
                "SIGNZY_EXAMPLE_POLL_INTERVAL": str(POKE),
                "AIRFLOW__CORE__PARALLELISM": "64",
                "AIRFLOW__CORE__MAX_MAP_LENGTH": str(max(1024, N)),
                "AIRFLOW__API__MAXIMUM_PAGE_LIMIT": "1000",
                "AIRFLOW__TRIGGERER__CAPACITY": str(max(1000, N)),
                "AIRFLOW__CORE__DEFAULT_POOL_TASK_SLOT_COUNT": "512",
                "SENSOR_BENCH_N": str(N),
                "SENSOR_BENCH_POKE_INTERVAL": str(POKE),
                "AIRFLOW_CONN_SIGNZY_HTTP_PLAIN": json.dumps({"conn_type": "http", "host": emulator_url}),
            }
        )
        say("Migrating the Airflow metadata DB (PostgreSQL)")
        with open(WORK / "logs" / "db-migrate.log", "wb") as log:
            subprocess.run([str(e2e.BIN / "airflow"), "db", "migrate"], env=env, check=True, stdout=log, stderr=log)
        airflow = str(e2e.BIN / "airflow")
        deployment.spawn("api-server", [airflow, "api-server", "--port", str(api_port), "--host", "127.0.0.1"], env)
        deployment.spawn("scheduler", [airflow, "scheduler"], env)
        deployment.spawn("dag-processor", [airflow, "dag-processor"], env)
        deployment.spawn("triggerer", [airflow, "triggerer"], env)
        deployment.spawn("celery-worker", [airflow, "celery", "worker", "--concurrency", "4"], env)
        api = e2e.Api(f"http://127.0.0.1:{api_port}")
        e2e.wait_for(lambda: api.session.get(f"{api.base}/api/v2/monitor/health", timeout=5).ok, "api-server", 180)
        api.authenticate()
        e2e.wait_for(api.healthy, "scheduler", 180)
        e2e.wait_for(lambda: all(api.call("GET", f"/dags/{d}") for d in DAGS), "the benchmark DAGs", 180)
        emulator = EmulatorControl(emulator_url)
        triggerer_pid = deployment.processes["triggerer"].pid
        for dag_id in DAGS:
            results.append(measure(api, emulator, triggerer_pid, dag_id))
            print(json.dumps(results[-1]), flush=True)
        if EVENTS:
            events = measure_events(api, emulator, emulator_url)
            print(json.dumps(events), flush=True)
    finally:
        say("Tearing down every process")
        deployment.stop()
    report(results, events)
    return 0


def report(results: list[dict[str, Any]], events: dict[str, Any] | None = None) -> None:
    by_dag = {r["dag_id"]: r for r in results}
    columns = [by_dag.get(dag_id) for dag_id in DAGS_ALL]
    rows = [
        ("worker slots held while waiting: running sensors (max / mean)", "running_max", "running_mean", "0"),
        ("sensors queued or running while waiting (max)", "queued_or_running_max", None, "0"),
        ("logins up to the status change (the create task's 1 included)", "logins", None, "2 (ours: 1 + 1 shared)"),
        ("GET polls at the emulator up to the status change", "polls", None, "-"),
        ("triggerer memory before -> peak (MB)", "triggerer_rss_before_mb", "triggerer_rss_peak_mb", "-"),
        (
            "status change -> sensor leaves its wait (p50 / max, s)",
            "left_wait_p50_s",
            "left_wait_max_s",
            f"<= {POKE + 2:g}",
        ),
        (
            "status change -> task success (p50 / max, s)",
            "success_p50_s",
            "success_max_s",
            f"<= {POKE + 2:g} / <= {2 * POKE + 5:g}",
        ),
        (
            "sensors that went back to a worker to finish / most running at once",
            "finished_on_a_worker",
            "running_after_max",
            "0",
        ),
        ("logins in all (the create task's 1 included)", "logins_total", None, "2"),
        ("sensors succeeded / failed", "succeeded", "failed", f"{N} / 0"),
        ("live tokens after the run (HttpSensor's: its templated token)", "live_tokens_after", None, "0 (ours)"),
    ]
    lines = [
        f"N={N} sensors, poke_interval={POKE:g} s, one Celery worker with 4 slots, "
        f"{os.cpu_count()} cores; sampled {WAIT_SECONDS:.0f} s while all waited.",
        "",
        "| figure | SignzySensor, ends in the triggerer | SignzySensor, `end_from_trigger=False` (before) "
        "| HttpSensor (reschedule) | goal |",
        "|---|---|---|---|---|",
    ]

    def cell(result: dict[str, Any] | None, first: str, second: str | None) -> str:
        if result is None:
            return "not run"

        def fmt(value: Any) -> str:
            return f"{value:.1f}" if isinstance(value, float) else str(value)

        return fmt(result[first]) + (f" / {fmt(result[second])}" if second else "")

    for label, first, second, goal in rows:
        cells = " | ".join(cell(column, first, second) for column in columns)
        lines.append(f"| {label} | {cells} | {goal} |")
    if events is not None:
        lines += [
            "",
            f"Event-driven example: {events['identities']} identities verified in one instant, watcher polling "
            f"every {POKE:g} s.",
            "",
            "| figure | measured |",
            "|---|---|",
            f"| asset events / each identity once / twice / none | {events['events']} / "
            f"{'yes' if events['each_once'] else 'no'} / {events['twice']} / {events['missing']} |",
            f"| status change -> asset event (p50 / max) | {events['to_event']} |",
            f"| status change -> DAG run queued (p50 / max) | {events['to_run']} |",
            f"| DAG runs (succeeded) / events no run consumed | {events['runs']} ({events['runs_succeeded']}) / "
            f"{events['not_run']} |",
            f"| the watcher's logins | {events['watcher_logins']} |",
        ]
    table = "\n".join(lines)
    print(table)
    (WORK / "results.md").write_text(table + "\n")


if __name__ == "__main__":
    sys.exit(main())
