"""Interop: ``SignzyHook.run_product`` end to end against a stock LoopBack 3 server, not the emulator.

tests/loopback/server.js is LoopBack itself, shaped like Signzy's public v2 docs: a patron creates an
identity (owner-only) that carries its own ``accessToken``, then ``POST /api/v2/snoops`` runs a task on it,
authenticated by ``itemId`` + ``accessToken`` in the body, and answers with ``response.result``. Here
``pan.fetch`` and ``pan.verification`` run through the hook, and ``pan.verification`` runs in a real DAG
whose snoop answer is lost on the way back: one identity, one snoop, and no retry. Skipped like
tests/interop/test_loopback.py without Node.js and LoopBack.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from airflow_version import requires_airflow
from dagrun import console_text, run_dag, task_states, unwrapped
from loopback_server import loopback_server, require_loopback

from airflow_provider_signzy.emulator.pytest_plugin import connection_json
from airflow_provider_signzy.hooks.signzy import SignzyHook
from airflow_provider_signzy.products import SNOOPS_ENDPOINT

KEY = "demo-api-key-0123456789"
PAN, NAME = "ABCDE1234F", "RAVI KUMAR"  # synthetic
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
CALLBACK = "https://example.com/cb"
IDENTITY_TOKEN = re.compile(r"[a-z0-9]{30,}")

require_loopback()


@dataclass
class LoopBack:
    url: str
    patron_id: str

    def _as_patron(self, call: Any) -> Any:
        session = requests.Session()
        login = session.post(f"{self.url}/api/v2/patrons/login", json={"username": "demo", "password": KEY}, timeout=10)
        session.headers["Authorization"] = login.json()["id"]
        try:
            return call(session, f"{self.url}/api/v2/patrons/{self.patron_id}")
        finally:
            session.post(f"{self.url}/api/v2/patrons/logout", timeout=10)

    def counts(self) -> tuple[int, int]:
        """How many identities and snoops LoopBack holds for the patron (its relation ``count`` endpoints)."""

        def count(session: requests.Session, patron: str) -> tuple[int, int]:
            found = [session.get(f"{patron}/{what}/count", timeout=10) for what in ("identities", "snoops")]
            assert all(f.status_code == 200 for f in found), [f.text for f in found]
            return found[0].json()["count"], found[1].json()["count"]

        return self._as_patron(count)

    def identities(self) -> list[dict[str, Any]]:
        return self._as_patron(lambda session, patron: session.get(f"{patron}/identities", timeout=10).json())


@pytest.fixture
def loopback() -> Iterator[LoopBack]:
    """A fresh LoopBack server per test, so its counts are the test's own."""
    with loopback_server([{"username": "demo", "email": "demo@example.com", "password": KEY}]) as (url, ids):
        yield LoopBack(url, ids["demo"])


def point_default_connection(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    """``signzy_default`` at ``url`` as the demo patron, with fast retries (no emulator involved)."""
    extra = {"backoff_initial": 0.01, "backoff_max": 0.2, "timeout": 5}
    monkeypatch.setenv("AIRFLOW_CONN_SIGNZY_DEFAULT", connection_json(url, login="demo", password=KEY, **extra))


# -- the server's snoops, as the hook relies on them --


def test_a_snoop_is_authenticated_by_its_identitys_token_alone(loopback: LoopBack) -> None:
    session = requests.Session()
    login = session.post(f"{loopback.url}/api/v2/patrons/login", json={"username": "demo", "password": KEY}, timeout=10)
    patron_token = login.json()["id"]
    identity = session.post(
        f"{loopback.url}/api/v2/patrons/{loopback.patron_id}/identities",
        json={"type": "individualPan", "email": "ops@example.com", "callbackUrl": CALLBACK, "images": []},
        headers={"Authorization": patron_token},
        timeout=10,
    ).json()
    assert IDENTITY_TOKEN.fullmatch(identity["accessToken"])
    assert (identity["autoRecognition"], identity["verification"], identity["forgeryCheck"]) == ([], [], [])
    snoops = f"{loopback.url}{SNOOPS_ENDPOINT}"
    body = {
        "service": "Identity",
        "itemId": identity["id"],
        "accessToken": identity["accessToken"],
        "task": "verification",
        "essentials": {"number": PAN, "name": NAME},
    }
    # No patron token needed; one sent (as two public clients do), or a stranger's, changes nothing.
    for headers in ({}, {"Authorization": patron_token}, {"Authorization": "not-a-token"}):
        answer = session.post(snoops, json=body, headers=headers, timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.json()["response"]["result"]["verified"] is True
        assert answer.json()["response"]["instance"] == {"id": identity["id"], "callbackUrl": CALLBACK}
    for wrong in ({"accessToken": "x" * 32}, {"itemId": "0" * 24}, {"accessToken": None}):
        refused = session.post(snoops, json={**body, **wrong}, timeout=10)
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "AUTHORIZATION_REQUIRED"
    assert session.get(snoops, timeout=10).status_code == 401  # create only: nobody lists snoops
    assert loopback.counts() == (1, 3)


# -- the hook --

EXPECTED = {
    "pan.fetch": ({"number": PAN}, {"number": PAN, "name": NAME, "fatherName": "SURESH KUMAR", "dob": "01/01/1990"}),
    "pan.verification": (
        {"number": PAN, "name": NAME},
        {"verified": True, "message": "Verification completed with positive result", "upstreamName": NAME},
    ),
}


@pytest.mark.parametrize("product", sorted(EXPECTED))
def test_run_product_against_loopback(
    product: str, loopback: LoopBack, monkeypatch: pytest.MonkeyPatch, capfd: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    point_default_connection(monkeypatch, loopback.url)
    essentials, expected = EXPECTED[product]
    with SignzyHook() as hook:
        result = hook.run_product(product, essentials, email="ops@example.com", callback_url=CALLBACK)
    assert dict(result) == expected
    [identity] = loopback.identities()
    assert result.identity_id == identity["id"]
    assert result.answer["itemId"] == identity["id"]
    access_token = identity["accessToken"]
    assert IDENTITY_TOKEN.fullmatch(access_token)
    assert result.answer["accessToken"] == access_token  # the snoop was authenticated by it...
    assert access_token not in json.dumps(dict(result)) + repr(result)  # ...and it stays out of the result
    out, err = capfd.readouterr()
    logged = unwrapped(out + err + "\n".join(r.getMessage() for r in caplog.records))
    assert caplog.records, "nothing was logged: the check below would prove nothing"
    assert access_token not in logged
    assert loopback.counts() == (1, 1)  # one identity, one snoop


# -- a lost snoop answer in a real DAG run, with Airflow retries --


class SnoopAnswerLoser:
    """A TCP proxy on 127.0.0.1 in front of LoopBack: it relays every request and answer, except that it
    forwards the first ``POST /api/v2/snoops`` to LoopBack, waits for its answer (so LoopBack has acted),
    and closes the client's connection instead of relaying it.

    A lost answer after the server acted cannot be made real any other way: a stock LoopBack server always
    answers, so the network between the hook and the server has to lose it, and this is that network.
    """

    REQUEST_LINE = re.compile(rb"([A-Z]+ \S+) HTTP/1\.[01]\r\n")

    def __init__(self, upstream: str) -> None:
        host, port = upstream.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.requests: list[str] = []  # the request lines relayed to LoopBack, in order
        self.lost = threading.Event()  # set once an answer was swallowed
        self._armed = True
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            lose = threading.Event()
            threading.Thread(target=self._to_server, args=(client, upstream, lose), daemon=True).start()
            threading.Thread(target=self._to_client, args=(upstream, client, lose), daemon=True).start()

    def _to_server(self, client: socket.socket, upstream: socket.socket, lose: threading.Event) -> None:
        try:
            while chunk := client.recv(65536):
                # HTTP/1.1 clients send no request before the previous answer came: a request starts a chunk.
                line = self.REQUEST_LINE.match(chunk)
                if line:
                    request = line.group(1).decode()
                    with self._lock:
                        self.requests.append(request)
                        if self._armed and request == f"POST {SNOOPS_ENDPOINT}":
                            self._armed = False
                            lose.set()  # before LoopBack can answer it
                upstream.sendall(chunk)
        except OSError:
            pass
        finally:
            _shut(upstream)

    def _to_client(self, upstream: socket.socket, client: socket.socket, lose: threading.Event) -> None:
        try:
            while chunk := upstream.recv(65536):
                if lose.is_set():  # LoopBack acted and answered: the answer goes nowhere
                    self.lost.set()
                    break
                client.sendall(chunk)
        except OSError:
            pass
        finally:
            _shut(client)
            _shut(upstream)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)  # wakes the other thread's recv, unlike close()
    sock.close()


@pytest.fixture
def lossy(loopback: LoopBack) -> Iterator[SnoopAnswerLoser]:
    proxy = SnoopAnswerLoser(loopback.url)
    try:
        yield proxy
    finally:
        proxy.close()


@pytest.mark.dagrun
@requires_airflow("3.3", why="the call ledger lives in the task state store, new in Airflow 3.3")
def test_a_lost_snoop_answer_fails_without_retries_one_identity_one_snoop(
    airflow_db: None, loopback: LoopBack, lossy: SnoopAnswerLoser, monkeypatch: pytest.MonkeyPatch, capfd: Any
) -> None:
    from airflow.sdk import DAG

    from airflow_provider_signzy.operators.product import SignzyProductOperator
    from airflow_provider_signzy.operators.signzy import SignzyLoginOperator, SignzyLogoutOperator

    point_default_connection(monkeypatch, lossy.url)
    retries = {"retries": 2, "retry_delay": dt.timedelta(seconds=1)}
    with DAG("loopback_lost_snoop", schedule=None, start_date=START, catchup=False, default_args=retries) as dag:
        login = SignzyLoginOperator()
        verify = SignzyProductOperator(
            task_id="verify", product="pan.verification", essentials={"number": PAN, "name": NAME}
        )
        login >> verify >> SignzyLogoutOperator().as_teardown(setups=login)

    run = run_dag(dag)
    assert lossy.lost.is_set(), lossy.requests  # the proxy did lose LoopBack's answer
    states = task_states(run)
    ti = next(t for t in run.get_task_instances() if t.task_id == "verify")
    assert str(ti.state) == "failed", states
    assert ti.try_number == 1  # its retries were not used: a second try could only send the snoop again
    assert states["signzy_logout"] == "success", states
    assert lossy.requests.count(f"POST {SNOOPS_ENDPOINT}") == 1
    assert loopback.counts() == (1, 1)  # one identity, one snoop
    output = console_text(capfd)
    assert "it may have been charged" in output
    [identity] = loopback.identities()
    assert identity["accessToken"] not in unwrapped(output)
