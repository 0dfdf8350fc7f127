"""The DAG that `make e2e` runs to prove a batch stops when Signzy goes down, and pays for nothing twice after.

``signzy_e2e_outage``: a login, one ``SignzyBatchOperator`` of 200 paid POSTs (``retries=2``, a 10 s
``retry_delay``) and the logout teardown, all through connection ``signzy_e2e_outage``, which points at a
proxy in front of the emulator that the script can stop (new connections refused, open ones cut: Signzy's
host is down) and start again. Item ``n``'s email is ``<run_id>.i<n>@example.com``, so the script can count
at the emulator how many times each item was created.

The script stops the proxy once 60 items are created. The batch's circuit breaker (5 calls in a row that
could not connect, after their retries: about a second with this connection's back-off) stops it; the
items not sent are refused, and the task fails with Airflow's retries. The script starts the proxy again;
Airflow's retry replays what succeeded, keeps the unknown ones (in flight at the cut) unsent, and sends
the rest. ``on_item_error="continue"`` lets the retry succeed and return every item's result.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_provider_signzy.callbacks import revoke_token_on_failure
from airflow_provider_signzy.operators.batch import SignzyBatchOperator
from airflow_provider_signzy.operators.signzy import SignzyLoginOperator, SignzyLogoutOperator

CONN_ID = "signzy_e2e_outage"
ITEMS = 200
CALLS_PER_SECOND = 25

with DAG(
    dag_id="signzy_e2e_outage",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=10),
    default_args={
        "retries": 2,
        "retry_delay": timedelta(seconds=10),
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
