"""DAGs that `make e2e` runs many times at once on a local Celery deployment.

- ``signzy_e2e_lifecycle``: one login, a paid POST and three GETs, a task that fails when the run's conf
  says ``{"fail": true}``, and the logout teardown. Task- and DAG-level revoke callbacks too.
- ``signzy_e2e_timeout``: no teardown; the run outlives its ``dagrun_timeout``, so only the DAG-level
  ``on_failure_callback``, run by the DAG processor, can revoke the token.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from airflow.sdk import DAG, task

from airflow_provider_signzy.callbacks import revoke_token_on_failure
from airflow_provider_signzy.operators.signzy import (
    SignzyLoginOperator,
    SignzyLogoutOperator,
    SignzyOperator,
)

IDENTITIES = "/api/v2/patrons/{patron_id}/identities"

with DAG(
    dag_id="signzy_e2e_lifecycle",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=64,
    dagrun_timeout=timedelta(minutes=20),
    default_args={"retries": 0, "on_failure_callback": revoke_token_on_failure()},
    on_failure_callback=revoke_token_on_failure(),
):
    login = SignzyLoginOperator(token_ttl=1800)
    create = SignzyOperator(
        task_id="create_identity",
        method="POST",
        endpoint=IDENTITIES,
        json={"type": "individualPan", "email": "{{ run_id | replace(':', '-') }}@example.com", "images": []},
    )
    listing = SignzyOperator(task_id="list_identities", endpoint=IDENTITIES)
    fetch = SignzyOperator(
        task_id="fetch_identity",
        endpoint=IDENTITIES + "/{{ ti.xcom_pull(task_ids='create_identity')['id'] }}",
    )
    profile = SignzyOperator(task_id="patron_profile", endpoint="/api/v2/patrons/{patron_id}")

    @task
    def fail_if_asked(**context) -> None:
        if (context["dag_run"].conf or {}).get("fail"):
            raise RuntimeError("this run was asked to fail (conf fail=true)")

    work = fail_if_asked()
    login >> create >> [listing, fetch, profile] >> work
    work >> SignzyLogoutOperator().as_teardown(setups=login)


with DAG(
    dag_id="signzy_e2e_timeout",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=64,
    dagrun_timeout=timedelta(seconds=25),
    default_args={"retries": 0, "priority_weight": 100},  # queued ahead of the lifecycle runs' tasks
    on_failure_callback=revoke_token_on_failure(),
):

    @task
    def outlive_the_run() -> None:
        time.sleep(600)

    SignzyLoginOperator(token_ttl=1800) >> outlive_the_run()
