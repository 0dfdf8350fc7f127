"""Verify customers' PANs every night: Signzy's ``pan.verification`` product by name, one login per run.

``SignzyBatchOperator(product="pan.verification", items=[...])`` takes each customer's essentials as
Signzy documents them (``number``: a PAN ``AAAAA9999A``; ``name``; optional ``fuzzy`` ``"true"``/``"false"``),
checks every item before anything is sent or paid (a malformed PAN is reported ``invalid``, naming the
field, never the value), and runs each customer as one unit: an identity of type ``individualPan``, then
the ``verification`` snoop authenticated by that identity's own token. Each result's ``response`` is
the product's result (``verified``, ``message``, ``upstreamName``), sealed; ``verified`` stays readable.

``one_customer`` does the same for a single customer with ``SignzyProductOperator``, whose result's
``verified`` a template or a branch can read without opening the seal. ``retries=2`` is safe: a retry
reuses the identities the first try created and never resends a snoop whose answer was lost (Airflow
3.3+, the call ledger). Against the emulator, a name containing ``MISMATCH`` is a negative verification.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, task

from airflow_provider_signzy.callbacks import revoke_token_on_failure
from airflow_provider_signzy.operators.batch import SignzyBatchOperator
from airflow_provider_signzy.operators.product import SignzyProductOperator
from airflow_provider_signzy.operators.signzy import SignzyLoginOperator, SignzyLogoutOperator
from airflow_provider_signzy.privacy import seal, unseal

with DAG(
    dag_id="signzy_pan_verification",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=2)},
    on_failure_callback=revoke_token_on_failure(),
    tags=["signzy", "example", "products"],
) as dag:

    @task
    def customers_to_verify() -> list[dict[str, Any]]:
        """Stands in for a query of the day's customers: each one's essentials, sealed for XCom."""
        return seal(
            [
                {"number": "ABCDE1234F", "name": "RAVI KUMAR"},
                {"number": "FGHIJ5678K", "name": "ANITA SHARMA", "fuzzy": "true"},
                {"number": "KLMNO2468P", "name": "PRIYA MISMATCH"},  # the emulator's negative verification
                {"number": "PQRST1357U", "name": "VIKRAM SINGH"},
                {"number": "BAD-PAN", "name": "NOT SENT"},  # invalid: reported, never sent
            ]
        )

    login = SignzyLoginOperator(token_ttl=60 * 60)
    verify = SignzyBatchOperator(
        task_id="verify_pans",
        product="pan.verification",
        items=customers_to_verify(),
        max_concurrency=4,
        on_item_error="continue",
    )
    one_customer = SignzyProductOperator(
        task_id="verify_one_pan",
        product="pan.verification",
        essentials={"number": "UVWXY9753Z", "name": "MEERA NAIR"},
    )

    @task
    def report(results: list[dict[str, Any]], single: dict[str, Any]) -> dict[str, int]:
        """Counts for the warehouse; ``verified`` is readable without unsealing, the rest is opened here only."""
        counts = {"verified": 0, "not_verified": 0, "invalid": 0, "single_verified": int(single["verified"])}
        for result in unseal(results):
            if result["outcome"] == "invalid":
                counts["invalid"] += 1
            elif result["ok"]:
                counts["verified" if result["response"]["verified"] else "not_verified"] += 1
        return counts

    login >> [verify, one_customer]
    report(verify.output, one_customer.output) >> SignzyLogoutOperator().as_teardown(setups=login)
