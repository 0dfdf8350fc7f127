"""Connection errors that help: a misspelled extra names the one it resembles; a network error names the host."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from airflow_provider_signzy.emulator import SignzyEmulator
from airflow_provider_signzy.exceptions import SignzyConfigError, SignzyConnectionError
from airflow_provider_signzy.hooks.signzy import SignzyHook

KEY = "demo-api-key-0123456789"
MakeConn = Callable[..., str]


@pytest.mark.parametrize(
    ("typo", "meant"),
    [("tokenttl", "token_ttl"), ("time_out", "timeout"), ("max_attempt", "max_attempts"), ("veriffy", "verify")],
)
def test_a_misspelled_extra_fails_with_the_name_it_resembles(make_conn: MakeConn, typo: str, meant: str) -> None:
    make_conn("signzy_typo", **{typo: 600})
    with pytest.raises(SignzyConfigError) as raised:
        SignzyHook("signzy_typo").login()  # before anything is sent: a typo would otherwise be ignored
    message = str(raised.value)
    assert f"Connection 'signzy_typo': unknown extra {typo!r}; did you mean {meant!r}?" in message
    assert KEY not in message


def test_extras_of_other_tools_are_left_alone(make_conn: MakeConn, emulator: SignzyEmulator) -> None:
    make_conn(owner_team="kyc-platform")  # a shared connection may carry extras that are not ours
    hook = SignzyHook()
    hook.logout(hook.login())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_connection_that_cannot_be_opened_names_the_host(make_conn: MakeConn) -> None:
    port = free_port()  # nothing listens there
    make_conn(url=f"http://127.0.0.1:{port}", max_attempts=1)
    with pytest.raises(SignzyConnectionError) as raised:
        SignzyHook().login()
    message = str(raised.value)
    assert f"(host 127.0.0.1:{port})" in message
    assert "connection could not be opened" in message
    assert "(connection 'signzy_default')" in message
    assert KEY not in message


def test_a_missing_connection_says_how_to_create_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_SIGNZY_NOWHERE", raising=False)
    with pytest.raises(SignzyConfigError) as raised:
        SignzyHook("signzy_nowhere").login()
    message = str(raised.value)
    assert message.startswith("There is no Airflow connection 'signzy_nowhere'. Create one of type 'signzy'")
    assert "airflow connections add signzy_nowhere --conn-type signzy" in message
    assert "AIRFLOW_CONN_SIGNZY_NOWHERE=" in message
