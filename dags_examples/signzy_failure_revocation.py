"""A DAG that fails on purpose, to show that a failing run leaves no live Signzy token.

Three safety nets, from the most to the least direct:
1. the logout teardown runs although a work task failed;
2. the task-level ``on_failure_callback`` revokes the token in the failing task's own process
   (it covers DAGs without a teardown too);
3. the DAG-level ``on_failure_callback`` runs in the DAG processor and covers failures no task sees,
   such as ``dagrun_timeout``.
All are idempotent: the second one to run finds the token already dead, which is success.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, task

from airflow_provider_signzy.callbacks import revoke_token_on_failure
from airflow_provider_signzy.operators.signzy import (
    SignzyLoginOperator,
    SignzyLogoutOperator,
    SignzyOperator,
)

with DAG(
    dag_id="signzy_failure_revocation",
    schedule="@weekly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    dagrun_timeout=timedelta(minutes=15),
    default_args={"on_failure_callback": revoke_token_on_failure(), "retries": 0},
    on_failure_callback=revoke_token_on_failure(),
    tags=["signzy", "example"],
) as dag:
    login = SignzyLoginOperator(token_ttl=15 * 60)
    lookup = SignzyOperator(task_id="list_identities", endpoint="/api/v2/patrons/{patron_id}/identities")

    @task
    def fail_on_purpose(identities: list[dict]) -> None:
        raise RuntimeError(f"Failing on purpose after seeing {len(identities)} identities")

    logout = SignzyLogoutOperator()

    work = fail_on_purpose(lookup.output)
    login >> lookup
    work >> logout.as_teardown(setups=login)
