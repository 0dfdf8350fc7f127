"""SignzyToken parsing and its encrypted XCom form."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import Fernet

from airflow_provider_signzy.exceptions import SignzyConfigError, SignzyResponseError
from airflow_provider_signzy.utils.access_token import DEFAULT_TTL_SECONDS, SignzyToken, parse_ttl
from airflow_provider_signzy.utils.fernet_cipher import SignzyCipher

SENT = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
TOKEN = "t" * 64


@pytest.mark.parametrize(
    ("raw", "seconds"),
    [
        (1209600, 1209600),
        ("1209600", 1209600),
        (" 600 ", 600),
        (600.0, 600),
        ("600.9", 600),
        (None, DEFAULT_TTL_SECONDS),
    ],
)
def test_ttl_is_parsed_leniently(raw: object, seconds: int) -> None:
    assert parse_ttl(raw) == seconds


@pytest.mark.parametrize("raw", ["soon", -5, 0, True, [600], float("nan")])
def test_nonsense_ttl_is_refused(raw: object) -> None:
    with pytest.raises(ValueError, match="ttl"):
        parse_ttl(raw)


def test_login_response_gives_expiry_from_send_time() -> None:
    body = {"id": TOKEN, "ttl": "3600", "created": "2023-03-02T15:21:31.457Z", "userId": "p1"}
    token = SignzyToken.from_login_response(body, sent_at=SENT, conn_id="c")
    assert token.user_id == "p1"
    assert token.ttl == 3600
    assert token.created == datetime(2023, 3, 2, 15, 21, 31, 457000, tzinfo=UTC)
    assert token.expires_at == SENT + timedelta(seconds=3600)
    assert TOKEN not in repr(token)


def test_needs_refresh_in_the_last_tenth_or_minute() -> None:
    token = SignzyToken.from_login_response({"id": TOKEN, "ttl": 100, "userId": "p"}, sent_at=SENT)
    assert not token.needs_refresh(SENT + timedelta(seconds=89))
    assert token.needs_refresh(SENT + timedelta(seconds=91))
    long_lived = SignzyToken.from_login_response({"id": TOKEN, "ttl": 7200, "userId": "p"}, sent_at=SENT)
    assert not long_lived.needs_refresh(SENT + timedelta(seconds=7139))
    assert long_lived.needs_refresh(SENT + timedelta(seconds=7141))


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ([], "a list, not the login object"),
        ({"ttl": 5}, "lacks 'id', 'userId'"),
        ({"id": TOKEN}, "lacks 'userId'"),
        ({"id": TOKEN, "userId": "p", "ttl": "forever"}, "unreadable 'ttl'"),
    ],
)
def test_bad_login_bodies_are_named_without_the_token(body: object, problem: str) -> None:
    with pytest.raises(SignzyResponseError, match=problem) as raised:
        SignzyToken.from_login_response(body, sent_at=SENT, conn_id="signzy_default")
    assert "signzy_default" in str(raised.value)
    assert TOKEN not in str(raised.value)


def _token() -> SignzyToken:
    return SignzyToken.from_login_response({"id": TOKEN, "ttl": 60, "userId": "p"}, sent_at=SENT, conn_id="c")


def test_xcom_record_is_encrypted_with_the_connection_key() -> None:
    cipher = SignzyCipher.for_connection({"xcom_fernet_key": Fernet.generate_key().decode()}, "c")
    record = _token().to_xcom(cipher)
    assert record["encrypted"] is True
    assert TOKEN not in str(record)
    assert record["user_id"] == "p"
    assert SignzyToken.from_xcom(record, cipher, source="task x") == _token()


def test_xcom_record_uses_airflows_fernet_key_by_default() -> None:
    cipher = SignzyCipher.for_connection({}, "c")  # conftest sets [core] fernet_key
    assert cipher.key_source == "Airflow [core] fernet_key"
    record = _token().to_xcom(cipher)
    assert TOKEN not in str(record)
    assert SignzyToken.from_xcom(record, cipher, source="task x").id == TOKEN


def test_key_rotation_reads_records_of_the_old_key() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    record = _token().to_xcom(SignzyCipher.for_connection({"xcom_fernet_key": old}, "c"))
    rotated = SignzyCipher.for_connection({"xcom_fernet_key": f"{new},{old}"}, "c")
    assert SignzyToken.from_xcom(record, rotated, source="task x").id == TOKEN


def test_tampered_or_foreign_key_records_fail_clearly() -> None:
    cipher = SignzyCipher.for_connection({"xcom_fernet_key": Fernet.generate_key().decode()}, "c")
    record = _token().to_xcom(cipher)
    other = SignzyCipher.for_connection({"xcom_fernet_key": Fernet.generate_key().decode()}, "c")
    with pytest.raises(SignzyConfigError, match="encrypted under another key or changed"):
        SignzyToken.from_xcom(record, other, source="XCom of task 'signzy_login'")
    tampered = {**record, "token": record["token"][:-4] + "AAAA"}
    with pytest.raises(SignzyConfigError, match="XCom of task 'signzy_login'"):
        SignzyToken.from_xcom(tampered, cipher, source="XCom of task 'signzy_login'")


def test_not_a_record_is_named() -> None:
    cipher = SignzyCipher(None, key_source="none")
    with pytest.raises(SignzyConfigError, match="did not hold a Signzy token record"):
        SignzyToken.from_xcom("just a string", cipher, source="XCom of task 'x'")


def test_invalid_connection_key_is_named() -> None:
    with pytest.raises(SignzyConfigError, match="'xcom_fernet_key' is not a valid Fernet key"):
        SignzyCipher.for_connection({"xcom_fernet_key": "short"}, "c")


def test_without_any_key_the_token_is_plain_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        from airflow.sdk import crypto  # 3.1+: the Task SDK's get_fernet, an lru_cache
    except ImportError:  # before 3.1: core's, which the provider falls back to; cached in a global
        from airflow.models import crypto

    def forget_fernet() -> None:  # Airflow caches the Fernet it built from the key
        if hasattr(crypto.get_fernet, "cache_clear"):
            crypto.get_fernet.cache_clear()
        else:
            crypto._fernet = None  # type: ignore[attr-defined]

    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", "")
    forget_fernet()
    try:
        cipher = SignzyCipher.for_connection({}, "c")
    finally:
        monkeypatch.undo()
        forget_fernet()
    assert cipher.encrypts is False
    record = _token().to_xcom(cipher)
    assert record["encrypted"] is False
    assert SignzyToken.from_xcom(record, cipher, source="x").id == TOKEN
