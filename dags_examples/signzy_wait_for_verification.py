"""Create an identity, then wait (deferred) until the customer's verification ends, then read the result.

Copy this DAG for any Signzy flow that waits on a person. What it shows:
- ``SignzySensor(deferrable=True)`` holds no worker slot while it waits: the triggerer polls, with one
  shared login per connection however many sensors wait, revoked when the last one ends;
- ``success_when`` / ``failure_when`` are plain data on the JSON answer (dotted paths): a rejected
  identity fails the task at once, with the status in the message, instead of waiting for the timeout;
- ``timeout`` is an absolute deadline for the wait; ``poke_interval`` the pause after every poll;
- the run's own token (login task) serves the calls before and after the wait; the logout teardown
  revokes it whatever happens;
- Signzy's answers hold the customer's personal data: XCom keeps them sealed (only ``id`` and ``status``
  readable, so the template below works), and ``unseal()`` opens one in a downstream task.

``SIGNZY_EXAMPLE_POKE_INTERVAL`` exists for ``make demo`` only (it polls every second there); a real
verification takes minutes or days: keep a minute or more.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import DAG, task

from airflow_provider_signzy.callbacks import revoke_token_on_failure
from airflow_provider_signzy.operators.signzy import SignzyLoginOperator, SignzyLogoutOperator, SignzyOperator
from airflow_provider_signzy.privacy import unseal
from airflow_provider_signzy.sensors.signzy import SignzySensor

IDENTITY = "/api/v2/patrons/{patron_id}/identities/{{ ti.xcom_pull(task_ids='create_identity')['id'] }}"

with DAG(
    dag_id="signzy_wait_for_verification",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    dagrun_timeout=timedelta(days=3),
    on_failure_callback=revoke_token_on_failure(),
    tags=["signzy", "example", "deferrable"],
) as dag:
    login = SignzyLoginOperator(token_ttl=30 * 60)

    create_identity = SignzyOperator(
        task_id="create_identity",
        method="POST",
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

    wait_until_verified = SignzySensor(
        task_id="wait_until_verified",
        endpoint=IDENTITY,
        success_when={"status": ["verified", "completed"]},
        failure_when={"status": ["rejected", "expired"]},
        deferrable=True,
        poke_interval=float(os.environ.get("SIGNZY_EXAMPLE_POKE_INTERVAL", "60")),
        timeout=timedelta(days=2),
    )

    # The token may have expired during a long wait: the call then logs in once for itself and revokes it.
    read_result = SignzyOperator(task_id="read_result", endpoint=IDENTITY)

    @task
    def record_outcome(identity: dict) -> dict[str, str]:
        """Open the sealed answer in one call; pass on what the warehouse needs, no personal data."""
        opened = unseal(identity)
        return {"id": opened["id"], "status": opened["status"], "verified_at": opened.get("updatedAt", "")}

    logout = SignzyLogoutOperator()

    login >> create_identity >> wait_until_verified >> read_result
    record_outcome(read_result.output) >> logout.as_teardown(setups=login)
