"""`make demo`: the example DAGs, run by real Airflow against a local Signzy emulator.

Starts the emulator on a free port, prepares a throw-away AIRFLOW_HOME (SQLite), runs with `airflow dags
test` the lifecycle DAG, the DAG that fails on purpose, the deferrable wait, the TaskFlow DAG (retries=2)
with the answer to its second paid POST lost (it must fail at once without sending it again), and the
batch DAG (25 customers in one task), and prints what each showed. Exit code 0 when all behaved as they
should and no token was left alive.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet

from airflow_provider_signzy.emulator.process import EmulatorControl, emulator_process

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / ".demo"
BIN = Path(sys.executable).parent
PATRON, API_KEY = "demo", "demo-api-key-0123456789"
WAIT_DAG = "signzy_wait_for_verification"
PAID_DAG = "signzy_taskflow"  # retries=2; here the answer to its second paid POST is lost
PAID_POSTS = "POST /api/v2/patrons/{userId}/identities"


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
    )


def report(outcomes: list[DagOutcome]) -> None:
    print()
    print(f"{'DAG':<28} {'state':<8} {'logins':>6} {'calls':>5} {'revoked':>7} {'live tokens':>11} {'time':>6}")
    for o in outcomes:
        print(f"{o.dag_id:<28} {o.state:<8} {o.logins:>6} {o.calls:>5} {o.revoked:>7} {o.live:>11} {o.seconds:>5.0f}s")
    print()
    lifecycle, failing, waiting, paid, batch = outcomes
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


def main() -> int:
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
        ]
    report(outcomes)
    return 0 if all(o.as_expected for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
