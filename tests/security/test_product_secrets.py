"""Products leave no secret and no personal data in the clear: not the patron's token, not the API key, not an
identity's own accessToken (a credential for its snoops), not a customer's PAN or name; in the console,
the log files, rendered fields, XCom, the task state store or any other table of the metadata DB.

The DAG runs the two-step flow with a refused first snoop (so a retry replays the identity, accessToken
included, from the call ledger), a batch, and a one-step product.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from airflow_version import airflow_at_least
from dagrun import console_text, run_dag, task_states, unwrapped
from pii_scan import db_texts, find, scan

from airflow_provider_signzy.emulator import SignzyEmulator
from airflow_provider_signzy.emulator.pytest_plugin import connection_json

pytestmark = pytest.mark.dagrun
KEY = "demo-api-key-0123456789"
CUSTOMERS = [
    {"number": "LMNOP4321Q", "name": "KAVYA IYER"},
    {"number": "RSTUV8765W", "name": "ARJUN MEHTA"},
]
ONE = {"number": "GHJKL1357M", "name": "SUNITA RAO"}
ACCOUNT = {"beneficiaryAccount": "987654321098", "beneficiaryIFSC": "SYNB0654321", "beneficiaryName": "SUNITA RAO"}
VALUES = sorted({v for person in (*CUSTOMERS, ONE, ACCOUNT) for v in person.values()})


@pytest.fixture
def recording_emulator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, airflow_db: None) -> Iterator[SignzyEmulator]:
    with SignzyEmulator(token_log=str(tmp_path / "issued-tokens")) as emu:
        monkeypatch.setenv("AIRFLOW_CONN_SIGNZY_DEFAULT", connection_json(emu.url, backoff_initial=0.01))
        yield emu


def product_dag() -> object:
    from airflow.sdk import DAG, task

    from airflow_provider_signzy.operators.batch import SignzyBatchOperator
    from airflow_provider_signzy.operators.product import SignzyProductOperator
    from airflow_provider_signzy.operators.signzy import SignzyLoginOperator, SignzyLogoutOperator
    from airflow_provider_signzy.privacy import seal

    default_args = {"retries": 2, "retry_delay": dt.timedelta(seconds=1)}
    with DAG(
        "product_secrets", schedule=None, start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), default_args=default_args
    ) as dag:

        @task
        def customers() -> object:
            return seal(CUSTOMERS)

        login = SignzyLoginOperator()
        one = SignzyProductOperator(task_id="one", product="pan.verification", essentials=ONE)
        many = SignzyBatchOperator(task_id="many", product="pan.verification", items=customers())
        bank = SignzyProductOperator(task_id="bank", product="bankaccount.transfer", essentials=ACCOUNT)
        # In a chain, so the refused snoop is the first task's.
        login >> one >> many >> bank >> SignzyLogoutOperator().as_teardown(setups=login)
    return dag


def test_products_leave_no_token_key_or_personal_data_in_the_clear(
    recording_emulator: SignzyEmulator, capfd: pytest.CaptureFixture[str]
) -> None:
    # The first snoop is refused without effect: the retry of its task replays the identity from the ledger.
    recording_emulator.faults.add(
        {"path": "/api/v2/snoops", "method": "POST", "faults": [{"status": 422, "code": "INVALID"}]}
    )
    run = run_dag(product_dag())
    assert str(run.state) == "success", task_states(run)
    console = console_text(capfd)
    state = recording_emulator.state.snapshot()
    assert state["snoops"] == 3
    assert state["requests"]["POST /api/v2/snoops"] == 4  # the refused one was sent again by the retry
    # With the call ledger (3.3+) the retry snoops on the identity its first try created; before 3.3 it
    # creates another (paid-calls page, per Airflow version).
    assert state["identities_created"] == (3 if airflow_at_least("3.3") else 4)
    assert state["live_tokens"] == 0
    identity_tokens = [i["accessToken"] for i in recording_emulator.state.identities.values()]
    issued = Path(recording_emulator.state.token_log or "").read_text().split()
    assert len(identity_tokens) == state["identities_created"]
    assert set(identity_tokens) <= set(issued)  # the scan's list holds the identities' tokens too

    log_root = os.environ["AIRFLOW__LOGGING__BASE_LOG_FOLDER"]
    secrets = [*issued, KEY]
    stored = list(db_texts())  # every table but what the DAG's author wrote
    assert not find(secrets, [("console", unwrapped(console)), *stored]), "a token or the key in the clear"
    # dag.test() prints task logs on the console (scanned above); any log file written is scanned too.
    logs = [(str(p), p.read_text(errors="replace")) for p in Path(log_root).rglob("*") if p.is_file()]
    assert not find(secrets, logs)
    findings = scan(VALUES, console=console, log_root=log_root)
    assert not findings, "\n".join(map(str, findings))
