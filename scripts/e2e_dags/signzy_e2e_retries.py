"""The DAG that `make e2e` runs to prove a paid call is sent once across Airflow's own retries and SIGKILLs.

``signzy_e2e_retries``: the commonest ``default_args`` there are (``retries=2``, a short
``retry_delay``), a login, one paid POST whose body carries the run id (so the script can count the
POSTs each run sent, at the emulator), and the logout teardown. The script makes the emulator lose
that POST's answer (``drop: after``) or hold it while it SIGKILLs the task process or the whole Celery
worker; Airflow then retries the task, and the script clears it afterwards. The goal: exactly one POST per
run, and the task fails saying that Signzy may have charged the call.

Connection ``signzy_e2e_patient`` is the emulator with a 90 s read timeout, so a held answer keeps the
POST in flight until the kill lands (the other e2e DAGs use ``signzy_default``, timeout 2 s).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_provider_signzy.callbacks import revoke_token_on_failure
from airflow_provider_signzy.operators.signzy import (
    SignzyLoginOperator,
    SignzyLogoutOperator,
    SignzyOperator,
)

CONN_ID = "signzy_e2e_patient"

with DAG(
    dag_id="signzy_e2e_retries",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=64,
    dagrun_timeout=timedelta(minutes=10),
    default_args={
        "retries": 2,
        "retry_delay": timedelta(seconds=1),
        "on_failure_callback": revoke_token_on_failure(signzy_conn_id=CONN_ID),
    },
    on_failure_callback=revoke_token_on_failure(signzy_conn_id=CONN_ID),
):
    login = SignzyLoginOperator(token_ttl=1800, signzy_conn_id=CONN_ID)
    create = SignzyOperator(
        task_id="create_identity",
        method="POST",
        endpoint="/api/v2/patrons/{patron_id}/identities",
        json={"type": "individualPan", "email": "{{ run_id | replace(':', '-') }}@example.com", "images": []},
        signzy_conn_id=CONN_ID,
    )
    login >> create >> SignzyLogoutOperator(signzy_conn_id=CONN_ID).as_teardown(setups=login)
