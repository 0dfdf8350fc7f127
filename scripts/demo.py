"""`make demo`: the example DAGs, run by real Airflow against a local Signzy emulator.

Starts the emulator on a free port, prepares a throw-away AIRFLOW_HOME (SQLite), runs with `airflow dags
test` the lifecycle DAG, the DAG that fails on purpose, the deferrable wait, the TaskFlow DAG (retries=2)
with the answer to its second paid POST lost (it must fail at once without sending it again), and the
batch DAG (25 customers in one task), and the products DAG (PANs verified by product name, one
malformed PAN never sent), and prints what each showed. Then the event-driven example: a small
local Airflow (api-server, scheduler, dag-processor, triggerer; LocalExecutor on its own SQLite DB) runs
``signzy_on_identity_verified``; identities verified at the emulator start one run each, and the triggerer
is restarted in the middle (none may run twice, none be lost). After each DAG, it asks the emulator
for the identities it holds (the DAG's customers: synthetic) and looks for their personal data in the
clear in the metadata DB (all but what the DAG's author wrote), the task logs and the DAG's console output
(``scripts/demo_pii_scan.py``). Exit code 0 when all behaved as they should, no token was left alive and
no personal data was found in the clear.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from airflow_provider_signzy.emulator.process import EmulatorControl, emulator_process

sys.path.insert(0, str(Path(__file__).resolve().parent))
import event_driven  # scripts/event_driven.py, shared with make e2e and make bench-sensors

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / ".demo"
BIN = Path(sys.executable).parent
PATRON, API_KEY = "demo", "demo-api-key-0123456789"
WAIT_DAG = "signzy_wait_for_verification"
PAID_DAG = "signzy_taskflow"  # retries=2; here the answer to its second paid POST is lost
PAID_POSTS = "POST /api/v2/patrons/{userId}/identities"
PRODUCTS_DAG = "signzy_pan_verification"
#: The customers of the products example (in its essentials, not in identities): looked for like the others.
PRODUCTS_DAG_VALUES = (
    "ABCDE1234F",
    "FGHIJ5678K",
    "KLMNO2468P",
    "PQRST1357U",
    "UVWXY9753Z",
    "RAVI KUMAR",
    "ANITA SHARMA",
    "PRIYA MISMATCH",
    "VIKRAM SINGH",
    "MEERA NAIR",
)
#: An identity's fields that hold a customer's personal data (and each entry of its ``images``).
PERSONAL_FIELDS = ("email", "name", "pan", "dob", "address", "phone", "aadhaar", "images")


@dataclass
class DagOutcome:
    dag_id: str
    expected: str
    state: str
    logins: int
    calls: int
    revoked: int
    live: int
    seconds: float
    expected_logins: int = 1
    paid_posts: int = 0
    expected_posts: int | None = None
    said_charged: bool = False
    must_say_charged: bool = False
    #: Personal values looked for, and where they were found in the clear (None: the scan failed).
    pii_values: int = 0
    pii: list[dict[str, str]] | None = field(default_factory=list)

    @property
    def as_expected(self) -> bool:
        return (
            self.state == self.expected
            and self.live == 0
            and self.logins == self.expected_logins
            and self.revoked >= self.expected_logins
            and self.expected_posts in (None, self.paid_posts)
            and (self.said_charged or not self.must_say_charged)
        )


def say(message: str) -> None:
    print(f">> {message}", flush=True)


def airflow_env(emulator_url: str) -> dict[str, str]:
    home = WORK / "airflow-home"
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags_examples"),
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW_CONN_SIGNZY_DEFAULT": json.dumps(
            {
                "conn_type": "signzy",
                "host": emulator_url,
                "login": PATRON,
                "password": API_KEY,
                "extra": {"backoff_initial": 0.2},
            }
        ),
    }


def personal_values(identities: list[dict[str, Any]]) -> list[str]:
    """The personal data of the identities the emulator holds: every string (or number) in their personal fields."""
    values: set[str] = set()

    def collect(item: Any) -> None:
        if isinstance(item, dict):
            for value in item.values():
                collect(value)
        elif isinstance(item, list | tuple):
            for value in item:
                collect(value)
        elif isinstance(item, str | int | float) and not isinstance(item, bool) and str(item).strip():
            values.add(str(item))

    for identity in identities:
        for name in PERSONAL_FIELDS:
            collect(identity.get(name))
    return sorted(values)


def scan_for_pii(
    dag_id: str, values: list[str], env: dict[str, str], *, log_root: Path | None = None
) -> list[dict[str, str]] | None:
    """Where ``values`` are in the clear (DB, logs, the DAG's console output); None when the scan failed."""
    if not values:
        return []
    request = {
        "values": values,
        "console_file": str(WORK / f"{dag_id}.log"),
        "log_root": str(log_root or WORK / "airflow-home" / "logs"),
    }
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "demo_pii_scan.py")],
        input=json.dumps(request),
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        (WORK / f"{dag_id}.pii.log").write_text(result.stdout + result.stderr)
        return None
    findings: list[dict[str, str]] = json.loads(result.stdout.strip().splitlines()[-1])
    (WORK / f"{dag_id}.pii.json").write_text(json.dumps(findings, indent=2) + "\n")
    return findings


def pii_line(o: DagOutcome) -> str:
    """``personal data in the clear: N (goal 0)``, with where (and which values) when N > 0."""
    if o.pii is None:
        return f"BAD {o.dag_id}: personal data in the clear: scan failed (see .demo/{o.dag_id}.pii.log)"
    line = f"{'OK ' if not o.pii else 'BAD'} {o.dag_id}: personal data in the clear: {len(o.pii)} (goal 0)"
    if not o.pii:
        return f"{line}; looked for {o.pii_values} values"
    by_place: dict[str, list[str]] = {}
    for finding in o.pii:
        by_place.setdefault(finding["where"], []).append(finding["value"])
    places = []
    for where, found in by_place.items():
        shown = ", ".join(repr(v) for v in found[:2]) + (f" +{len(found) - 2} more" if len(found) > 2 else "")
        places.append(f"{where.replace(str(WORK) + os.sep, '.demo/')} ({shown})")
    return f"{line} in: " + "; ".join(places) + f" (all: .demo/{o.dag_id}.pii.json)"


def run_dag(
    dag_id: str,
    expected: str,
    env: dict[str, str],
    emulator: EmulatorControl,
    *,
    expected_logins: int = 1,
    expected_posts: int | None = None,
) -> DagOutcome:
    emulator.reset()
    if dag_id == WAIT_DAG:
        # The customer "verifies" two seconds after the identity is created; the sensor polls every second.
        emulator.auto_status("verified", after=2)
        env = {**env, "SIGNZY_EXAMPLE_POKE_INTERVAL": "1"}
    if dag_id == PAID_DAG:
        emulator.add_faults(
            {"path": "/api/v2/patrons/*/identities", "method": "POST", "faults": [None, {"drop": "after"}]}
        )
    say(f"Running {dag_id} with `airflow dags test` (log: .demo/{dag_id}.log)")
    started = time.monotonic()
    with open(WORK / f"{dag_id}.log", "wb") as log:
        result = subprocess.run(
            [str(BIN / "airflow"), "dags", "test", dag_id], env=env, stdout=log, stderr=subprocess.STDOUT, check=False
        )
    seconds = time.monotonic() - started
    state = emulator.state()
    values = personal_values(emulator.identities())
    if dag_id == PRODUCTS_DAG:
        source = (REPO / "dags_examples" / f"{dag_id}.py").read_text()
        missing = [v for v in PRODUCTS_DAG_VALUES if v not in source]
        assert not missing, f"the demo looks for values {dag_id} no longer sends: {missing}"
        values = sorted({*values, *PRODUCTS_DAG_VALUES})
    pii = scan_for_pii(dag_id, values, env)
    requests = state["requests"]
    auth_calls = sum(n for route, n in requests.items() if route.endswith(("/login", "/logout")))
    return DagOutcome(
        dag_id=dag_id,
        expected=expected,
        state="success" if result.returncode == 0 else "failed",
        logins=state["logins"],
        calls=state["total_requests"] - auth_calls,
        revoked=state["logouts"],
        live=state["live_tokens"],
        seconds=seconds,
        expected_logins=expected_logins,
        paid_posts=requests.get(PAID_POSTS, 0),
        expected_posts=expected_posts,
        must_say_charged=dag_id == PAID_DAG,
        said_charged="may have been charged" in (WORK / f"{dag_id}.log").read_text(errors="replace"),
        pii_values=len(values),
        pii=pii,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LocalAirflow:
    """api-server, scheduler, dag-processor and triggerer on 127.0.0.1 (LocalExecutor, SQLite), as
    `airflow standalone` runs them, for the event-driven example; logs in .demo/events-logs/."""

    COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")

    def __init__(self, emulator_url: str) -> None:
        self.home = WORK / "events-home"
        self.logs = WORK / "events-logs"
        dags = WORK / "event-dags"  # this DAG alone: the others are scheduled daily and would run too
        for folder in (self.home, self.logs, dags):
            folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / "dags_examples" / "signzy_start_on_verification.py", dags)
        self.api_port = free_port()
        self.env = {
            **airflow_env(emulator_url),
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.api_port}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": "signzy-demo-" + os.urandom(8).hex(),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__MAXIMUM_PAGE_LIMIT": "1000",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
            "SIGNZY_EXAMPLE_POLL_INTERVAL": "1",
        }
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.starts: dict[str, int] = {}

    def start(self, name: str) -> None:
        self.starts[name] = self.starts.get(name, 0) + 1
        log = open(self.logs / f"{name}-{self.starts[name]}.log", "wb")  # noqa: SIM115 - closed with the process
        self.processes[name] = subprocess.Popen(
            [str(BIN / "airflow"), *name.split()],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self, name: str) -> None:
        process = self.processes.pop(name)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)

    def __enter__(self) -> LocalAirflow:
        subprocess.run(
            [str(BIN / "airflow"), "db", "migrate"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
        )
        for name in self.COMPONENTS:
            self.start(name)
        return self

    def __exit__(self, *exc: object) -> None:
        for name in list(self.processes):
            self.stop(name)

    def console(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.logs.glob("*.log")))


def run_event_dag(emulator: EmulatorControl) -> tuple[DagOutcome, event_driven.EventOutcome | None]:
    """The event-driven example on a local Airflow: 3 verified, the triggerer restarted while 1 more is
    verified, then 2 more; every identity must cause one asset event and one run."""
    dag_id = event_driven.DAG_ID
    emulator.reset()
    say(f"Running {dag_id} on a local Airflow: api-server, scheduler, dag-processor, triggerer (.demo/events-logs)")
    started = time.monotonic()
    outcome: event_driven.EventOutcome | None = None
    airflow = LocalAirflow(emulator.url)
    with airflow:
        api = event_driven.RestApi(f"http://127.0.0.1:{airflow.api_port}")
        try:
            event_driven.wait_until(
                lambda: api.session.get(f"{api.base}/api/v2/monitor/health", timeout=5).ok, "api-server", 300
            )
            api.authenticate()
            say("Waiting for the DAG to be parsed and its watcher's first poll in the triggerer")
            event_driven.watcher_ready(emulator, api)

            def restart_triggerer(while_down: Any) -> None:
                say("Restarting the triggerer (SIGTERM, then a new one)")
                airflow.stop("triggerer")
                while_down()
                airflow.start("triggerer")

            outcome = event_driven.run_stream(
                api, emulator, emulator.url, before=3, during=1, after=2, spacing=4, restart_triggerer=restart_triggerer
            )
        except (TimeoutError, OSError) as exc:
            say(f"{dag_id}: {exc}")
    seconds = time.monotonic() - started
    (WORK / f"{dag_id}.log").write_text(airflow.console())
    state = emulator.state()
    values = personal_values(emulator.identities())
    pii = scan_for_pii(dag_id, values, airflow.env, log_root=airflow.home / "logs")
    ok = outcome is not None and outcome.each_once and outcome.runs_succeeded == outcome.runs
    requests = state["requests"]
    auth_calls = sum(n for route, n in requests.items() if route.endswith(("/login", "/logout")))
    runs = outcome.runs if outcome else 0
    return DagOutcome(
        dag_id=dag_id,
        expected="success",
        state="success" if ok else "failed",
        logins=state["logins"],
        calls=state["total_requests"] - auth_calls,
        revoked=state["logouts"],
        live=state["live_tokens"],
        seconds=seconds,
        # One per run, one per triggerer start, and the demo's own (it creates the identities, as an app would).
        expected_logins=runs + airflow.starts.get("triggerer", 1) + 1,
        pii_values=len(values),
        pii=pii,
    ), outcome


def report(outcomes: list[DagOutcome], events: event_driven.EventOutcome | None = None) -> None:
    print()
    print(
        f"{'DAG':<28} {'state':<8} {'logins':>6} {'calls':>5} {'revoked':>7} {'live tokens':>11} {'time':>6} "
        f"{'PII in clear':>12}"
    )
    for o in outcomes:
        pii = "scan failed" if o.pii is None else str(len(o.pii))
        print(
            f"{o.dag_id:<28} {o.state:<8} {o.logins:>6} {o.calls:>5} {o.revoked:>7} {o.live:>11} {o.seconds:>5.0f}s "
            f"{pii:>12}"
        )
    print()
    lifecycle, failing, waiting, paid, batch, products, on_verified = outcomes
    print(
        f"{'OK ' if lifecycle.as_expected else 'BAD'} {lifecycle.dag_id}: {lifecycle.calls} Signzy calls on "
        f"{lifecycle.logins} login; the logout teardown revoked the token; {lifecycle.live} live tokens left."
    )
    print(
        f"{'OK ' if failing.as_expected else 'BAD'} {failing.dag_id}: failed on purpose ({failing.state}), and "
        f"still left {failing.live} live tokens: the task callback and the teardown revoked it."
    )
    print(
        f"{'OK ' if waiting.as_expected else 'BAD'} {waiting.dag_id}: the deferred sensor waited in the "
        f"triggerer until the emulator moved the identity to 'verified' ({waiting.calls} calls, polls included); "
        f"{waiting.logins} logins (the run's and the triggerer's shared one), {waiting.live} live tokens left."
    )
    print(
        f"{'OK ' if paid.as_expected else 'BAD'} {paid.dag_id}: retries=2, and the answer to its 2nd paid POST was "
        f"lost: Signzy got {paid.paid_posts} POSTs, not more; the task failed at once, without retries, saying "
        f"the call {'may have been charged' if paid.said_charged else '(message missing!)'}; {paid.live} live tokens."
    )
    print(
        f"{'OK ' if batch.as_expected else 'BAD'} {batch.dag_id}: {batch.paid_posts} customers verified in one "
        f"task on {batch.logins} login, {batch.live} live tokens left."
    )
    print(
        f"{'OK ' if products.as_expected else 'BAD'} {products.dag_id}: PANs verified by product name "
        f"(pan.verification): {products.paid_posts} identities and their snoops on {products.logins} login, the "
        f"malformed PAN never sent; {products.live} live tokens left."
    )
    if events is None:
        print(f"BAD {on_verified.dag_id}: did not finish (see .demo/events-logs/)")
    else:
        twice, missing, not_run = events.twice, events.missing, events.not_run
        print(
            f"{'OK ' if on_verified.as_expected else 'BAD'} {on_verified.dag_id}: {len(events.verified)} identities "
            f"verified at Signzy -> {sum(events.events_per_identity.values())} asset events -> {events.runs} DAG runs "
            f"({events.runs_succeeded} succeeded); the triggerer was restarted while one was verified; each "
            f"identity once: {'yes' if events.each_once else 'NO'} (twice: {len(twice)}, no event: {len(missing)}, "
            f"no run: {len(not_run)}); "
            f"status change -> asset event {events.latency(events.to_event)}, -> run queued "
            f"{events.latency(events.to_run)} (p50 / max); {on_verified.logins} logins (one per run, one per "
            f"triggerer start, the demo's own), {on_verified.live} live tokens left."
        )
    print()
    for o in outcomes:
        print(pii_line(o))


def main() -> int:
    # SIGTERM (a time limit, a user's kill) becomes SystemExit, so the local Airflow below is torn down.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir()
    say("Starting the Signzy emulator on a free local port")
    with open(WORK / "emulator.log", "wb") as emulator_log, emulator_process(stderr=emulator_log) as emulator:
        say(f"Emulator at {emulator.url}; connection signzy_default points there")
        env = airflow_env(emulator.url)
        say("Preparing a throw-away Airflow home with a SQLite DB (.demo/airflow-home)")
        subprocess.run(
            [str(BIN / "airflow"), "db", "migrate"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
        )
        outcomes = [
            run_dag("signzy_token_lifecycle", "success", env, emulator),
            run_dag("signzy_failure_revocation", "failed", env, emulator),
            run_dag(WAIT_DAG, "success", env, emulator, expected_logins=2),
            run_dag(PAID_DAG, "failed", env, emulator, expected_posts=2),
            run_dag("signzy_batch_verification", "success", env, emulator, expected_posts=25),
            run_dag(PRODUCTS_DAG, "success", env, emulator, expected_posts=5),
        ]
        on_verified, events = run_event_dag(emulator)
        outcomes.append(on_verified)
    report(outcomes, events)
    return 0 if all(o.as_expected and o.pii == [] for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
