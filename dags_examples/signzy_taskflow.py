"""The same lifecycle in TaskFlow style, with the hook.

``with SignzyHook() as hook:`` logs in on the first call, reuses one keep-alive HTTP session for every
call, and revokes its token when the block ends, whether the block succeeds or raises. Each TaskFlow
task below is self-contained: one login and one logout per task.

Customers' data never sits in XCom or rendered fields in the clear: ``new_customers`` seals what it
returns (a task's return value is XCom, and a downstream task's arguments are stored as its rendered
fields), ``verify_customers`` opens it in memory with ``unseal()`` and returns only identity ids.

``retries=2`` is safe with paid POSTs: on Airflow 3.3+ the hook keeps a call ledger in the task state
store, so a retry of ``verify_customers`` replays the identities an earlier try created instead of paying
for them again, and fails at once (no retry) on a call whose answer was lost.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import dag, task

from airflow_provider_signzy.hooks.signzy import SignzyHook
from airflow_provider_signzy.privacy import seal, unseal


@dag(
    dag_id="signzy_taskflow",
    schedule="@hourly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1)},
    tags=["signzy", "example"],
)
def signzy_taskflow() -> None:
    @task
    def new_customers() -> list[dict[str, str]]:
        """Stands in for a query of today's sign-ups; sealed, because XCom would show them to anyone."""
        return seal([{"email": f"{name}@example.com"} for name in ("asha", "ravi", "meera")])

    @task
    def verify_customers(customers: list[dict[str, str]]) -> list[str]:
        """Create one identity per customer; returns their ids (only ids go to XCom, no token)."""
        created = []
        with SignzyHook(signzy_conn_id="signzy_default") as hook:
            for customer in unseal(customers):
                # {patron_id}: the hook's own login, as in the operators; request_json: the parsed answer.
                identity = hook.request_json(
                    "POST",
                    "/api/v2/patrons/{patron_id}/identities",
                    json={"type": "individualPan", "email": customer["email"], "images": []},
                )
                created.append(identity["id"])
        return created

    @task
    def report(identity_ids: list[str]) -> dict[str, Any]:
        with SignzyHook() as hook:
            known = {i["id"] for i in hook.request_json("GET", "/api/v2/patrons/{patron_id}/identities")}
        missing = [i for i in identity_ids if i not in known]
        if missing:
            raise ValueError(f"Signzy does not list identities {missing}")
        return {"verified": len(identity_ids)}

    report(verify_customers(new_customers()))


signzy_taskflow()
