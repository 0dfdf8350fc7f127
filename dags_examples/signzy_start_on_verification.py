"""Start a DAG run when a customer's verification completes: an asset watched by SignzyEventTrigger.

Copy this DAG to act on each customer Signzy verifies (open the account, notify a team). What it shows:
- ``SignzyEventTrigger`` runs in the triggerer, attached to an ``Asset`` through ``AssetWatcher``: it
  lists the patron's identities (filtered by status on Signzy's side, paged) with the triggerer's shared
  login, and emits one asset event per identity that reaches ``verified``, with the identity's id and
  status in the event's ``extra`` (no personal data). Each identity once, also across triggerer restarts
  on Airflow 3.3+ (the asset state store remembers what was emitted);
- the DAG is scheduled on that asset. Airflow starts one run per event, except that events arriving
  before the scheduler creates the next run share one run: so the run maps one task per identity over
  all its triggering events, and every verified customer is handled exactly once either way;
- the run reads each identity with one login (teardown revokes it) and keeps the answers sealed in XCom;
  the last task opens them and passes on only ids and statuses.

The DAG must be unpaused for its watcher to run. ``SIGNZY_EXAMPLE_POLL_INTERVAL`` exists for ``make demo``
and the tests; keep a minute or more against Signzy.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG, Asset, AssetWatcher, task

from airflow_provider_signzy.callbacks import revoke_token_on_failure
from airflow_provider_signzy.operators.signzy import SignzyLoginOperator, SignzyLogoutOperator, SignzyOperator
from airflow_provider_signzy.privacy import unseal
from airflow_provider_signzy.triggers.events import SignzyEventTrigger

VERIFIED_IDENTITIES = Asset(
    name="signzy_verified_identities",
    uri="signzy://patrons/identities?status=verified",
    watchers=[
        AssetWatcher(
            name="signzy_identity_verified",
            trigger=SignzyEventTrigger(
                endpoint="/api/v2/patrons/{patron_id}/identities",
                emit_when={"status": "verified"},
                poll_interval=float(os.environ.get("SIGNZY_EXAMPLE_POLL_INTERVAL", "60")),
            ),
        )
    ],
)

with DAG(
    dag_id="signzy_on_identity_verified",
    schedule=[VERIFIED_IDENTITIES],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    dagrun_timeout=timedelta(hours=1),
    on_failure_callback=revoke_token_on_failure(),
    tags=["signzy", "example", "event-driven"],
) as dag:

    @task
    def verified_identities(triggering_asset_events: Any = None) -> list[str]:
        """The identity of every event that started this run (usually one; more when they came together)."""
        events = [event for per_asset in (triggering_asset_events or {}).values() for event in per_asset]
        payloads = [event.extra.get("payload") or {} for event in events]
        return [payload["id"] for payload in payloads if payload.get("id")]  # a release event has no id

    login = SignzyLoginOperator(token_ttl=15 * 60)
    identities = verified_identities()

    read_identity = SignzyOperator.partial(task_id="read_identity").expand(
        endpoint=identities.map(lambda identity_id: f"/api/v2/patrons/{{patron_id}}/identities/{identity_id}")
    )

    @task
    def onboard(identity: dict) -> dict[str, str]:
        """Act on one verified customer; return no personal data (XCom is stored)."""
        opened = unseal(identity)
        return {"id": opened["id"], "status": opened["status"]}

    logout = SignzyLogoutOperator()

    login >> identities
    onboard.expand(identity=read_identity.output) >> logout.as_teardown(setups=login)
