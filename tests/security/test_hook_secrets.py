"""No token and no API key in any log line or exception the hook produces, failures included."""

from __future__ import annotations

import socket
import traceback
from collections.abc import Callable

import pytest

from airflow_provider_signzy.emulator import SignzyEmulator
from airflow_provider_signzy.exceptions import SignzyError
from airflow_provider_signzy.hooks.signzy import SignzyHook

KEY = "demo-api-key-0123456789"
IDENTITIES = "/api/v2/patrons/patron-demo-0001/identities"


def run_failure_tour(hook: SignzyHook, emulator: SignzyEmulator) -> tuple[list[str], list[str]]:
    """Drive the hook through every failure kind; returns (issued tokens, rendered exceptions)."""
    errors: list[str] = []
    token = hook.login(ttl=600)
    emulator.faults.add(
        {
            "path": IDENTITIES,
            "method": "GET",
            "faults": [{"status": 502}, {"status": 429, "retry_after": 0}, {"drop": "after"}],
        }
    )
    emulator.faults.add(
        {"path": IDENTITIES, "method": "POST", "faults": [{"status": 500}, {"status": 422, "code": "INVALID"}]}
    )
    hook.request("GET", IDENTITIES, token=token)  # 502, 429, drop, then success
    for _ in range(2):
        try:
            hook.request("POST", IDENTITIES, token=token, json={"type": "x"})
        except SignzyError as exc:
            errors.append(str(exc) + "".join(traceback.format_exception(exc)))
    emulator.state.advance_clock(601)  # expired on the server: 401, then a fresh login
    hook.request("GET", IDENTITIES, token=token)
    assert hook.owned_token is not None
    issued = [token.id, hook.owned_token.id]
    hook.logout(token)
    hook.close()
    return issued, errors


@pytest.mark.parametrize(("token_in", "level"), [("header", "DEBUG"), ("query", "INFO")])
def test_failure_tour_leaks_nothing(
    make_conn: Callable[..., str], emulator: SignzyEmulator, leak_check, token_in: str, level: str
) -> None:
    # urllib3 logs request lines, query string included, at DEBUG: with token_in=query a DEBUG log
    # would show the token (as any proxy would). The README says so; header mode is clean at DEBUG.
    leak_check.caplog.set_level(level)
    make_conn(token_in=token_in, max_attempts=4)
    issued, errors = run_failure_tour(SignzyHook(), emulator)
    assert len(errors) == 2
    for rendered in errors:
        for secret in (*issued, KEY):
            assert secret not in rendered
    leak_check.assert_absent(*issued, KEY)
    assert emulator.state.snapshot()["live_tokens"] == 0


def test_network_failures_in_query_mode_keep_the_token_out_of_the_message(
    make_conn: Callable[..., str], emulator: SignzyEmulator
) -> None:
    make_conn(token_in="query", max_attempts=1)
    hook = SignzyHook()
    token = hook.login()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    hook.config  # noqa: B018 - read the connection, then point the hook at a dead port
    hook.__dict__["config"] = hook.config.__class__(
        **{**hook.config.__dict__, "base_url": f"http://127.0.0.1:{dead_port}"}
    )
    with pytest.raises(SignzyError) as raised:
        hook.request("GET", IDENTITIES, token=token)
    rendered = "".join(traceback.format_exception(raised.value))
    assert "could not be opened" in rendered
    assert token.id not in rendered
