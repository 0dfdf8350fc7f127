"""Interop: the hook against a stock LoopBack 3 server (Node.js) and against the emulator, alike.

Signzy's v2 API is LoopBack 3: the server in tests/loopback/server.js is LoopBack itself with a patron
(User) model and owner-only identities, no Signzy code. The same scenarios run against both servers,
and the emulator's answers are compared with LoopBack's, so the emulator cannot drift from the real
behaviour it stands in for.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import requests
from loopback_server import loopback_server, require_loopback

from airflow_provider_signzy.emulator import Patron, SignzyEmulator
from airflow_provider_signzy.exceptions import SignzyAuthError, SignzyClientError, SignzyPermissionError
from airflow_provider_signzy.hooks.signzy import SignzyHook

KEY, BOB_KEY = "demo-api-key-0123456789", "bob-key-1234567"
#: A synthetic personal value (a document URL with a made-up PAN in it) that LoopBack echoes in its error.
IMAGE = "https://cdn.example/ABCDE1234F/front.jpg"

require_loopback()


@dataclass
class Server:
    kind: str
    url: str
    ids: dict[str, str]
    expire: Callable[[float], None]  # make tokens issued `seconds` ago expire, as each server can


@pytest.fixture(scope="module")
def loopback() -> Iterator[Server]:
    patrons = [
        {"username": "demo", "email": "demo@example.com", "password": KEY},
        {"username": "bob", "email": "bob@example.com", "password": BOB_KEY},
    ]
    with loopback_server(patrons) as (url, ids):
        yield Server("loopback", url, ids, lambda s: time.sleep(s))


@pytest.fixture
def emulator_server() -> Iterator[Server]:
    patrons = [Patron("demo", KEY, "patron-demo-0001"), Patron("bob", BOB_KEY, "patron-b")]
    with SignzyEmulator(patrons) as emu:
        yield Server(
            "emulator", emu.url, {"demo": "patron-demo-0001", "bob": "patron-b"}, lambda s: emu.state.advance_clock(s)
        )


@pytest.fixture(params=["loopback", "emulator"])
def server(request: pytest.FixtureRequest) -> Server:
    return request.getfixturevalue("loopback" if request.param == "loopback" else "emulator_server")


def identities(server: Server, who: str = "demo") -> str:
    return f"/api/v2/patrons/{server.ids[who]}/identities"


def test_login_call_logout_alike(server: Server, make_conn: Callable[..., str]) -> None:
    make_conn(url=server.url)
    hook = SignzyHook()
    token = hook.login(ttl=600)
    assert token.user_id == server.ids["demo"]  # LoopBack's numeric userId is read leniently
    assert token.ttl == 600
    created = hook.request("POST", identities(server), token=token, json={"type": "individualPan"}).json()
    listed = hook.request("GET", identities(server), token=token).json()
    assert created["id"] in [i["id"] for i in listed]
    assert hook.logout(token) is True
    assert hook.logout(token) is False
    hook.close()


def test_wrong_key_is_login_failed_alike(server: Server, make_conn: Callable[..., str]) -> None:
    make_conn(url=server.url, password="wrong-key-000000")
    with pytest.raises(SignzyAuthError) as raised:
        SignzyHook().login()
    assert (raised.value.status, raised.value.code, raised.value.signzy_message) == (
        401,
        "LOGIN_FAILED",
        "login failed",
    )


def test_other_patrons_resource_is_a_permission_error_alike(server: Server, make_conn: Callable[..., str]) -> None:
    make_conn(url=server.url)
    with SignzyHook() as hook, pytest.raises(SignzyPermissionError) as raised:
        hook.request("GET", identities(server, "bob"))
    assert raised.value.code == "AUTHORIZATION_REQUIRED"


def test_validation_error_alike(server: Server, make_conn: Callable[..., str]) -> None:
    make_conn(url=server.url)
    with SignzyHook() as hook, pytest.raises(SignzyClientError) as raised:
        hook.request("POST", identities(server), json={})
    assert raised.value.status == 422
    assert "`type` can't be blank" in (raised.value.signzy_message or "")


def test_echoed_values_are_scrubbed_alike(server: Server, make_conn: Callable[..., str]) -> None:
    make_conn(url=server.url)
    with SignzyHook() as hook, pytest.raises(SignzyClientError) as raised:
        hook.request("POST", identities(server), json={"type": "individualPan", "images": IMAGE})
    assert raised.value.status == 400
    for shown in (str(raised.value), raised.value.signzy_message or ""):
        assert "could not create List from JSON string" in shown
        assert "ABCDE1234F" not in shown
        assert "cdn.example" not in shown


def test_expired_token_logs_in_again_alike(server: Server, make_conn: Callable[..., str]) -> None:
    make_conn(url=server.url)
    with SignzyHook() as hook:
        token = hook.login(ttl=1)
        server.expire(1.2)
        assert hook.request("GET", identities(server), token=token).ok
        assert hook.owned_token is not None  # the fresh token, revoked when the block ends


def test_emulator_answers_as_loopback_does(loopback: Server, emulator_server: Server) -> None:
    """Same requests, same status, code and message from both servers."""

    def answers(server: Server) -> list[tuple[int, object]]:
        session = requests.Session()
        login = f"{server.url}/api/v2/patrons/login"
        token = session.post(login, json={"username": "demo", "password": KEY}, timeout=10).json()["id"]
        auth = {"Authorization": token}
        calls = [
            session.post(login, json={"username": "demo", "password": "nope"}, timeout=10),
            session.post(login, json={"password": KEY}, timeout=10),
            session.get(server.url + identities(server), timeout=10),
            session.get(server.url + identities(server), headers={"Authorization": f"Bearer {token}"}, timeout=10),
            session.get(server.url + identities(server, "bob"), headers=auth, timeout=10),
            session.post(server.url + identities(server), json={}, headers=auth, timeout=10),
            # Values that are not lists: LoopBack's 400 echoes them (the hook scrubs them, see below).
            session.post(
                server.url + identities(server), json={"type": "x", "images": IMAGE}, headers=auth, timeout=10
            ),
            session.post(
                server.url + identities(server), json={"type": "x", "images": {"n": 1}}, headers=auth, timeout=10
            ),
            session.post(f"{server.url}/api/v2/patrons/logout", headers=auth, timeout=10),
            session.post(f"{server.url}/api/v2/patrons/logout", headers=auth, timeout=10),
        ]
        return [
            (
                c.status_code,
                {k: v for k, v in c.json()["error"].items() if k in ("statusCode", "code", "message")}
                if c.content
                else None,
            )
            for c in calls
        ]

    assert answers(emulator_server) == answers(loopback)
