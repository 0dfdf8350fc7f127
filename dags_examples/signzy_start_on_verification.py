"""Start a DAG run when a customer's verification completes: an asset watched by SignzyEventTrigger.

Copy this DAG to act on each customer Signzy verifies (open the account, notify a team). What it shows:
- ``SignzyEventTrigger`` runs in the triggerer, attached to an ``Asset`` through ``AssetWatcher``: it
  lists the patron's identities (filtered by status on Signzy's side, paged) with the triggerer's shared
  login, and emits one asset event per identity that reaches ``verified``, with the identity's id and
  status in the event's ``extra`` (no personal data). Each identity once, also across triggerer restarts
  on Airflow 3.3+ (the asset state store remembers what was emitted);
- the DAG is scheduled on that asset. Airflow starts one run per event, except that events arriving
  before the scheduler creates the next run share one run: so the run maps one task per identity over
  all its triggering events. An identity emitted twice (verified just before a triggerer stop) is
  handled only by the run of its first event, so every verified customer is handled exactly once;
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


def identity_of(event: Any) -> str | None:
    """The identity id in a SignzyEventTrigger event's ``extra`` (None for a release or hand-made event)."""
    return ((event.extra or {}).get("payload") or {}).get("id")


with DAG(
    dag_id="signzy_on_identity_verified",
    schedule=[VERIFIED_IDENTITIES],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    dagrun_timeout=timedelta(hours=1),
    on_failure_callback=revoke_token_on_failure(),
    tags=["signzy", "example", "event-driven"],
) as dag:

    @task(inlets=[VERIFIED_IDENTITIES])
    def verified_identities(
        triggering_asset_events: Any = None, inlet_events: Any = None, run_id: str | None = None
    ) -> list[str]:
        """The identities this run handles: those of the events that started it, each in one run only.

        The watcher emits an identity at least once: one verified in the seconds before a triggerer stop
        can be emitted again after the restart. The identity's first asset event decides: the run that
        consumed it handles the identity, a run started by a repeat skips it.
        """
        events = [event for per_asset in (triggering_asset_events or {}).values() for event in per_asset]
        ids = list(dict.fromkeys(i for event in events if (i := identity_of(event))))  # a release event has none
        if not ids:
            return []
        first: dict[str, Any] = {}
        for event in inlet_events[VERIFIED_IDENTITIES]:
            identity = identity_of(event)
            if identity in ids and (identity not in first or event.id < first[identity].id):
                first[identity] = event
        return [i for i in ids if i not in first or any(r.run_id == run_id for r in first[i].created_dagruns)]

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
