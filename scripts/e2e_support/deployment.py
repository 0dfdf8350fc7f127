"""The local deployment: PostgreSQL, Redis, the Signzy emulator and Airflow's processes on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import common
from .common import API_KEY, BIN, REPO, say
from .processes import free_port, port_open, process_table, process_tree, wait_for, with_suppressed

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
    except ImportError as exc:
        # The e2e extra, pinned by the line's freeze: `make e2e` and `make bench-sensors` install it.
        raise SystemExit(f"{exc.name} is missing: run this through make e2e, which installs the e2e extra") from exc
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
        log = open(common.WORK / "logs" / f"{log_name or name}.log", "wb")  # noqa: SIM115 - closed with the process
        self.processes[name] = process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True, cwd=common.WORK
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
            [str(BIN / "signzy-emulator"), "--port", str(port), "--token-log", str(common.WORK / "issued-tokens")],
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


def airflow_env(db_url: str, broker: str, emulator_url: str, api_port: int, outage_url: str) -> dict[str, str]:
    from cryptography.fernet import Fernet

    home = common.WORK / "airflow-home"
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
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(common.WORK / "airflow-home" / "logs"),
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
