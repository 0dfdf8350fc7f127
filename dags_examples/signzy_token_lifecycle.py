"""One login per run, several Signzy calls with that token, and a logout teardown that always runs.

Copy this DAG and change the calls. What it shows:
- ``SignzyLoginOperator`` logs in once and stores the token in XCom, encrypted;
- each ``SignzyOperator`` reads the token inside ``execute()`` and makes one call;
  ``{patron_id}`` in an endpoint is the logged-in patron;
- ``SignzyLogoutOperator`` is the teardown: it revokes the token even when a call fails;
- the DAG-level ``on_failure_callback`` revokes it when no task can (a run timeout);
- ``token_ttl`` is about the run's length, so a token that escaped anyway dies soon.
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

with DAG(
    dag_id="signzy_token_lifecycle",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    dagrun_timeout=timedelta(minutes=30),
    on_failure_callback=revoke_token_on_failure(),
    tags=["signzy", "example"],
) as dag:
    login = SignzyLoginOperator(token_ttl=30 * 60)

    create_identity = SignzyOperator(
        task_id="create_identity",
        method="POST",  # a paid call: never resent once it may have reached Signzy
        endpoint="/api/v2/patrons/{patron_id}/identities",
        json={
            "type": "individualPan",
            # Synthetic customer data, rendered per run (a real DAG takes it from its source): Airflow shows
            # this body's shape on the Rendered Template tab, and the answer is sealed in XCom.
            "name": "Customer {{ ds_nodash }}",
            "pan": "ABCDE{{ ds_nodash[-4:] }}F",
            "email": "customer-{{ ds_nodash }}@example.com",
            "callbackUrl": "https://example.com/signzy/callback",
            "images": [],
        },
    )
    list_identities = SignzyOperator(task_id="list_identities", endpoint="/api/v2/patrons/{patron_id}/identities")
    fetch_identity = SignzyOperator(
        task_id="fetch_identity",
        endpoint="/api/v2/patrons/{patron_id}/identities/{{ ti.xcom_pull(task_ids='create_identity')['id'] }}",
    )
    patron_profile = SignzyOperator(task_id="patron_profile", endpoint="/api/v2/patrons/{patron_id}")

    logout = SignzyLogoutOperator()

    login >> create_identity >> [list_identities, fetch_identity] >> patron_profile
    patron_profile >> logout.as_teardown(setups=login)
