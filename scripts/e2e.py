"""`make e2e`: the provider on a real local Airflow deployment, under concurrent load and injected faults.

Starts on 127.0.0.1 only: PostgreSQL (a throw-away cluster), Redis, the Signzy emulator, and Airflow's
api-server, scheduler, dag-processor, triggerer and a Celery worker (concurrency 4), configured like
docker-compose.yaml. Drives it only through Airflow's REST API (authenticate, unpause, trigger, poll),
prints a table of figures against their goals, and tears everything down, also when it fails.
Exit code 0 only when every goal is met. E2E_RUNS sets the number of lifecycle runs (default 20).

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
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow_provider_signzy.emulator.process import EmulatorControl

REPO = Path(__file__).resolve().parents[1]
sys.path.append(str(REPO / "tests"))  # the test suite's outage proxy: one copy for the tests and this run
from outage import OutageProxy  # noqa: E402

WORK = REPO / ".e2e"
BIN = Path(sys.executable).parent
API_KEY = "demo-api-key-0123456789"
LIFECYCLE, TIMEOUT, RETRIES = "signzy_e2e_lifecycle", "signzy_e2e_timeout", "signzy_e2e_retries"
TERMINAL = {"success", "failed"}
IDENTITIES = "/api/v2/patrons/*/identities"
POSTS = "POST /api/v2/patrons/{userId}/identities"  # the emulator's request count for paid POSTs
CHARGED = "may have been charged"  # what a retried task whose paid call has an unknown outcome must say
HOLD_SECONDS = 45  # a held answer; the patient connection's read timeout (90 s) outlasts it


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
    leftovers: int = 0

    def spawn(
        self, name: str, argv: list[str], env: dict[str, str] | None = None, *, log_name: str | None = None
    ) -> subprocess.Popen[bytes]:
        log = open(WORK / "logs" / f"{log_name or name}.log", "wb")  # noqa: SIM115 - closed with the process
        self.processes[name] = process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True, cwd=WORK
        )
        return process

    def descendants(self) -> set[int]:
        """Every live process under the ones we started: Airflow 3 puts each task process in a group of
        its own, so killing our process groups alone could leave task processes behind."""
        table = process_table()
        return {pid for process in self.processes.values() for pid in process_tree(process.pid, table)}

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
        tree = self.descendants()
        for process in self.processes.values():
            with_suppressed(lambda p=process: os.killpg(p.pid, signal.SIGTERM))
        deadline = time.monotonic() + 30
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with_suppressed(lambda p=process: os.killpg(p.pid, signal.SIGKILL))
                process.wait(timeout=10)
        for pid in tree & set(process_table()):  # task processes in groups of their own
            with_suppressed(lambda pid=pid: os.kill(pid, signal.SIGKILL))
        self.leftovers = len(tree & set(process_table())) if tree else 0
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


# -- processes and sockets, read from /proc ---------------------------------------------------------


def process_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, process group) of every live process (zombies are dead already)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()  # the command name may hold spaces
            if fields[0] not in ("Z", "X"):
                table[int(entry.name)] = (int(fields[1]), int(fields[2]))
    return table


def process_tree(root: int, table: dict[int, tuple[int, int]]) -> set[int]:
    """``root`` and every live process below it."""
    tree, frontier = set(), {root} & set(table)
    while frontier:
        tree |= frontier
        frontier = {pid for pid, (parent, _) in table.items() if parent in frontier} - tree
    return tree


def command_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()[:90]
    except OSError:
        return "?"


def pids_holding(client_port: int, server_port: int) -> set[int]:
    """The processes that hold the TCP connection from 127.0.0.1:client_port to server_port."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, inode = (
                int(fields[1].rsplit(":", 1)[1], 16),
                int(fields[2].rsplit(":", 1)[1], 16),
                fields[9],
            )
            if (local, remote) == (client_port, server_port) and inode != "0":  # 0: TIME_WAIT, no owner
                inodes.add(f"socket:[{inode}]")
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if any(os.readlink(fd) in inodes for fd in (entry / "fd").iterdir()):
                    pids.add(int(entry.name))
    return pids


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


def airflow_env(db_url: str, broker: str, emulator_url: str, api_port: int, outage_url: str) -> dict[str, str]:
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
        # A task whose worker died is retried once its heartbeat is this old (default 300 s, checked every
        # 10 s): seconds here, so the worker-kill runs end quickly. Supervisors heartbeat every 5 s.
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
        "AIRFLOW_CONN_SIGNZY_DEFAULT": signzy_connection(emulator_url, timeout=2),
        # The paid-call runs: a read timeout longer than a held answer keeps the POST in flight for the kill.
        "AIRFLOW_CONN_SIGNZY_E2E_PATIENT": signzy_connection(emulator_url, timeout=90),
        # The outage run: Signzy behind a proxy the script stops and starts again.
        "AIRFLOW_CONN_SIGNZY_E2E_OUTAGE": signzy_connection(outage_url, timeout=5),
    }


def signzy_connection(emulator_url: str, *, timeout: float) -> str:
    return json.dumps(
        {
            "conn_type": "signzy",
            "host": emulator_url,
            "login": "demo",
            "password": API_KEY,
            "extra": {"timeout": timeout, "backoff_initial": 0.2, "backoff_max": 2, "max_attempts": 5},
        }
    )


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


def run_load(api: Api, emulator_url: str, runs: int) -> list[list[str]]:
    timeouts = max(1, runs // 10)
    failing = set(range(0, runs, 5))  # every 5th lifecycle run fails on purpose
    for dag_id in (LIFECYCLE, TIMEOUT):
        api.call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
    emulator = EmulatorControl(emulator_url)
    emulator.add_faults(fault_plan(runs))
    say(f"Triggering {runs} lifecycle runs ({len(failing)} fail on purpose) and {timeouts} timeout runs at once")
    started = time.monotonic()
    triggered: list[tuple[str, str, bool]] = []
    # The timeout runs first: on a busy machine their login must not wait behind every lifecycle run's
    # for a worker slot until their 25 s dagrun_timeout has passed (then nothing logs in to revoke).
    for n in range(timeouts):
        run = api.call(
            "POST", f"/dags/{TIMEOUT}/dagRuns", json={"dag_run_id": f"timeout-{n:03d}", "logical_date": None}
        )
        triggered.append((TIMEOUT, run["dag_run_id"], True))
    for n in range(runs):
        run = api.call(
            "POST",
            f"/dags/{LIFECYCLE}/dagRuns",
            json={"dag_run_id": f"load-{n:03d}", "logical_date": None, "conf": {"fail": n in failing}},
        )
        triggered.append((LIFECYCLE, run["dag_run_id"], n in failing))
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
    succeeded = sum(1 for r in results.values() if r["state"] == "success")
    served = state["faults_by_kind"]
    posts = state["requests"].get(POSTS, 0)
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
    return rows


def final_figures(emulator_url: str, paying_runs: list[str], batch_identities: int = 0) -> list[list[str]]:
    """Paid calls per run (each intends one), live tokens and the secret scan, once every run is over.
    ``batch_identities``: those the batch run created (its own figures account for them)."""
    emulator = EmulatorControl(emulator_url)
    sent = posts_by_run(emulator_url)
    twice = {run_id: sent[run_id] for run_id in paying_runs if sent[run_id] > 1}
    for run_id, count in sorted(twice.items()):
        print(f"   sent twice: {run_id} sent its paid POST {count} times")
    total = sum(sent[run_id] for run_id in paying_runs)
    created = emulator.state()["identities_created"] - batch_identities
    poll_until(lambda: emulator.state()["live_tokens"] == 0, 60)
    live = emulator.state()["live_tokens"]
    tokens = (WORK / "issued-tokens").read_text().split()
    files, leaks = scan_for_secrets(tokens)
    return [
        [
            "paid calls intended / sent (all runs)",
            f"{len(paying_runs)} / {total}",
            "equal",
            yes(total == len(paying_runs) == created),
        ],
        ["paid POSTs sent twice (runs)", str(len(twice)), "0", yes(not twice)],
        ["live tokens at the end", str(live), "0", yes(live == 0)],
        [f"token or API key in {files} log files", str(leaks), "0", yes(leaks == 0 and files > 0 and bool(tokens))],
    ]


# -- paid calls across Airflow's own retries and SIGKILLs (issue 9) ---------------------------------


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


def trigger(api: Api, dag_id: str, run_ids: list[str]) -> None:
    for run_id in run_ids:
        api.call("POST", f"/dags/{dag_id}/dagRuns", json={"dag_run_id": run_id, "logical_date": None})


def wait_runs(api: Api, dag_id: str, run_ids: list[str], seconds: float) -> None:
    finished: set[str] = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for run_id in sorted(set(run_ids) - finished):
            if api.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"] in TERMINAL:
                finished.add(run_id)
        if len(finished) == len(run_ids):
            return
        time.sleep(2)
    raise SystemExit(f"only {len(finished)} of {len(run_ids)} {dag_id} runs finished within {seconds:.0f} s")


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


def posts_by_run(emulator_url: str) -> Counter[str]:
    """Identities at the emulator per run id (each body's email is ``<run_id>@example.com``), read as a
    user would check at Signzy: log in, list the patron's identities, log out."""
    import requests

    with requests.Session() as session:
        answer = session.post(
            f"{emulator_url}/api/v2/patrons/login", json={"username": "demo", "password": API_KEY}, timeout=10
        )
        answer.raise_for_status()
        token = answer.json()
        try:
            listed = session.get(
                f"{emulator_url}/api/v2/patrons/{token['userId']}/identities",
                headers={"Authorization": token["id"]},
                timeout=30,
            )
            listed.raise_for_status()
            return Counter(str(i.get("email", "")).removesuffix("@example.com") for i in listed.json())
        finally:
            session.post(f"{emulator_url}/api/v2/patrons/logout", headers={"Authorization": token["id"]}, timeout=10)


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


# -- a batch of paid calls whose worker is killed mid-batch (issue 12) -------------------------------

BATCH, BATCH_TASK = "signzy_e2e_batch", "create_identities"
BATCH_ITEMS = 300  # as in scripts/e2e_dags/signzy_e2e_batch.py
BATCH_HOLD_AFTER, BATCH_HELD = 120, 3  # POSTs 121 to 123 of the batch are held: the kill comes then


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
    created = [sent[f"{run_id}.i{n:03d}"] for n in range(BATCH_ITEMS)]
    stray = sum(c for key, c in sent.items() if key.startswith(f"{run_id}.")) - sum(created)
    twice = [n for n, count in enumerate(created) if count > 1]
    outcomes = Counter(str(r.get("outcome")) for r in results)
    unaccounted = []
    for n in range(BATCH_ITEMS):
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
        print(f"   sent twice: batch item {n} created {created[n]} times")
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
    created = [sent[f"{run_id}.i{n:03d}"] for n in range(OUTAGE_ITEMS)]
    stray = sum(c for key, c in sent.items() if key.startswith(f"{run_id}.")) - sum(created)
    twice = [n for n, count in enumerate(created) if count > 1]
    outcomes = Counter(str(r.get("outcome")) for r in results)
    unaccounted = []
    for n in range(OUTAGE_ITEMS):
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
        print(f"   sent twice: outage item {n} created {created[n]} times")
    replayed, unknown, fresh = outcomes["replayed"], outcomes["unknown"], outcomes["succeeded"]
    print(
        f"   {run_id}: {OUTAGE_TASK} {ti['state']} after {ti['try_number']} tries (try 1: {first_state}); "
        f"outcomes {dict(outcomes)}; {at_outage} items created by the outage, {sum(created)} in all"
    )
    rows = [
        [
            f"outage run: Signzy down after {reached} of {OUTAGE_ITEMS} paid POSTs -> the batch's try ended",
            f"{stopped_after:.1f} s later, {first_state}, 'Signzy was unreachable' {yes(unreachable_said)}",
            f"<= {OUTAGE_STOP_WITHIN:.0f} s, failed, says so",
            yes(stopped_after <= OUTAGE_STOP_WITHIN and first_state == "failed" and unreachable_said),
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


def yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def main() -> int:
    # SIGTERM (CI's time limit, a user's kill) becomes SystemExit, so the teardown below still runs.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    runs = int(os.environ.get("E2E_RUNS", "20"))
    paid_calls = os.environ.get("E2E_PAID_CALLS", "1") != "0"  # E2E_PAID_CALLS=0: skip the paid-call runs
    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "logs").mkdir(parents=True)
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
        with open(WORK / "logs" / "db-migrate.log", "wb") as log:
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
    (WORK / "results.md").write_text("\n".join("| " + " | ".join(r) + " |" for r in rows) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
