"""The nightly KYC job: verify the day's new customers with Signzy in one task, then report.

``SignzyBatchOperator`` sends one paid call per customer with the run's one token, eight at a time,
paced under Signzy's rate limit, and returns one result per customer in input order. ``retries=2`` is
safe: a retried batch replays the customers verified before the failure, never resends a call whose
answer was lost, and sends only the rest (Airflow 3.3+, the call ledger in the task state store).

Customers' data stays sealed end to end: ``new_customers`` seals the bodies it returns (XCom would
otherwise hold them in the clear), the batch opens them, sends them, and seals each answer it returns;
Airflow's Rendered Template tab shows the items' shape, not their values. ``report`` opens the results
in one call.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_signzy.callbacks import revoke_token_on_failure
from airflow_provider_signzy.operators.batch import SignzyBatchOperator
from airflow_provider_signzy.operators.signzy import SignzyLoginOperator, SignzyLogoutOperator
from airflow_provider_signzy.privacy import seal, unseal

with DAG(
    dag_id="signzy_batch_verification",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=2)},
    on_failure_callback=revoke_token_on_failure(),
    tags=["signzy", "example"],
) as dag:

    @task
    def new_customers(ds: str | None = None) -> list[dict[str, Any]]:
        """Stands in for a query of the day's sign-ups: one identity body per customer, sealed for XCom."""
        customers = [{"name": f"Customer {n}", "email": f"customer-{n}-{ds}@example.com"} for n in range(25)]
        return seal([{"type": "individualPan", **customer, "images": []} for customer in customers])

    login = SignzyLoginOperator(token_ttl=60 * 60)
    verify = SignzyBatchOperator(
        task_id="verify_customers",
        endpoint="/api/v2/patrons/{patron_id}/identities",
        items=new_customers(),
        max_concurrency=8,
        on_item_error="continue",  # a refused customer is reported, not a reason to stop the others
    )

    @task
    def report(results: list[dict[str, Any]]) -> dict[str, int]:
        """What goes back to the warehouse: counts here. Each result's ``response`` is Signzy's answer, sealed;
        ``unseal(results)`` opens them all (only in this task's memory: return no personal data)."""
        outcomes: dict[str, int] = {}
        for result in unseal(results):
            outcomes[result["outcome"]] = outcomes.get(result["outcome"], 0) + 1
            if result["ok"] and result["response"]["email"].startswith("customer-"):
                outcomes["answers_checked"] = outcomes.get("answers_checked", 0) + 1
        return outcomes

    login >> verify
    report(verify.output) >> SignzyLogoutOperator().as_teardown(setups=login)
