"""The DAG that `make e2e` runs to prove a batch killed mid-way resumes without sending any item twice.

``signzy_e2e_batch``: a login, one ``SignzyBatchOperator`` of 300 paid POSTs (``retries=2``, a short
``retry_delay``) and the logout teardown. Item ``n``'s email is ``<run_id>.i<n>@example.com``, so the
script can count at the emulator how many times each item was created. The script makes the emulator hold
the answers of a few POSTs mid-batch, SIGKILLs the whole Celery worker while they are held, restarts it,
and lets Airflow retry the task: the retry replays the items that succeeded, reports those of unknown
outcome (the windows in flight at the kill) without sending them, and sends the rest.

``max_calls_per_second`` keeps the batch at a pace where its ledger windows hold a second of calls each
(about 25 items), as in production against Signzy's rate limit; ``on_item_error="continue"`` lets the
task succeed and return every item's result (the script reads them as the task's XCom).
Connection ``signzy_e2e_patient`` has a 90 s read timeout, so held answers stay in flight for the kill.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_provider_signzy.callbacks import revoke_token_on_failure
from airflow_provider_signzy.operators.batch import SignzyBatchOperator
from airflow_provider_signzy.operators.signzy import SignzyLoginOperator, SignzyLogoutOperator

CONN_ID = "signzy_e2e_patient"
ITEMS = 300
CALLS_PER_SECOND = 25

with DAG(
    dag_id="signzy_e2e_batch",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=4,
    dagrun_timeout=timedelta(minutes=10),
    default_args={
        "retries": 2,
        "retry_delay": timedelta(seconds=1),
        "on_failure_callback": revoke_token_on_failure(signzy_conn_id=CONN_ID),
    },
    on_failure_callback=revoke_token_on_failure(signzy_conn_id=CONN_ID),
):
    login = SignzyLoginOperator(token_ttl=1800, signzy_conn_id=CONN_ID)
    batch = SignzyBatchOperator(
        task_id="create_identities",
        endpoint="/api/v2/patrons/{patron_id}/identities",
        items=[
            {
                "type": "individualPan",
                "email": "{{ run_id | replace(':', '-') }}" + f".i{n:03d}@example.com",
                "images": [],
            }
            for n in range(ITEMS)
        ],
        max_concurrency=8,
        max_calls_per_second=CALLS_PER_SECOND,
        on_item_error="continue",
        signzy_conn_id=CONN_ID,
    )
    login >> batch >> SignzyLogoutOperator(signzy_conn_id=CONN_ID).as_teardown(setups=login)
