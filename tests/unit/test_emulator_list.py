"""The emulator's identity list: LoopBack's ``filter`` (where, order, limit, skip), JSON and bracket forms."""

from __future__ import annotations

import json

import pytest
import requests

from airflow_provider_signzy.emulator import SignzyEmulator

KEY = "demo-api-key-0123456789"


@pytest.fixture
def listing(emulator: SignzyEmulator) -> tuple[requests.Session, str, list[str]]:
    """Six identities, the 2nd, 4th and 6th verified."""
    login = requests.post(emulator.url + "/api/v2/patrons/login", json={"username": "demo", "password": KEY}, timeout=5)
    session = requests.Session()
    session.headers["Authorization"] = login.json()["id"]
    url = f"{emulator.url}/api/v2/patrons/{login.json()['userId']}/identities"
    ids = [session.post(url, json={"type": f"t{n % 2}"}, timeout=5).json()["id"] for n in range(6)]
    for identity_id in ids[1::2]:
        emulator.state.set_identity_status(identity_id, "verified")
    return session, url, ids


def listed(session: requests.Session, url: str, **params: str) -> list[str]:
    answer = session.get(url, params=params, timeout=5)
    assert answer.status_code == 200, answer.text
    return [i["id"] for i in answer.json()]


def test_no_filter_lists_every_identity_in_creation_order(listing) -> None:
    session, url, ids = listing
    assert listed(session, url) == ids


def test_where_status_selects_and_limit_skip_page(listing) -> None:
    session, url, ids = listing
    verified = ids[1::2]
    assert listed(session, url, filter=json.dumps({"where": {"status": "verified"}})) == verified
    pages = [
        listed(session, url, filter=json.dumps({"where": {"status": "verified"}, "limit": 2, "skip": skip}))
        for skip in (0, 2, 4)
    ]
    assert pages == [verified[:2], verified[2:], []]


def test_operators_and_or_nested_and_order(listing, emulator: SignzyEmulator) -> None:
    session, url, ids = listing
    where = {"or": [{"status": {"inq": ["rejected", "verified"]}}, {"type": "t0", "status": {"neq": "pending"}}]}
    assert listed(session, url, filter=json.dumps({"where": where})) == ids[1::2]
    emulator.state.identities[ids[0]]["result"] = {"kyc": "ok"}
    assert listed(session, url, filter=json.dumps({"where": {"result.kyc": "ok"}})) == [ids[0]]
    newest_first = listed(session, url, filter=json.dumps({"order": ["type DESC", "createdAt DESC"], "limit": 3}))
    assert newest_first == [ids[5], ids[3], ids[1]]


def test_bracket_form(listing) -> None:
    session, url, ids = listing
    assert listed(session, url, **{"filter[where][status]": "verified", "filter[limit]": "1", "filter[skip]": "1"}) == [
        ids[3]
    ]


@pytest.mark.parametrize(
    "bad", ["{not json", json.dumps([1]), json.dumps({"limit": -1}), json.dumps({"order": "type SIDEWAYS"})]
)
def test_a_malformed_filter_is_a_400(listing, bad: str) -> None:
    session, url, _ = listing
    answer = session.get(url, params={"filter": bad}, timeout=5)
    assert answer.status_code == 400
    assert answer.json()["error"]["statusCode"] == 400
