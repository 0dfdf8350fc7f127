"""DAGs for benchmarks/deferred_sensors.py: N sensors waiting at once for N identities to be verified.

- ``signzy_bench_deferred``: ``SignzySensor(deferrable=True)``, mapped over the identities; the trigger ends
  each task itself (no ``response_check``).
- ``signzy_bench_handoff``: the same with ``end_from_trigger=False``: each finished wait resumes on a
  worker (the behaviour before the sensor could end in the triggerer).
- ``signzy_bench_reschedule``: the comparison, ``HttpSensor(mode="reschedule")`` with a response_check
  (which is why it cannot defer: apache/airflow issue 40209). Its token travels as a templated header,
  as users of HttpSensor do: a benchmark-only shortcut that stores the token in rendered fields.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.providers.http.sensors.http import HttpSensor
from airflow.sdk import DAG, task

from airflow_provider_signzy.hooks.signzy import SignzyHook
from airflow_provider_signzy.sensors.signzy import SignzySensor

N = int(os.environ.get("SENSOR_BENCH_N", "200"))
POKE_INTERVAL = float(os.environ.get("SENSOR_BENCH_POKE_INTERVAL", "5"))
IDENTITY = "/api/v2/patrons/{patron_id}/identities/"


@task
def create_identities() -> list[str]:
    with SignzyHook() as hook:
        ids = [
            hook.request("POST", IDENTITY.format(patron_id=hook.get_token().user_id), json={"type": "x"}).json()["id"]
            for _ in range(N)
        ]
    return ids


for dag_id, end_from_trigger in (("signzy_bench_deferred", None), ("signzy_bench_handoff", False)):
    with DAG(dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False, max_active_tasks=N + 8):
        SignzySensor.partial(
            task_id="wait",
            success_when={"status": "verified"},
            deferrable=True,
            poke_interval=POKE_INTERVAL,
            timeout=3600,
            end_from_trigger=end_from_trigger,
        ).expand(endpoint=create_identities().map(lambda identity_id: IDENTITY + identity_id))


@task
def create_identities_and_token() -> list[dict[str, str]]:
    with SignzyHook() as hook:
        token = hook.login(ttl=3600)  # outlives the hook: the sensors use it
        path = IDENTITY.format(patron_id=token.user_id)
        ids = [hook.request("POST", path, token=token, json={"type": "x"}).json()["id"] for _ in range(N)]
    return [{"endpoint": path + identity_id, "headers": {"Authorization": token.id}} for identity_id in ids]


with DAG(
    "signzy_bench_reschedule", schedule=None, start_date=datetime(2026, 1, 1), catchup=False, max_active_tasks=N + 8
):
    HttpSensor.partial(
        task_id="wait",
        http_conn_id="signzy_http_plain",
        response_check=lambda response: response.json()["status"] == "verified",
        mode="reschedule",
        poke_interval=POKE_INTERVAL,
        timeout=3600,
    ).expand_kwargs(create_identities_and_token())
