"""SignzyHook against the emulator over real HTTP: no request is mocked."""

from __future__ import annotations

import dataclasses
import re
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_signzy.emulator import Patron, SignzyEmulator
from airflow_provider_signzy.exceptions import (
    SignzyAuthError,
    SignzyClientError,
    SignzyConfigError,
    SignzyConnectionError,
    SignzyOutcomeUnknownError,
    SignzyPermissionError,
    SignzyRateLimitError,
    SignzyServerError,
)
from airflow_provider_signzy.hooks.signzy import SignzyHook

LOGIN = "/api/v2/patrons/login"
IDENTITIES = "/api/v2/patrons/patron-demo-0001/identities"
KEY = "demo-api-key-0123456789"

MakeConn = Callable[..., str]


def requests_to(emu: SignzyEmulator, method: str, route: str) -> int:
    return emu.state.snapshot()["requests"].get(f"{method} {route}", 0)


def retry_waits(text: str) -> list[float]:
    return [float(w) for w in re.findall(r"retrying in ([0-9.]+)s", text)]


# -- connection ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"login": ""}, "Connection 'bad' has no Username (login field)"),
        ({"password": ""}, "Connection 'bad' has no API key (password field)"),
        ({"url": "signzy.tech"}, "Connection 'bad': Base URL (host field) must start with https:// or http://"),
        ({"timeout": "soon"}, "Connection 'bad': extra 'timeout' must be a number"),
        ({"max_attempts": 0}, "Connection 'bad': extra 'max_attempts' must be a number >= 1"),
        ({"token_in": "cookie"}, "Connection 'bad': extra 'token_in' must be 'header' or 'query'"),
        ({"login_path": "login"}, "Connection 'bad': extra 'login_path' must be a path starting with '/'"),
        ({"token_ttl": "1 day"}, "Connection 'bad': extra 'token_ttl' must be a whole number of seconds"),
    ],
)
def test_bad_connection_fails_naming_connection_and_field(
    make_conn: MakeConn, fields: dict[str, object], expected: str
) -> None:
    make_conn("bad", **fields)
    with pytest.raises(SignzyConfigError) as raised:
        SignzyHook("bad").login()
    assert expected in str(raised.value)
    assert KEY not in str(raised.value)


def test_connection_defaults_and_old_style_extras(make_conn: MakeConn, emulator: SignzyEmulator) -> None:
    make_conn(**{"extra__signzy__timeout": "7.5", "verify": "false"})
    config = SignzyHook().config
    assert config.timeout == 7.5
    assert config.connect_timeout == 7.5
    assert config.verify is False
    assert config.max_attempts == 5
    assert config.login_path == LOGIN
    assert config.base_url == emulator.url
    assert KEY not in repr(config)


# -- login, logout, calls ------------------------------------------------------------------------


def test_login_call_logout_roundtrip(make_conn: MakeConn, emulator: SignzyEmulator) -> None:
    make_conn()
    hook = SignzyHook()
    token = hook.login(ttl=120)
    assert token.user_id == "patron-demo-0001"
    assert token.ttl == 120
    assert 119 <= token.seconds_left() <= 120
    created = hook.request("POST", IDENTITIES, token=token, json={"type": "individualPan"}).json()
    assert created["patronId"] == "patron-demo-0001"
    listed = hook.request("GET", IDENTITIES, token=token).json()
    assert [i["id"] for i in listed] == [created["id"]]
    assert hook.logout(token) is True
    assert hook.logout(token) is False  # already dead: the goal, not an error
    state = emulator.state.snapshot()
    assert state["logins"] == 1
    assert state["live_tokens"] == 0


def test_ttl_from_connection_and_lenient_ttl_string(make_conn: MakeConn) -> None:
    with SignzyEmulator(ttl_as_string=True) as emu:
        make_conn(url=emu.url, token_ttl=900)
        token = SignzyHook().login()
    assert token.ttl == 900


def test_token_in_query(make_conn: MakeConn, emulator: SignzyEmulator) -> None:
    make_conn(token_in="query")
    with SignzyHook() as hook:
        assert hook.request("GET", IDENTITIES).json() == []
    assert emulator.state.snapshot()["live_tokens"] == 0


def test_one_keep_alive_connection_for_all_calls(make_conn: MakeConn, emulator: SignzyEmulator) -> None:
    make_conn()
    with SignzyHook() as hook:
        for _ in range(25):
            hook.request("GET", IDENTITIES)
    state = emulator.state.snapshot()
    assert state["connections"] == 1
    assert state["logins"] == 1
    assert state["live_tokens"] == 0  # the hook revoked its own token on close


def test_full_urls_are_refused_so_the_token_stays_home(make_conn: MakeConn, emulator: SignzyEmulator) -> None:
    make_conn()
    with SignzyHook() as hook, pytest.raises(SignzyConfigError, match="full URL"):
        hook.request("GET", "https://elsewhere.example/steal")
    assert emulator.state.snapshot()["logins"] == 0


def test_login_shape_problems_are_clear(make_conn: MakeConn, emulator: SignzyEmulator) -> None:
    make_conn()
    emulator.faults.add(
        {
            "path": LOGIN,
            "faults": [
                {"status": 200, "body": "<html>maintenance</html>", "content_type": "text/html"},
                {"status": 200, "body": {"token": "x"}},
            ],
        }
    )
    with pytest.raises(Exception, match="not JSON"):
        SignzyHook().login()
    with pytest.raises(Exception, match="lacks 'id', 'userId'"):
        SignzyHook().login()


# -- status classes and the retry policy -----------------------------------------------------------


def test_wrong_api_key_is_not_retried(make_conn: MakeConn, emulator: SignzyEmulator, leak_check) -> None:
    make_conn(password="not-the-key-987654")
    with pytest.raises(SignzyAuthError) as raised:
        SignzyHook().login()
    message = str(raised.value)
    assert "LOGIN_FAILED" in message
    assert "Check the Username and API key of connection 'signzy_default'" in message
    assert "not-the-key-987654" not in message
    assert requests_to(emulator, "POST", LOGIN) == 1
    leak_check.assert_absent("not-the-key-987654")


@pytest.mark.parametrize(
    ("fault", "error", "code"),
    [
        ({"status": 400, "code": "BAD_REQUEST"}, SignzyClientError, "BAD_REQUEST"),
        ({"status": 404, "code": "MODEL_NOT_FOUND"}, SignzyClientError, "MODEL_NOT_FOUND"),
        ({"status": 422, "code": "VALIDATION"}, SignzyClientError, "VALIDATION"),
        ({"status": 403, "code": "ACCESS_DENIED"}, SignzyPermissionError, "ACCESS_DENIED"),
    ],
)
def test_client_errors_fail_at_once_with_status_code_and_message(
    make_conn: MakeConn, emulator: SignzyEmulator, fault: dict[str, object], error: type, code: str
) -> None:
    make_conn()
    emulator.faults.add({"path": IDENTITIES, "faults": [{**fault, "message": "told you so"}]})
    with SignzyHook() as hook, pytest.raises(error) as raised:
        hook.request("GET", IDENTITIES)
    assert raised.value.status == fault["status"]
    assert raised.value.code == code
    assert raised.value.signzy_message == "told you so"
    assert f"{fault['status']} {code} to GET {IDENTITIES}: told you so" in str(raised.value)
    assert requests_to(emulator, "GET", "/api/v2/patrons/{userId}/identities") == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retried_then_reported(
    make_conn: MakeConn, emulator: SignzyEmulator, status: int, leak_check
) -> None:
    make_conn(max_attempts=3)
    emulator.faults.add({"path": IDENTITIES, "faults": [{"status": status}] * 3})
    with SignzyHook() as hook, pytest.raises(SignzyServerError) as raised:
        hook.request("GET", IDENTITIES)
    assert raised.value.status == status
    if status in (502, 504):
        assert "an HTML page" in str(raised.value)
    assert requests_to(emulator, "GET", "/api/v2/patrons/{userId}/identities") == 3
    log = leak_check.logged()
    assert len(retry_waits(log)) == 2
    assert f"attempt 1 of 3 failed ({status}" in log


def test_transient_failures_then_success(make_conn: MakeConn, emulator: SignzyEmulator) -> None:
    make_conn()
    emulator.faults.add({"path": LOGIN, "faults": [{"status": 502}, {"status": 503}]})
    emulator.faults.add({"path": IDENTITIES, "faults": [{"status": 429}, {"status": 403, "code": "LIMIT"}]})
    with SignzyHook() as hook:
        assert hook.request("POST", IDENTITIES, json={"type": "x"}).status_code == 200
    state = emulator.state.snapshot()
    assert state["requests"][f"POST {LOGIN}"] == 3
    assert state["requests"]["POST /api/v2/patrons/{userId}/identities"] == 3
    assert state["identities_created"] == 1  # rate-limited attempts were refused, not acted on
    assert state["live_tokens"] == 0


def test_retry_after_is_honoured(make_conn: MakeConn, emulator: SignzyEmulator, leak_check) -> None:
    make_conn(backoff_max=5)
    emulator.faults.add({"path": IDENTITIES, "faults": [{"status": 429, "retry_after": 1}]})
    with SignzyHook() as hook:
        hook.login()  # keep the login out of the timing
        started = time.monotonic()
        hook.request("GET", IDENTITIES)
        elapsed = time.monotonic() - started
    assert retry_waits(leak_check.logged()) == [1.0]
    assert elapsed >= 1.0


def test_backoff_grows_exponentially_with_bounded_jitter(make_conn: MakeConn, emulator, leak_check) -> None:
    make_conn(max_attempts=4, backoff_initial=0.05, backoff_max=10)
    emulator.faults.add({"path": IDENTITIES, "faults": [{"status": 503}] * 3})
    with SignzyHook() as hook:
        hook.request("GET", IDENTITIES)
    waits = retry_waits(leak_check.logged())
    assert len(waits) == 3
    for n, wait in enumerate(waits):
        assert 0.05 * 2**n <= wait <= 0.05 * 2**n + 0.05 + 0.005  # rounding of the logged figure


def test_backoff_max_caps_the_wait(make_conn: MakeConn, emulator: SignzyEmulator, leak_check) -> None:
    make_conn(backoff_initial=0.01, backoff_max=0.2)
    emulator.faults.add({"path": IDENTITIES, "faults": [{"status": 429, "retry_after": 30}]})
    with SignzyHook() as hook:
        hook.request("GET", IDENTITIES)
    assert retry_waits(leak_check.logged()) == [0.2]


def test_post_with_lost_answer_is_sent_exactly_once(make_conn: MakeConn, emulator: SignzyEmulator) -> None:
    make_conn()
    emulator.faults.add({"path": IDENTITIES, "method": "POST", "faults": [{"drop": "after"}]})
    with SignzyHook() as hook, pytest.raises(SignzyOutcomeUnknownError) as raised:
        hook.request("POST", IDENTITIES, json={"type": "individualPan"})
    assert isinstance(raised.value, AirflowFailException)  # Airflow's retries would send it again
    assert isinstance(raised.value.cause, SignzyConnectionError)
    assert raised.value.cause.reached_server is True
    assert "it may have been charged" in str(raised.value)
    state = emulator.state.snapshot()
    assert state["requests"]["POST /api/v2/patrons/{userId}/identities"] == 1
    assert state["identities_created"] == 1
    assert state["live_tokens"] == 0


def test_post_that_timed_out_is_not_resent(make_conn: MakeConn, emulator: SignzyEmulator) -> None:
    make_conn(timeout=0.3)
    emulator.faults.add({"path": IDENTITIES, "method": "POST", "faults": [{"delay": 0.6}]})
    with SignzyHook() as hook, pytest.raises(SignzyOutcomeUnknownError, match="read timeout"):
        hook.request("POST", IDENTITIES, json={"type": "individualPan"})
    assert requests_to(emulator, "POST", "/api/v2/patrons/{userId}/identities") == 1


def test_post_5xx_is_not_resent_unless_idempotent(make_conn: MakeConn, emulator: SignzyEmulator) -> None:
    make_conn()
    emulator.faults.add({"path": IDENTITIES, "method": "POST", "faults": [{"status": 503}, {"status": 503}]})
    with SignzyHook() as hook:
        with pytest.raises(SignzyOutcomeUnknownError) as raised:
            hook.request("POST", IDENTITIES, json={"type": "x"})
        assert isinstance(raised.value.cause, SignzyServerError)
        assert raised.value.status == 503
        assert hook.request("POST", IDENTITIES, json={"type": "x"}, idempotent=True).ok
    assert requests_to(emulator, "POST", "/api/v2/patrons/{userId}/identities") == 3


def test_get_after_a_dropped_connection_is_retried(make_conn: MakeConn, emulator: SignzyEmulator) -> None:
    make_conn()
    emulator.faults.add({"path": IDENTITIES, "faults": [{"drop": "after"}]})
    with SignzyHook() as hook:
        assert hook.request("GET", IDENTITIES).json() == []
    assert requests_to(emulator, "GET", "/api/v2/patrons/{userId}/identities") == 2


def test_refused_connection_is_safe_to_resend_even_for_post(make_conn: MakeConn, leak_check) -> None:
    with socket.socket() as probe:  # a port with nobody listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    make_conn(url=f"http://127.0.0.1:{port}", max_attempts=3)
    with pytest.raises(SignzyConnectionError) as raised:
        SignzyHook().login()
    assert raised.value.reached_server is False
    assert "could not be opened" in str(raised.value)
    assert len(retry_waits(leak_check.logged())) == 2


# -- tokens: expiry, re-login, permissions --------------------------------------------------------


def test_expired_token_logs_in_again_once(make_conn: MakeConn, emulator: SignzyEmulator) -> None:
    make_conn()
    with SignzyHook() as hook:
        caller_token = hook.login(ttl=60)
        emulator.state.advance_clock(61)  # the server expires it; the client cannot know
        assert hook.request("GET", IDENTITIES, token=caller_token).ok
        assert hook.request("GET", IDENTITIES, token=caller_token).ok  # reuses the replacement
        assert hook.owned_token is not None
    state = emulator.state.snapshot()
    assert state["logins"] == 2
    assert state["live_tokens"] == 0  # the replacement was the hook's to revoke


def test_a_replacement_that_expires_too_is_replaced_again(make_conn: MakeConn, emulator: SignzyEmulator) -> None:
    make_conn(token_ttl=60)
    with SignzyHook() as hook:
        caller_token = hook.login(ttl=60)
        emulator.state.advance_clock(61)
        assert hook.request("GET", IDENTITIES, token=caller_token).ok  # replaced by a fresh token
        emulator.state.advance_clock(61)  # the replacement expires on the server too
        assert hook.request("GET", IDENTITIES, token=caller_token).ok  # replaced once more
        assert hook.request("GET", IDENTITIES, token=caller_token).ok  # and that one is reused
    state = emulator.state.snapshot()
    assert state["logins"] == 3
    assert state["live_tokens"] == 0


def test_hook_renews_its_own_token_before_expiry(make_conn: MakeConn, emulator: SignzyEmulator) -> None:
    make_conn(token_ttl=600)
    with SignzyHook() as hook:
        hook.request("GET", IDENTITIES)
        first = hook.owned_token
        assert first is not None
        # Nine and a half minutes pass on the client's clock: the token has 30 s left, under a tenth of its
        # lifetime. Moving the expiry instead of sleeping keeps the old token alive on the server, so the
        # test can see it revoked rather than expired, whatever the machine's load.
        hook._own_token = dataclasses.replace(first, expires_at=datetime.now(UTC) + timedelta(seconds=30))
        hook.request("GET", IDENTITIES)
        assert hook.owned_token is not None
        assert hook.owned_token.id != first.id
    state = emulator.state.snapshot()
    assert state["logins"] == 2
    assert state["logouts"] == 2  # the old token was revoked, not left to expire
    assert state["live_tokens"] == 0


def test_second_401_is_a_permission_problem(make_conn: MakeConn) -> None:
    patrons = [Patron("demo", KEY, "patron-demo-0001"), Patron("bob", "bob-key-1234567", "patron-b")]
    with SignzyEmulator(patrons) as emu:
        make_conn(url=emu.url)
        with SignzyHook() as hook, pytest.raises(SignzyPermissionError) as raised:
            hook.request("GET", "/api/v2/patrons/patron-b/identities")
        assert "a fresh token too" in str(raised.value)
        assert "permission problem, not an expired token" in str(raised.value)
        state = emu.state.snapshot()
        assert state["logins"] == 2
        assert state["live_tokens"] == 0


def test_loopback2_envelope_is_read(make_conn: MakeConn) -> None:
    with SignzyEmulator(loopback2=True) as emu:
        make_conn(url=emu.url, password="wrong-key-000000")
        with pytest.raises(SignzyAuthError) as raised:
            SignzyHook().login()
    assert raised.value.status == 401
    assert raised.value.code == "LOGIN_FAILED"


def test_rate_limit_error_carries_retry_after(make_conn: MakeConn, emulator: SignzyEmulator) -> None:
    make_conn(max_attempts=1)
    emulator.faults.add({"path": IDENTITIES, "faults": [{"status": 429, "retry_after": 7}]})
    with SignzyHook() as hook, pytest.raises(SignzyRateLimitError) as raised:
        hook.request("GET", IDENTITIES)
    assert raised.value.retry_after == 7.0


# -- test_connection --------------------------------------------------------------------------------


def test_test_connection_leaves_no_live_token(make_conn: MakeConn, emulator: SignzyEmulator) -> None:
    make_conn()
    ok, message = SignzyHook().test_connection()
    assert ok, message
    assert "patron-demo-0001" in message
    state = emulator.state.snapshot()
    assert state["logins"] == 1
    assert state["logouts"] == 1
    assert state["live_tokens"] == 0


def test_test_connection_reports_a_wrong_key(make_conn: MakeConn) -> None:
    make_conn(password="wrong-key-000000")
    ok, message = SignzyHook().test_connection()
    assert not ok
    assert "LOGIN_FAILED" in message
    assert "wrong-key-000000" not in message
