"""Signzy echoes input in its errors: the hook's errors and logs never quote it (all values synthetic)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_signzy.batch import REFUSED, SignzyBatch
from airflow_provider_signzy.emulator import SignzyEmulator
from airflow_provider_signzy.exceptions import SignzyClientError
from airflow_provider_signzy.hooks.signzy import SignzyHook

IDENTITIES = "/api/v2/patrons/patron-demo-0001/identities"
PAN = "ABCDE1234F"
MakeConn = Callable[..., str]


@pytest.mark.parametrize(
    ("images", "hidden", "said"),
    [
        (f"https://cdn.example/{PAN}/front.jpg", ["cdn.example", PAN], "could not create List from JSON string"),
        ("Asha Verma", ["Asha", "Verma"], "could not create List from JSON string"),
        ("asha.verma@example.com", ["asha.verma"], "could not create List from JSON string"),
        ("+91 98765 43210", ["98765", "43210"], "could not create List from JSON string"),
        ("1234 5678 9012", ["5678"], "could not create List from JSON string"),
        ({"name": "Asha Verma", "pan": PAN}, ["Asha", PAN], "Items must be an array"),
    ],
)
def test_an_echoed_value_is_in_neither_the_error_nor_the_logs(
    make_conn: MakeConn, leak_check: Any, images: object, hidden: list[str], said: str
) -> None:
    make_conn()
    with SignzyHook() as hook, pytest.raises(SignzyClientError) as raised:
        hook.request("POST", IDENTITIES, json={"type": "individualPan", "images": images})
    error = raised.value
    assert error.status == 400
    for shown in (str(error), error.signzy_message or ""):
        assert said in shown
        for value in hidden:
            assert value not in shown
    assert f"Signzy answered 400 to POST {IDENTITIES}" in str(error)
    leak_check.assert_absent(*hidden)


# -- batch paths: an item's fields fill the endpoint, and are never shown ---------------------------

ENDPOINT = "/api/v2/patrons/{patron_id}/identities/{pan}"
SHOWN = "/api/v2/patrons/patron-demo-0001/identities/{pan}"


def run_batch(endpoint: str, items: list[dict[str, Any]], *, method: str = "POST") -> list[dict[str, Any]]:
    with SignzyHook() as hook:
        return SignzyBatch(hook, endpoint=endpoint, method=method).run(items)


def test_a_batch_item_error_shows_the_endpoint_template(
    make_conn: MakeConn, emulator: SignzyEmulator, leak_check: Any
) -> None:
    # urllib3 logs each request line at DEBUG, and the path holds the PAN, as any proxy's log would:
    # Airflow logs at INFO, where nothing may show it.
    leak_check.caplog.set_level("INFO")
    make_conn()
    (result,) = run_batch(ENDPOINT, [{"pan": PAN, "type": "individualPan"}])
    assert (result["outcome"], result["status"]) == (REFUSED, 404)
    assert f"Signzy answered 404 METHOD_NOT_FOUND to POST {SHOWN}" in result["error"]
    assert PAN not in result["error"]
    assert emulator.state.snapshot()["requests"] == {
        "POST /api/v2/patrons/login": 1,
        "POST /api/v2/patrons/{userId}/identities/{id}": 1,  # the PAN's path was called
        "POST /api/v2/patrons/logout": 1,
    }
    leak_check.assert_absent(PAN)


def test_retry_and_relogin_log_lines_show_the_endpoint_template(
    make_conn: MakeConn, emulator: SignzyEmulator, leak_check: Any
) -> None:
    leak_check.caplog.set_level("INFO")
    make_conn()
    emulator.faults.add(
        {
            "path": "/api/v2/patrons/*/identities/*",
            "method": "GET",
            "faults": [{"status": 401, "code": "INVALID_TOKEN"}, {"status": 503}, {"status": 503}],
        }
    )
    (result,) = run_batch(ENDPOINT, [{"pan": PAN}], method="GET")
    assert (result["outcome"], result["status"]) == (REFUSED, 404)  # 'Unknown "identity" id "<the PAN>"'
    assert PAN not in result["error"]
    logged = leak_check.text()
    assert f"to GET {SHOWN}; the token is expired or revoked" in logged
    assert f"Signzy GET {SHOWN}: attempt 1 of 5 failed" in logged
    leak_check.assert_absent(PAN)


def test_values_of_any_shape_in_the_path_are_scrubbed_from_signzy_messages(make_conn: MakeConn) -> None:
    """Signzy's 404 repeats the path it got: a name there has no shape to recognise, but the hook knows it."""
    make_conn()
    (result,) = run_batch("/api/v2/patrons/{patron_id}/identities/{name}", [{"name": "Asha Verma"}])
    assert result["status"] == 404
    assert "There is no method to handle POST /identities/<redacted>" in result["error"]
    assert "Asha" not in result["error"]
    assert "Verma" not in result["error"]
