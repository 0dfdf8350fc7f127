"""Airflow's REST API (the only way the scenarios drive Airflow), and Signzy's as a user checks it."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from .common import API_KEY, TERMINAL


class Api:
    def __init__(self, base: str) -> None:
        import requests

        self.base = base
        self.session = requests.Session()

    def authenticate(self) -> None:
        answer = self.session.get(f"{self.base}/auth/token", timeout=30)
        answer.raise_for_status()
        self.session.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = self.session.request(method, f"{self.base}/api/v2{path}", timeout=60, **kwargs)
        answer.raise_for_status()
        return answer.json() if answer.content else None

    def healthy(self) -> bool:
        health = self.call("GET", "/monitor/health")
        return all(health.get(part, {}).get("status") == "healthy" for part in ("metadatabase", "scheduler"))


def trigger(api: Api, dag_id: str, run_ids: list[str]) -> None:
    for run_id in run_ids:
        api.call("POST", f"/dags/{dag_id}/dagRuns", json={"dag_run_id": run_id, "logical_date": None})


def wait_runs(api: Api, dag_id: str, run_ids: list[str], seconds: float) -> None:
    finished: set[str] = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for run_id in sorted(set(run_ids) - finished):
            if api.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"] in TERMINAL:
                finished.add(run_id)
        if len(finished) == len(run_ids):
            return
        time.sleep(2)
    raise SystemExit(f"only {len(finished)} of {len(run_ids)} {dag_id} runs finished within {seconds:.0f} s")


def posts_by_run(emulator_url: str) -> Counter[str]:
    """Identities at the emulator per run id (each body's email is ``<run_id>@example.com``), read as a
    user would check at Signzy: log in, list the patron's identities, log out."""
    import requests

    with requests.Session() as session:
        answer = session.post(
            f"{emulator_url}/api/v2/patrons/login", json={"username": "demo", "password": API_KEY}, timeout=10
        )
        answer.raise_for_status()
        token = answer.json()
        try:
            listed = session.get(
                f"{emulator_url}/api/v2/patrons/{token['userId']}/identities",
                headers={"Authorization": token["id"]},
                timeout=30,
            )
            listed.raise_for_status()
            return Counter(str(i.get("email", "")).removesuffix("@example.com") for i in listed.json())
        finally:
            session.post(f"{emulator_url}/api/v2/patrons/logout", headers={"Authorization": token["id"]}, timeout=10)
