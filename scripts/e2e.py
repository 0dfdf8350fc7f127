"""`make e2e`: the provider on a real local Airflow deployment, under concurrent load and injected faults.

Starts on 127.0.0.1 only: PostgreSQL (a throw-away cluster), Redis, the Signzy emulator, and Airflow's
api-server, scheduler, dag-processor, triggerer and a Celery worker (concurrency 4), configured like
docker-compose.yaml. Drives it only through Airflow's REST API (authenticate, unpause, trigger, poll),
prints a table of figures against their goals, and tears everything down, also when it fails.
Exit code 0 only when every goal is met. E2E_RUNS sets the number of lifecycle runs (default 20).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow_provider_signzy.emulator.process import EmulatorControl

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / ".e2e"
BIN = Path(sys.executable).parent
API_KEY = "demo-api-key-0123456789"
LIFECYCLE, TIMEOUT = "signzy_e2e_lifecycle", "signzy_e2e_timeout"
TERMINAL = {"success", "failed"}


def say(message: str) -> None:
    print(f">> {message}", flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


# -- installing what is missing -------------------------------------------------------------------


def postgres_bin() -> Path | None:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return versions[-1].parent if versions else None


def ensure_prerequisites() -> Path:
    if postgres_bin() is None or shutil.which("redis-server") is None:
        say("Installing Debian's postgresql and redis-server")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, stdout=subprocess.DEVNULL)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "postgresql", "redis-server"],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
    try:
        import airflow.providers.celery.executors.celery_executor  # noqa: F401 - fails on celery 5.7
        import asyncpg  # noqa: F401 - Airflow 3.3 also opens an async engine on PostgreSQL
        import psycopg2  # noqa: F401
    except ImportError:
        say("Installing the Celery provider, psycopg2 and asyncpg into the virtual environment")
        from importlib.metadata import version

        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                f"apache-airflow=={version('apache-airflow')}",
                "apache-airflow-providers-celery",
                # celery 5.7 removed celery.backends.database.retry, which the Celery provider imports.
                "celery<5.7",
                "psycopg2-binary",
                "asyncpg",
            ],
            check=True,
        )
    pg = postgres_bin()
    assert pg is not None
    return pg


# -- the deployment --------------------------------------------------------------------------------


@dataclass
class Deployment:
    pg_bin: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    pg_data: Path | None = None

    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        log = open(WORK / "logs" / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        self.processes[name] = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True, cwd=WORK
        )

    def start_postgres(self) -> str:
        self.ports["postgres"] = port = free_port()
        self.pg_data = Path(tempfile.mkdtemp(prefix="signzy-e2e-pg-"))
        shutil.chown(self.pg_data, "postgres", "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
        subprocess.run(
            [
                *as_postgres,
                str(self.pg_bin / "initdb"),
                "-D",
                str(self.pg_data / "data"),
                "-U",
                "airflow",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        options = f"-p {port} -k {self.pg_data} -c listen_addresses=127.0.0.1 -c max_connections=300"
        subprocess.run(
            [
                *as_postgres,
                str(self.pg_bin / "pg_ctl"),
                "-D",
                str(self.pg_data / "data"),
                "-o",
                options,
                "-l",
                str(self.pg_data / "postgres.log"),
                "-w",
                "start",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        subprocess.run(
            [str(self.pg_bin / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "airflow", "airflow"], check=True
        )
        return f"postgresql+psycopg2://airflow@127.0.0.1:{port}/airflow"

    def start_redis(self) -> str:
        self.ports["redis"] = port = free_port()
        self.spawn(
            "redis",
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ],
        )
        wait_for(lambda: port_open(port), "redis", 30)
        return f"redis://127.0.0.1:{port}/0"

    def start_emulator(self) -> str:
        self.ports["emulator"] = port = free_port()
        self.spawn(
            "signzy-emulator",
            [str(BIN / "signzy-emulator"), "--port", str(port), "--token-log", str(WORK / "issued-tokens")],
        )
        wait_for(lambda: port_open(port), "emulator", 30)
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        for process in self.processes.values():
            with_suppressed(lambda p=process: os.killpg(p.pid, signal.SIGTERM))
        deadline = time.monotonic() + 30
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with_suppressed(lambda p=process: os.killpg(p.pid, signal.SIGKILL))
                process.wait(timeout=10)
        if self.pg_data is not None:
            subprocess.run(
                [
                    "runuser",
                    "-u",
                    "postgres",
                    "--",
                    str(self.pg_bin / "pg_ctl"),
                    "-D",
                    str(self.pg_data / "data"),
                    "-m",
                    "fast",
                    "-w",
                    "stop",
                ],
                check=False,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            shutil.rmtree(self.pg_data, ignore_errors=True)


def with_suppressed(action: Any) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        action()


def poll_until(check: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return True
        except Exception:  # noqa: S110 - not up yet: ask again
            pass
        time.sleep(0.5)
    return False


def wait_for(check: Any, what: str, seconds: float) -> None:
    if not poll_until(check, seconds):
        raise SystemExit(f"{what} was not ready within {seconds:.0f} s: see .e2e/logs/")


def airflow_env(db_url: str, broker: str, emulator_url: str, api_port: int) -> dict[str, str]:
    from cryptography.fernet import Fernet

    home = WORK / "airflow-home"
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")},
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "scripts" / "e2e_dags"),
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__CORE__PARALLELISM": "32",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": "signzy-e2e-" + os.urandom(8).hex(),
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db_url,
        "AIRFLOW__CELERY__BROKER_URL": broker,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + db_url,
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "4",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(WORK / "airflow-home" / "logs"),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "600",
        "AIRFLOW_CONN_SIGNZY_DEFAULT": json.dumps(
            {
                "conn_type": "signzy",
                "host": emulator_url,
                "login": "demo",
                "password": API_KEY,
                "extra": {"timeout": 2, "backoff_initial": 0.2, "backoff_max": 2, "max_attempts": 5},
            }
        ),
    }


# -- the REST API client ---------------------------------------------------------------------------


class Api:
    def __init__(self, base: str) -> None:
        import requests

        self.base = base
        self.session = requests.Session()

    def authenticate(self) -> None:
        answer = self.session.get(f"{self.base}/auth/token", timeout=30)
        answer.raise_for_status()
        self.session.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = self.session.request(method, f"{self.base}/api/v2{path}", timeout=60, **kwargs)
        answer.raise_for_status()
        return answer.json() if answer.content else None

    def healthy(self) -> bool:
        health = self.call("GET", "/monitor/health")
        return all(health.get(part, {}).get("status") == "healthy" for part in ("metadatabase", "scheduler"))


# -- the load and its figures ------------------------------------------------------------------------


def fault_plan(runs: int) -> list[dict[str, Any]]:
    identities = "/api/v2/patrons/*/identities"
    drops = max(1, runs // 6)
    return [
        {"path": "/api/v2/patrons/login", "every": 5, "fault": {"status": 502}},
        {"path": "/api/v2/patrons/login", "every": 7, "fault": {"status": 503}},
        {"path": identities, "method": "GET", "every": 4, "fault": {"status": 429, "retry_after": 1}},
        {"path": identities, "method": "GET", "every": 6, "fault": {"status": 403, "message": "rate limit"}},
        {"path": "/api/v2/patrons/*/identities/*", "every": 5, "times": 3, "fault": {"delay": 3}},
        {"path": identities, "method": "POST", "every": 4, "times": drops, "fault": {"drop": "after"}},
    ]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


def scan_for_secrets(tokens: list[str]) -> tuple[int, int]:
    """(files scanned, occurrences of any issued token or the API key) in every task and service log."""
    files = [p for p in (WORK / "airflow-home" / "logs").rglob("*") if p.is_file()]
    files += [p for p in (WORK / "logs").glob("*.log")]
    needles = [t.encode() for t in tokens] + [API_KEY.encode()]
    hits = 0
    for path in files:
        data = path.read_bytes()
        hits += sum(data.count(needle) for needle in needles)
    return len(files), hits


def run_load(api: Api, emulator_url: str, runs: int) -> tuple[list[list[str]], bool]:
    timeouts = max(1, runs // 10)
    failing = set(range(0, runs, 5))  # every 5th lifecycle run fails on purpose
    for dag_id in (LIFECYCLE, TIMEOUT):
        api.call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
    emulator = EmulatorControl(emulator_url)
    emulator.add_faults(fault_plan(runs))
    say(f"Triggering {runs} lifecycle runs ({len(failing)} fail on purpose) and {timeouts} timeout runs at once")
    started = time.monotonic()
    triggered: list[tuple[str, str, bool]] = []
    for n in range(runs):
        run = api.call(
            "POST",
            f"/dags/{LIFECYCLE}/dagRuns",
            json={"dag_run_id": f"load-{n:03d}", "logical_date": None, "conf": {"fail": n in failing}},
        )
        triggered.append((LIFECYCLE, run["dag_run_id"], n in failing))
    for n in range(timeouts):
        run = api.call(
            "POST", f"/dags/{TIMEOUT}/dagRuns", json={"dag_run_id": f"timeout-{n:03d}", "logical_date": None}
        )
        triggered.append((TIMEOUT, run["dag_run_id"], True))
    results: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 1500
    while len(results) < len(triggered) and time.monotonic() < deadline:
        for dag_id, run_id, _ in triggered:
            if run_id not in results:
                run = api.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
                if run["state"] in TERMINAL:
                    results[run_id] = run
        print(f"   {len(results)}/{len(triggered)} runs finished after {time.monotonic() - started:.0f} s", flush=True)
        time.sleep(5)
    wall = time.monotonic() - started
    if len(results) < len(triggered):
        raise SystemExit(f"only {len(results)} of {len(triggered)} runs finished within the time limit")

    # Every lifecycle run's outcome must be explained by the plan: asked to fail, or its paid POST was
    # cut off after Signzy acted (a dropped connection; a POST is never resent).
    unexplained, dropped_posts, expected_failed = [], 0, 0
    for dag_id, run_id, asked_to_fail in triggered:
        if dag_id == TIMEOUT:
            expected_failed += 1
            if results[run_id]["state"] != "failed":
                unexplained.append(f"{run_id}: {results[run_id]['state']} although it outlived its timeout")
            continue
        tis = api.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        states = {ti["task_id"]: ti["state"] for ti in tis}
        post_cut = states.get("create_identity") == "failed"
        dropped_posts += post_cut
        expected = "failed" if asked_to_fail or post_cut else "success"
        expected_failed += expected == "failed"
        if results[run_id]["state"] != expected or states.get("signzy_logout") != "success":
            unexplained.append(f"{run_id}: {results[run_id]['state']}, tasks {states}")
    durations = [
        (datetime.fromisoformat(r["end_date"]) - datetime.fromisoformat(r["start_date"])).total_seconds()
        for r in results.values()
        if r.get("start_date") and r.get("end_date")
    ]

    # The DAG processor runs DAG-level callbacks (the timeout runs' only revocation) a little later.
    poll_until(lambda: emulator.state()["live_tokens"] == 0, 120)
    state = emulator.state()
    tokens = (WORK / "issued-tokens").read_text().split()
    files, leaks = scan_for_secrets(tokens)
    succeeded = sum(1 for r in results.values() if r["state"] == "success")
    served = state["faults_by_kind"]
    posts = state["requests"].get("POST /api/v2/patrons/{userId}/identities", 0)
    created = state["identities_created"]
    rows = [
        ["runs triggered (lifecycle + timeout)", f"{runs} + {timeouts}", "-", "-"],
        [
            "runs succeeded / failed",
            f"{succeeded} / {len(results) - succeeded}",
            f"{len(triggered) - expected_failed} / {expected_failed} by the plan",
            yes(not unexplained),
        ],
        [
            "faults served",
            ", ".join(f"{k} x{v}" for k, v in sorted(served.items())),
            "each kind at least once",
            yes({"status-502", "status-503", "status-429", "status-403", "delay", "drop-after"} <= set(served)),
        ],
        [
            "dropped paid POSTs -> failed create tasks",
            f"{served.get('drop-after', 0)} -> {dropped_posts}",
            "equal",
            yes(served.get("drop-after", 0) == dropped_posts),
        ],
        ["logins per run", f"{state['logins'] / len(triggered):.2f}", "1.00", yes(state["logins"] == len(triggered))],
        [
            "POSTs received per created identity",
            f"{posts / max(created, 1):.2f} ({posts}/{created})",
            "1.00",
            yes(posts == created and created == runs),
        ],
        ["live tokens at the end", str(state["live_tokens"]), "0", yes(state["live_tokens"] == 0)],
        [f"token or API key in {files} log files", str(leaks), "0", yes(leaks == 0 and files > 0 and bool(tokens))],
        ["wall time for the whole load", f"{wall:.0f} s", "-", "-"],
        [
            "run duration p50 / p95",
            f"{percentile(durations, 0.5):.0f} s / {percentile(durations, 0.95):.0f} s",
            "-",
            "-",
        ],
    ]
    for line in unexplained:
        print(f"   unexplained: {line}")
    return rows, all(row[3] != "**no**" for row in rows)


def yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def main() -> int:
    # SIGTERM (CI's time limit, a user's kill) becomes SystemExit, so the teardown below still runs.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    runs = int(os.environ.get("E2E_RUNS", "20"))
    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "logs").mkdir(parents=True)
    deployment = Deployment(ensure_prerequisites())
    try:
        say("Starting PostgreSQL, Redis and the Signzy emulator on 127.0.0.1")
        db_url = deployment.start_postgres()
        broker = deployment.start_redis()
        emulator_url = deployment.start_emulator()
        api_port = free_port()
        env = airflow_env(db_url, broker, emulator_url, api_port)
        say("Migrating the Airflow metadata DB (PostgreSQL)")
        with open(WORK / "logs" / "db-migrate.log", "wb") as log:
            subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=env, check=True, stdout=log, stderr=log)
        say("Starting api-server, scheduler, dag-processor, triggerer and a Celery worker (concurrency 4)")
        airflow = str(BIN / "airflow")
        deployment.spawn("api-server", [airflow, "api-server", "--port", str(api_port), "--host", "127.0.0.1"], env)
        deployment.spawn("scheduler", [airflow, "scheduler"], env)
        deployment.spawn("dag-processor", [airflow, "dag-processor"], env)
        deployment.spawn("triggerer", [airflow, "triggerer"], env)
        deployment.spawn("celery-worker", [airflow, "celery", "worker", "--concurrency", "4"], env)
        api = Api(f"http://127.0.0.1:{api_port}")
        wait_for(lambda: api.session.get(f"{api.base}/api/v2/monitor/health", timeout=5).ok, "api-server", 180)
        api.authenticate()
        wait_for(api.healthy, "scheduler", 180)
        wait_for(
            lambda: api.call("GET", f"/dags/{LIFECYCLE}") and api.call("GET", f"/dags/{TIMEOUT}"), "the e2e DAGs", 180
        )
        rows, ok = run_load(api, emulator_url, runs)
    finally:
        say("Tearing down every process")
        deployment.stop()
    left = [name for name, port in deployment.ports.items() if port_open(port)]
    rows.append(
        [
            "processes / ports left after teardown",
            f"{sum(p.poll() is None for p in deployment.processes.values())} / {len(left)}",
            "0 / 0",
            yes(not left),
        ]
    )
    ok = ok and not left
    print()
    print("| figure | measured | goal | met |")
    print("|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    (WORK / "results.md").write_text("\n".join("| " + " | ".join(r) + " |" for r in rows) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
