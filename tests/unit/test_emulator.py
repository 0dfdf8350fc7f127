"""The emulator behaves as signzy-api-facts.md says: checked over real HTTP with plain requests."""

from __future__ import annotations

import base64
import http.client
import json
import subprocess
import sys
import time

import pytest
import requests

from airflow_provider_signzy.emulator import Patron, SignzyEmulator

LOGIN = "/api/v2/patrons/login"
LOGOUT = "/api/v2/patrons/logout"
KEY = "demo-api-key-0123456789"


def login(emu: SignzyEmulator, **body: object) -> requests.Response:
    return requests.post(emu.url + LOGIN, json={"username": "demo", "password": KEY, **body}, timeout=5)


def identities(emu: SignzyEmulator, user_id: str = "patron-demo-0001") -> str:
    return f"{emu.url}/api/v2/patrons/{user_id}/identities"


def test_login_returns_the_documented_shape(emulator: SignzyEmulator) -> None:
    answer = login(emulator)
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"id", "ttl", "created", "userId"}
    assert len(body["id"]) == 64
    assert body["ttl"] == 1_209_600
    assert body["userId"] == "patron-demo-0001"
    assert body["created"].endswith("Z")


def test_login_accepts_form_bodies_and_email(emulator: SignzyEmulator) -> None:
    form = requests.post(emulator.url + LOGIN, data={"username": "demo", "password": KEY}, timeout=5)
    by_email = requests.post(emulator.url + LOGIN, json={"email": "demo@example.com", "password": KEY}, timeout=5)
    assert form.status_code == 200
    assert by_email.status_code == 200
    assert emulator.state.snapshot()["logins"] == 2


def test_login_ttl_is_honoured_and_capped() -> None:
    with SignzyEmulator(max_ttl=3600) as emu:
        assert login(emu, ttl=60).json()["ttl"] == 60
        assert login(emu, ttl=10**9).json()["ttl"] == 3600


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"username": "demo", "password": "wrong"}, 401, "LOGIN_FAILED"),
        ({"username": "nobody", "password": KEY}, 401, "LOGIN_FAILED"),
        ({"password": KEY}, 400, "USERNAME_EMAIL_REQUIRED"),
    ],
)
def test_login_failures_use_loopback_envelopes(
    emulator: SignzyEmulator, body: dict[str, str], status: int, code: str
) -> None:
    answer = requests.post(emulator.url + LOGIN, json=body, timeout=5)
    assert answer.status_code == status
    assert answer.json()["error"]["statusCode"] == status
    assert answer.json()["error"]["code"] == code
    assert emulator.state.snapshot()["live_tokens"] == 0


def test_malformed_json_is_a_400_syntax_error(emulator: SignzyEmulator) -> None:
    answer = requests.post(
        emulator.url + LOGIN, data=b"{not json", headers={"Content-Type": "application/json"}, timeout=5
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["name"] == "SyntaxError"


def test_token_in_header_or_query_but_not_as_bearer(emulator: SignzyEmulator) -> None:
    token = login(emulator).json()["id"]
    assert requests.get(identities(emulator), headers={"Authorization": token}, timeout=5).status_code == 200
    assert requests.get(identities(emulator), params={"access_token": token}, timeout=5).status_code == 200
    bearer = requests.get(identities(emulator), headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert bearer.status_code == 401
    assert bearer.json()["error"]["code"] == "AUTHORIZATION_REQUIRED"
    # What stock LoopBack accepts after "Bearer ": the base64 of the token.
    encoded = base64.b64encode(token.encode()).decode()
    assert requests.get(identities(emulator), headers={"Authorization": f"Bearer {encoded}"}, timeout=5).ok


def test_no_token_is_authorization_required(emulator: SignzyEmulator) -> None:
    answer = requests.get(identities(emulator), timeout=5)
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "AUTHORIZATION_REQUIRED"


def test_expired_token_is_invalid_token_then_gone(emulator: SignzyEmulator) -> None:
    token = login(emulator, ttl=60).json()["id"]
    emulator.state.advance_clock(61)
    first = requests.get(identities(emulator), headers={"Authorization": token}, timeout=5)
    assert first.status_code == 401
    assert first.json()["error"]["code"] == "INVALID_TOKEN"
    second = requests.get(identities(emulator), headers={"Authorization": token}, timeout=5)
    assert second.json()["error"]["code"] == "AUTHORIZATION_REQUIRED"  # deleted as it answered
    assert emulator.state.snapshot()["live_tokens"] == 0


def test_logout_is_204_then_401(emulator: SignzyEmulator) -> None:
    token = login(emulator).json()["id"]
    first = requests.post(emulator.url + LOGOUT, headers={"Authorization": token}, timeout=5)
    assert first.status_code == 204
    assert first.content == b""
    second = requests.post(emulator.url + LOGOUT, params={"access_token": token}, timeout=5)
    assert second.status_code == 401
    assert second.json()["error"]["message"] == "accessToken is required to logout"
    assert emulator.state.snapshot()["live_tokens"] == 0


def test_identities_are_owner_only_and_validated() -> None:
    patrons = [Patron("alice", "alice-key-123456", "patron-a"), Patron("bob", "bob-key-1234567", "patron-b")]
    for status, code in ((401, "AUTHORIZATION_REQUIRED"), (403, "ACCESS_DENIED")):
        with SignzyEmulator(patrons, acl_error_status=status) as emu:
            alice = requests.post(emu.url + LOGIN, json={"username": "alice", "password": "alice-key-123456"})
            token = alice.json()["id"]
            own = requests.post(
                identities(emu, "patron-a"), json={"type": "individualPan"}, headers={"Authorization": token}
            )
            assert own.status_code == 200
            assert own.json()["patronId"] == "patron-a"
            listed = requests.get(identities(emu, "patron-a"), headers={"Authorization": token}).json()
            assert [i["id"] for i in listed] == [own.json()["id"]]
            other = requests.get(identities(emu, "patron-b"), headers={"Authorization": token})
            assert other.status_code == status
            assert other.json()["error"]["code"] == code
            invalid = requests.post(identities(emu, "patron-a"), json={}, headers={"Authorization": token})
            assert invalid.status_code == 422
            assert invalid.json()["error"]["name"] == "ValidationError"


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (
            "https://cdn.example/ABCDE1234F/front.jpg",
            'could not create List from JSON string: "https://cdn.example/ABCDE1234F/front.jpg"',
        ),
        ('Asha "Verma"', 'could not create List from JSON string: "Asha \\"Verma\\""'),
        ({"name": "Asha Verma"}, 'Items must be an array: {"name":"Asha Verma"}'),
        (5, "Items must be an array: 5"),
        ("5", "Items must be an array: 5"),
    ],
)
def test_images_that_are_not_a_list_are_refused_echoing_the_value(
    emulator: SignzyEmulator, images: object, message: str
) -> None:
    """As LoopBack 3 answers (checked in tests/interop): a 400 raised while the model is built."""
    token = login(emulator).json()["id"]
    answer = requests.post(
        identities(emulator), json={"type": "individualPan", "images": images}, headers={"Authorization": token}
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == {"statusCode": 400, "name": "Error", "message": message}
    assert emulator.state.snapshot()["identities_created"] == 0


def test_identities_keep_the_customers_personal_fields(emulator: SignzyEmulator) -> None:
    token = login(emulator).json()["id"]
    person = {
        "name": "Asha Verma",
        "pan": "ABCDE1234F",
        "dob": "1990-01-31",
        "address": {"line1": "12 Example Road", "city": "Pune", "pin": "411001"},
        "phone": "+91 98765 43210",
        "aadhaar": "1234 5678 9012",
    }
    body = {"type": "individualPan", "email": "asha.verma@example.com", "images": '["https://cdn.example/a.jpg"]'}
    created = requests.post(identities(emulator), json={**body, **person}, headers={"Authorization": token}).json()
    assert {k: created[k] for k in person} == person
    assert created["email"] == "asha.verma@example.com"
    assert created["images"] == ["https://cdn.example/a.jpg"]  # a JSON string of a list is a list
    listed = requests.get(identities(emulator), headers={"Authorization": token}).json()
    assert listed[0]["pan"] == "ABCDE1234F"
    bare = requests.post(identities(emulator), json={"type": "individualPan"}, headers={"Authorization": token})
    assert not set(person) & set(bare.json())


def test_unknown_route_is_404_envelope(emulator: SignzyEmulator) -> None:
    answer = requests.get(emulator.url + "/api/v2/nothing", timeout=5)
    assert answer.status_code == 404
    assert answer.json()["error"]["statusCode"] == 404


def test_loopback2_envelope_says_status() -> None:
    with SignzyEmulator(loopback2=True) as emu:
        error = requests.post(emu.url + LOGIN, json={"username": "demo", "password": "x"}, timeout=5).json()
    assert error["error"]["status"] == 401
    assert "statusCode" not in error["error"]


def test_fault_sequence_then_normal(emulator: SignzyEmulator) -> None:
    emulator.faults.add(
        {"path": LOGIN, "faults": [{"status": 502}, {"status": 429, "retry_after": 3}, None, {"status": 503}]}
    )
    html = login(emulator)
    assert html.status_code == 502
    assert html.headers["Content-Type"] == "text/html"
    assert "<title>502 Bad Gateway</title>" in html.text
    limited = login(emulator)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "3"
    assert login(emulator).status_code == 200  # the null entry lets one through
    assert login(emulator).status_code == 503
    assert login(emulator).status_code == 200
    state = emulator.state.snapshot()
    assert state["logins"] == 2
    assert state["faults_served"] == 3
    assert state["faults_by_kind"] == {"status-502": 1, "status-429": 1, "status-503": 1}


def test_fault_every_nth(emulator: SignzyEmulator) -> None:
    emulator.faults.add({"path": "/api/v2/patrons/*/identities", "every": 2, "times": 2, "fault": {"status": 503}})
    token = login(emulator).json()["id"]
    codes = [requests.get(identities(emulator), headers={"Authorization": token}).status_code for _ in range(6)]
    assert codes == [200, 503, 200, 503, 200, 200]


def test_every_matching_rule_counts_each_request(emulator: SignzyEmulator) -> None:
    emulator.faults.add({"path": LOGIN, "every": 2, "fault": {"status": 502}})
    emulator.faults.add({"path": LOGIN, "every": 3, "fault": {"status": 503}})
    codes = [login(emulator).status_code for _ in range(6)]
    assert codes == [200, 502, 503, 502, 200, 502]  # the 6th is both rules' turn: the first rule answers


def test_drop_after_acting_creates_the_resource_but_sends_no_answer(emulator: SignzyEmulator) -> None:
    token = login(emulator).json()["id"]
    emulator.faults.add({"path": "/api/v2/patrons/*/identities", "method": "POST", "faults": [{"drop": "after"}]})
    with pytest.raises(requests.ConnectionError):
        requests.post(identities(emulator), json={"type": "x"}, headers={"Authorization": token}, timeout=5)
    assert emulator.state.snapshot()["identities_created"] == 1


def test_delay_fault_delays(emulator: SignzyEmulator) -> None:
    emulator.faults.add({"path": LOGIN, "faults": [{"delay": 0.3}]})
    started = time.monotonic()
    assert login(emulator).status_code == 200
    assert time.monotonic() - started >= 0.3


def test_control_endpoints_over_http(emulator: SignzyEmulator) -> None:
    plan = requests.post(
        emulator.url + "/_emulator/faults", json={"path": LOGIN, "faults": [{"status": 500}]}, timeout=5
    )
    assert plan.json()["faults"][0]["pending"] == 1
    assert requests.post(emulator.url + "/_emulator/faults", json={"path": 3}, timeout=5).status_code == 400
    assert login(emulator).status_code == 500
    token = login(emulator).json()["id"]
    requests.post(emulator.url + "/_emulator/clock", json={"advance": 10**7}, timeout=5)
    state = requests.get(emulator.url + "/_emulator/state", timeout=5).json()
    assert state["live_tokens"] == 0
    assert state["requests"][f"POST {LOGIN}"] == 2
    assert token not in json.dumps(state)
    requests.post(emulator.url + "/_emulator/reset", timeout=5)
    assert requests.get(emulator.url + "/_emulator/state", timeout=5).json()["logins"] == 0


def test_state_never_holds_token_values(emulator: SignzyEmulator) -> None:
    token = login(emulator).json()["id"]
    assert token not in json.dumps(emulator.state.snapshot())


def test_keep_alive_serves_many_calls_on_one_connection(emulator: SignzyEmulator) -> None:
    session = requests.Session()
    token = session.post(emulator.url + LOGIN, json={"username": "demo", "password": KEY}).json()["id"]
    for _ in range(20):
        session.get(identities(emulator), headers={"Authorization": token}).raise_for_status()
    assert emulator.state.snapshot()["connections"] == 1


def test_cli_serves_on_a_free_port(tmp_path: object) -> None:
    port_file = f"{tmp_path}/port"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_provider_signzy.emulator.cli",
            "--port",
            "0",
            "--port-file",
            port_file,
            "--patron",
            "carol:carol-key-12345:patron-c",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert "listening on http://127.0.0.1:" in line
        with open(port_file) as handle:
            port = int(handle.read())
        answer = requests.post(
            f"http://127.0.0.1:{port}{LOGIN}", json={"username": "carol", "password": "carol-key-12345"}, timeout=5
        )
        assert answer.json()["userId"] == "patron-c"
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_emulator_process_and_its_control_client() -> None:
    from airflow_provider_signzy.emulator.process import emulator_process

    with emulator_process("--patron", "erin:erin-key-123456:patron-e") as control:
        login_url = control.url + LOGIN
        token = requests.post(login_url, json={"username": "erin", "password": "erin-key-123456"}, timeout=5)
        assert token.json()["userId"] == "patron-e"
        control.add_faults({"path": LOGIN, "faults": [{"status": 503}, {"status": 502}]})
        assert requests.post(login_url, json={"username": "erin", "password": "x"}, timeout=5).status_code == 503
        control.clear_faults()  # the 502 is never served
        assert control.state()["faults"] == []
        control.advance_clock(2_000_000)
        state = control.state()
        assert (state["logins"], state["live_tokens"], state["faults_by_kind"]) == (1, 0, {"status-503": 1})
        control.reset()
        assert control.state()["logins"] == 0
        url = control.url
    with pytest.raises(requests.ConnectionError):  # stopped with the block
        requests.get(url + "/_emulator/health", timeout=2)


def test_hold_acts_then_answers_late(emulator: SignzyEmulator) -> None:
    token = login(emulator).json()["id"]
    emulator.faults.add({"path": "/api/v2/patrons/*/identities", "method": "POST", "faults": [{"hold": 0.4}]})
    started = time.monotonic()
    answer = requests.post(identities(emulator), json={"type": "x"}, headers={"Authorization": token}, timeout=5)
    assert answer.status_code == 200
    assert time.monotonic() - started >= 0.4
    state = emulator.state.snapshot()
    assert state["faults_by_kind"] == {"hold": 1}
    assert (state["held_answers_sent"], state["held_answers_undelivered"], state["held"]) == (1, 0, [])


def test_hold_outlives_a_short_read_timeout_but_the_identity_exists(emulator: SignzyEmulator) -> None:
    token = login(emulator).json()["id"]
    emulator.faults.add({"path": "/api/v2/patrons/*/identities", "method": "POST", "faults": [{"hold": 30}]})
    with pytest.raises(requests.ReadTimeout):
        requests.post(identities(emulator), json={"type": "x"}, headers={"Authorization": token}, timeout=(5, 0.3))
    assert emulator.state.snapshot()["identities_created"] == 1
    # The client closed its end on the timeout: the emulator stops holding and sends nothing.
    deadline = time.monotonic() + 5
    while emulator.state.snapshot()["held_answers_undelivered"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    state = emulator.state.snapshot()
    assert (state["held_answers_undelivered"], state["held_answers_sent"], state["held"]) == (1, 0, [])
    # The emulator still answers everyone else.
    assert requests.get(identities(emulator), headers={"Authorization": token}, timeout=5).status_code == 200


def test_held_answers_are_listed_with_the_client_port_until_the_client_dies(emulator: SignzyEmulator) -> None:
    """What `make e2e` relies on to SIGKILL the one process whose paid POST is in flight."""
    token = login(emulator).json()["id"]
    emulator.faults.add({"path": "/api/v2/patrons/*/identities", "method": "POST", "faults": [{"hold": 30}]})
    host, port = emulator.httpd.server_address[:2]
    client = http.client.HTTPConnection(str(host), int(port), timeout=5)
    client.request(
        "POST",
        "/api/v2/patrons/patron-demo-0001/identities",
        body=json.dumps({"type": "x"}),
        headers={"Authorization": token, "Content-Type": "application/json"},
    )
    assert client.sock is not None
    client_port = client.sock.getsockname()[1]
    deadline = time.monotonic() + 5
    while not emulator.state.snapshot()["held"] and time.monotonic() < deadline:
        time.sleep(0.05)
    held = emulator.state.snapshot()["held"]
    assert [(h["route"], h["client_port"]) for h in held] == [("POST /api/v2/patrons/{userId}/identities", client_port)]
    assert emulator.state.snapshot()["identities_created"] == 1  # acted before holding
    client.close()  # what the kernel does for a killed process
    deadline = time.monotonic() + 5
    while emulator.state.snapshot()["held"] and time.monotonic() < deadline:
        time.sleep(0.05)
    state = emulator.state.snapshot()
    assert (state["held"], state["held_answers_undelivered"]) == ([], 1)


@pytest.mark.parametrize(
    "fault", [{"hold": 0}, {"hold": "5"}, {"hold": 1, "status": 502}, {"hold": 1, "drop": "after"}]
)
def test_hold_rejects_nonsense(emulator: SignzyEmulator, fault: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="hold"):
        emulator.faults.add({"path": LOGIN, "faults": [fault]})
