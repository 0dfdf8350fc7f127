"""Interop: the emulator's ``filter`` on the identity list answers as stock LoopBack 3 does.

The same identities are created on both servers, then listed with the filters SignzyEventTrigger sends
(where with equality and ``inq``, order, limit, skip) and a few more; the answers must hold the same
identities in the same order. Skipped like tests/interop/test_loopback.py without Node.js and LoopBack.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests
from loopback_server import loopback_server, require_loopback

from airflow_provider_signzy.emulator import Patron, SignzyEmulator

KEY = "demo-api-key-0123456789"

require_loopback()

FILTERS = [
    {"where": {"type": "individualPan"}},
    {"where": {"type": {"inq": ["individualPan", "aadhaar"]}}, "order": "email ASC", "limit": 2, "skip": 1},
    {"where": {"type": {"neq": "aadhaar"}}, "order": "email DESC"},
    {"where": {"or": [{"type": "aadhaar"}, {"email": "c@example.com"}]}, "order": "email ASC"},
    {"order": "email DESC", "limit": 3},
    {"order": "email ASC", "skip": 4},
]


def create_and_list(url: str, user_id: str) -> list[list[str]]:
    session = requests.Session()
    login = session.post(f"{url}/api/v2/patrons/login", json={"username": "demo", "password": KEY}, timeout=10)
    session.headers["Authorization"] = login.json()["id"]
    identities = f"{url}/api/v2/patrons/{user_id}/identities"
    for n, kind in enumerate(["individualPan", "aadhaar", "individualPan", "passport", "aadhaar"]):
        assert session.post(identities, json={"type": kind, "email": f"{'ebdca'[n]}@example.com"}, timeout=10).ok
    answers = []
    for list_filter in FILTERS:
        answer = session.get(identities, params={"filter": json.dumps(list_filter)}, timeout=10)
        assert answer.status_code == 200, (list_filter, answer.text)
        answers.append([i["email"] for i in answer.json()])
    session.post(f"{url}/api/v2/patrons/logout", timeout=10)
    return answers


@pytest.fixture(scope="module")
def loopback() -> Iterator[tuple[str, str]]:
    with loopback_server([{"username": "demo", "email": "demo@example.com", "password": KEY}]) as (url, ids):
        yield url, ids["demo"]


def test_the_emulators_filter_answers_as_loopback_does(loopback: tuple[str, str]) -> None:
    with SignzyEmulator([Patron("demo", KEY, "patron-demo-0001")]) as emulator:
        ours = create_and_list(emulator.url, "patron-demo-0001")
    theirs = create_and_list(*loopback)
    assert ours == theirs
    assert theirs[0] == ["e@example.com", "d@example.com"]  # the check compares something
