"""`make e2e`: the provider on a real local Airflow deployment, under concurrent load and injected faults.

Starts on 127.0.0.1 only: PostgreSQL (a throw-away cluster), Redis, the Signzy emulator, and Airflow's
api-server, scheduler, dag-processor, triggerer and a Celery worker (concurrency 4), configured like
docker-compose.yaml. Drives it only through Airflow's REST API (authenticate, unpause, trigger, poll),
prints a table of figures against their goals, and tears everything down, also when it fails.
Exit code 0 only when every correctness goal is met; timing rows are reported, never gating (a loaded
2-core machine meets a latency goal one run and misses it the next: timing goals live in `make bench*`).
E2E_RUNS sets the number of lifecycle runs (default 20).

Then the paid-call runs (issue 9): a DAG with ``retries=2`` whose paid POST loses its answer, or is held
by the emulator while the script SIGKILLs the task process that sent it, or the whole Celery worker
(then restarts it). Airflow retries each of those tasks; then the script clears them. Every run must
have sent its POST exactly once and its task must fail saying that Signzy may have charged the call.
``E2E_RUNS=0`` runs these alone.

Last the batch run (issue 12): a ``SignzyBatchOperator`` of 300 paid POSTs (``retries=2``) whose Celery
worker is SIGKILLed while the emulator holds three of them, then restarted; Airflow retries the task. No
item may be created twice, and every item's result must be accounted for at the emulator: succeeded or
replayed (created once) or unknown (at most once). ``E2E_PAID_CALLS=0`` skips the paid-call runs, so
``E2E_RUNS=0 E2E_PAID_CALLS=0`` runs the two batch runs alone (about 2½ minutes).

Then the outage run (issue 16): a batch of 200 paid POSTs (``retries=2``) through a proxy in front of the
emulator; the script stops the proxy (Signzy's host down: connections refused, open ones cut) once 60
items are created. The batch's circuit breaker must stop it within seconds and the task fail saying
Signzy was unreachable; the script starts the proxy again, Airflow retries the task, and no item may be
created twice, every item accounted for as above.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

# The parts live in scripts/e2e_support/, one job per module. Other scripts import this module for the
# deployment (e2e_events.py, benchmarks/deferred_sensors.py): Deployment, ensure_prerequisites, free_port,
# airflow_env, Api, wait_for, BIN, and common (they set common.WORK, where the deployment puts its files).
from e2e_support import common
from e2e_support.api import Api
from e2e_support.common import BIN, LIFECYCLE, RETRIES, TIMEOUT, say, yes
from e2e_support.deployment import Deployment, airflow_env, ensure_prerequisites
from e2e_support.processes import free_port, port_open, wait_for
from e2e_support.scenario_batch import BATCH, run_batch
from e2e_support.scenario_load import final_figures, run_load
from e2e_support.scenario_outage import OUTAGE, run_outage
from e2e_support.scenario_paid_calls import run_paid_calls

REPO = Path(__file__).resolve().parents[1]
sys.path.append(str(REPO / "tests"))  # the test suite's outage proxy: one copy for the tests and this run
from outage import OutageProxy  # noqa: E402


def main() -> int:
    # SIGTERM (CI's time limit, a user's kill) becomes SystemExit, so the teardown below still runs.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    runs = int(os.environ.get("E2E_RUNS", "20"))
    paid_calls = os.environ.get("E2E_PAID_CALLS", "1") != "0"  # E2E_PAID_CALLS=0: skip the paid-call runs
    shutil.rmtree(common.WORK, ignore_errors=True)
    (common.WORK / "logs").mkdir(parents=True)
    deployment = Deployment(ensure_prerequisites())
    proxy: OutageProxy | None = None
    try:
        say("Starting PostgreSQL, Redis and the Signzy emulator on 127.0.0.1")
        db_url = deployment.start_postgres()
        broker = deployment.start_redis()
        emulator_url = deployment.start_emulator()
        proxy = OutageProxy(emulator_url).start()
        deployment.ports["outage-proxy"] = proxy.port
        api_port = free_port()
        env = airflow_env(db_url, broker, emulator_url, api_port, proxy.url)
        deployment.ports["api-server"] = api_port
        for name in (
            "SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER",
            "LOGGING__WORKER_LOG_SERVER",
            "LOGGING__TRIGGER_LOG_SERVER",
        ):
            deployment.ports[name.split("__")[1].lower()] = int(env[f"AIRFLOW__{name}_PORT"])
        say("Migrating the Airflow metadata DB (PostgreSQL)")
        with open(common.WORK / "logs" / "db-migrate.log", "wb") as log:
            subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=env, check=True, stdout=log, stderr=log)
        say("Starting api-server, scheduler, dag-processor, triggerer and a Celery worker (concurrency 4)")
        airflow = str(BIN / "airflow")
        deployment.spawn("api-server", [airflow, "api-server", "--port", str(api_port), "--host", "127.0.0.1"], env)
        deployment.spawn("scheduler", [airflow, "scheduler"], env)
        deployment.spawn("dag-processor", [airflow, "dag-processor"], env)
        deployment.spawn("triggerer", [airflow, "triggerer"], env)
        worker_argv = [airflow, "celery", "worker", "--concurrency", "4"]
        deployment.spawn("celery-worker", worker_argv, env)
        api = Api(f"http://127.0.0.1:{api_port}")
        wait_for(lambda: api.session.get(f"{api.base}/api/v2/monitor/health", timeout=5).ok, "api-server", 180)
        api.authenticate()
        wait_for(api.healthy, "scheduler", 180)
        dags = (LIFECYCLE, TIMEOUT, RETRIES, BATCH, OUTAGE)
        wait_for(lambda: all(api.call("GET", f"/dags/{d}") for d in dags), "the e2e DAGs", 180)
        rows = run_load(api, emulator_url, runs) if runs else []  # E2E_RUNS=0: the paid-call runs alone
        paid_rows, paid_runs = (
            run_paid_calls(api, emulator_url, deployment, worker_argv, env) if paid_calls else ([], [])
        )
        batch_rows, batch_identities = run_batch(api, emulator_url, deployment, worker_argv, env)
        outage_rows, outage_identities = run_outage(api, emulator_url, proxy)
        rows += paid_rows + batch_rows + outage_rows
        rows += final_figures(
            emulator_url, [f"load-{n:03d}" for n in range(runs)] + paid_runs, batch_identities + outage_identities
        )
    finally:
        say("Tearing down every process")
        if proxy is not None:
            proxy.stop()
        deployment.stop()
    left = [name for name, port in deployment.ports.items() if port_open(port)]
    processes = sum(p.poll() is None for p in deployment.processes.values()) + deployment.leftovers
    rows.append(
        [
            "processes / ports left after teardown",
            f"{processes} / {len(left)}",
            "0 / 0",
            yes(not left and not processes),
        ]
    )
    ok = all(row[3] != "**no**" for row in rows)
    print()
    print("| figure | measured | goal | met |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    (common.WORK / "results.md").write_text("\n".join("| " + " | ".join(r) + " |" for r in rows) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
