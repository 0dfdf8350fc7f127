"""Sealing results, opening them, and the shape rendered fields show (synthetic personal data only)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from conftest import AIRFLOW_FERNET_KEY
from cryptography.fernet import Fernet

from airflow_provider_signzy.exceptions import SignzyConfigError
from airflow_provider_signzy.privacy import PLAIN, ResultSealer, is_sealed, seal, shape_of, unseal
from airflow_provider_signzy.privacy.sealing import SEAL_KEY, check_privacy
from airflow_provider_signzy.utils.fernet_cipher import SignzyCipher

ANSWER = {
    "id": "idn-0001",
    "status": "initiated",
    "name": "Asha Testcase",
    "pan": "ABCDE1234F",
    "dob": "1990-01-31",
    "address": {"line1": "12 Sample Road", "pin": "560001"},
    "phone": "+91 98765 43210",
    "score": 0.93,
}
PERSONAL = ("Asha Testcase", "ABCDE1234F", "1990-01-31", "12 Sample Road", "560001", "98765 43210")


def sealer(**kwargs: object) -> ResultSealer:
    """The sealer an operator builds: the connection's extras decide the keys."""
    from airflow_provider_signzy.hooks.signzy import SignzyHook

    return ResultSealer.for_connection("signzy_default", SignzyHook().config.extra, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def conn(make_conn: Callable[..., str]) -> str:
    return make_conn()


def test_a_sealed_answer_keeps_only_id_and_status_readable(conn: str) -> None:
    sealed = sealer().seal(ANSWER)
    assert is_sealed(sealed)
    assert (sealed["id"], sealed["status"]) == ("idn-0001", "initiated")
    stored = json.dumps(sealed)
    for value in PERSONAL:
        assert value not in stored
    assert unseal(sealed) == ANSWER


def test_a_list_answer_is_sealed_item_by_item(conn: str) -> None:
    answers = [dict(ANSWER, id=f"idn-{n}") for n in range(3)]
    sealed = sealer().seal(answers)
    assert [s["id"] for s in sealed] == ["idn-0", "idn-1", "idn-2"]
    assert "ABCDE1234F" not in json.dumps(sealed)
    assert unseal(sealed) == answers


def test_clear_fields_are_configurable_and_only_scalars_stay_readable(conn: str) -> None:
    sealed = sealer(clear_fields=("score", "address")).seal(ANSWER)
    assert sealed["score"] == 0.93
    assert "address" not in sealed  # a nested object is never left readable, even when named
    assert "id" not in sealed


def test_plain_stores_the_answer_as_is(conn: str) -> None:
    assert sealer(result_privacy=PLAIN).seal(ANSWER) == ANSWER


def test_unseal_opens_sealed_values_anywhere_and_leaves_the_rest(conn: str) -> None:
    results = [{"index": 0, "ok": True, "response": sealer().seal(ANSWER)}, {"index": 1, "ok": False, "response": None}]
    assert unseal(results) == [
        {"index": 0, "ok": True, "response": ANSWER},
        {"index": 1, "ok": False, "response": None},
    ]
    plain = {"a": [1, "x"]}
    assert unseal(plain) is plain


def test_seal_for_taskflow_tasks_round_trips(conn: str) -> None:
    bodies = [{"type": "individualPan", "pan": "ABCDE1234F"}]
    sealed = seal(bodies)
    assert "ABCDE1234F" not in json.dumps(sealed)
    assert unseal(sealed) == bodies


def test_the_connection_key_seals_and_airflows_key_cannot_open_it(make_conn: Callable[..., str]) -> None:
    own_key = Fernet.generate_key().decode()
    make_conn(xcom_fernet_key=own_key)
    sealed = sealer().seal(ANSWER)
    data = sealed[SEAL_KEY]["data"]
    assert Fernet(own_key.encode()).decrypt(data.encode())  # sealed with the connection's key
    make_conn(xcom_fernet_key=Fernet.generate_key().decode())  # the key changed without rotation
    with pytest.raises(SignzyConfigError, match=r"sealed for connection 'signzy_default' that .* cannot decrypt"):
        unseal(sealed)


def test_rotated_keys_still_open_old_values(make_conn: Callable[..., str]) -> None:
    old = Fernet.generate_key().decode()
    make_conn(xcom_fernet_key=old)
    sealed = sealer().seal(ANSWER)
    make_conn(xcom_fernet_key=f"{Fernet.generate_key().decode()},{old}")
    assert unseal(sealed) == ANSWER


def test_without_any_fernet_key_sealing_refuses_and_says_how_to_fix(conn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import airflow_provider_signzy.utils.fernet_cipher as cipher_module

    monkeypatch.setattr(cipher_module, "_airflow_fernet", lambda: None)  # a deployment with no [core] fernet_key
    assert not SignzyCipher.for_connection({}, "signzy_default").encrypts
    with pytest.raises(SignzyConfigError) as caught:
        sealer()
    message = str(caught.value)
    for needed in (
        "personal data",
        "[core] fernet_key",
        "xcom_fernet_key",
        "'signzy_default'",
        "result_privacy='plain'",
    ):
        assert needed in message
    assert sealer(result_privacy=PLAIN).seal(ANSWER) == ANSWER


def test_a_newer_format_is_refused_by_name(conn: str) -> None:
    sealed = sealer().seal(ANSWER)
    sealed[SEAL_KEY]["v"] = 99
    with pytest.raises(SignzyConfigError, match="format version 99"):
        unseal(sealed)


def test_arguments_are_checked_at_parse_time() -> None:
    with pytest.raises(ValueError, match="result_privacy"):
        check_privacy("open", None)
    with pytest.raises(ValueError, match="clear_fields"):
        check_privacy("sealed", "id")
    assert check_privacy("sealed", None) == ("sealed", ("id", "status"))


def test_the_shape_shows_keys_types_and_lengths_not_values() -> None:
    body = {"type": "individualPan", "pan": "ABCDE1234F", "images": ["https://x/a.jpg", "https://x/b.jpg"], "ok": True}
    shape = shape_of(body)
    assert shape == {
        "type": "<str, 13 chars>",
        "pan": "<str, 10 chars>",
        "images": ["<list, 2 items>", "<str, 15 chars>"],
        "ok": True,
    }
    assert shape_of([body, body])[0] == "<list, 2 items>"
    assert "ABCDE1234F" not in json.dumps(shape_of([body] * 3))


def test_the_test_key_is_airflows() -> None:
    # The tests above seal with Airflow's [core] fernet_key unless a connection sets its own.
    assert SignzyCipher.for_connection({}, "x").key_source == "Airflow [core] fernet_key"
    assert AIRFLOW_FERNET_KEY


def test_httpx_request_lines_lose_their_query_string(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    import httpx

    from airflow_provider_signzy.privacy.http_logs import strip_httpx_query_strings

    strip_httpx_query_strings()
    strip_httpx_query_strings()  # twice in a process: one filter
    url = httpx.URL("http://127.0.0.1:8089/api/v2/patrons/p/identities/i?ref=ABCDE1234F&access_token=secret-1")
    with caplog.at_level(logging.INFO, logger="httpx"):
        # The exact call httpx makes for every request (httpx/_client.py).
        logging.getLogger("httpx").info('HTTP Request: %s %s "%s %d %s"', "GET", url, "HTTP/1.1", 200, "OK")
    [record] = [r for r in caplog.records if r.name == "httpx"]
    shown = 'HTTP Request: GET http://127.0.0.1:8089/api/v2/patrons/p/identities/i "HTTP/1.1 200 OK"'
    assert record.getMessage() == shown
    assert len(logging.getLogger("httpx").filters) == 1
