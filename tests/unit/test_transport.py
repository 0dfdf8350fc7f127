"""Transport: a ``signzy`` connection sends the API key and customers' data over https://, or stays on this machine."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from airflow_provider_signzy.emulator import SignzyEmulator
from airflow_provider_signzy.exceptions import SignzyConfigError
from airflow_provider_signzy.hooks.signzy import SignzyHook
from airflow_provider_signzy.utils.connection_form import CONN_FIELDS

KEY = "demo-api-key-0123456789"
REPO = Path(__file__).resolve().parents[2]
MakeConn = Callable[..., str]


@pytest.mark.parametrize(
    "url",
    [
        "http://signzy.tech",
        "http://preproduction.signzy.tech/",
        "http://signzy-emulator:8089",
        "http://10.0.0.5:8089",
        "http://192.168.1.20",
        "http://[2001:db8::1]:8089",
        "http://localhost.example.com",
        "http://127.0.0.1.nip.io",
        "HTTP://Signzy.Tech",
    ],
)
def test_plain_http_to_another_machine_is_refused(make_conn: MakeConn, emulator: SignzyEmulator, url: str) -> None:
    make_conn("signzy_plain", url=url)
    with pytest.raises(SignzyConfigError) as raised:
        SignzyHook("signzy_plain").login()  # refused before anything is sent
    message = str(raised.value)
    assert "Connection 'signzy_plain'" in message
    assert "Base URL (host field)" in message
    assert "https://" in message
    assert '"allow_insecure_http": true' in message
    assert "unencrypted" in message
    assert KEY not in message
    assert raised.value.conn_id == "signzy_plain"
    assert emulator.state.snapshot()["total_requests"] == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8089",
        "http://127.10.20.30",
        "http://localhost:8089",
        "http://LOCALHOST",
        "http://[::1]:8089",
        "https://signzy.tech",
        "https://preproduction.signzy.tech",
        "https://10.0.0.5:8443",
    ],
)
def test_https_and_loopback_http_are_allowed(make_conn: MakeConn, url: str) -> None:
    make_conn("signzy_ok", url=url)
    assert SignzyHook("signzy_ok").config.base_url.lower() == url.lower()


def test_loopback_http_reaches_the_emulator(make_conn: MakeConn, emulator: SignzyEmulator) -> None:
    make_conn()  # http://127.0.0.1:<port>
    with SignzyHook() as hook:
        assert hook.login(ttl=60).user_id == "patron-demo-0001"


@pytest.mark.parametrize("value", [True, "true", "True", "yes", "1", 1])
def test_allow_insecure_http_lets_a_private_test_server_through(make_conn: MakeConn, value: object) -> None:
    make_conn("signzy_lab", url="http://signzy-emulator:8089", allow_insecure_http=value)
    assert SignzyHook("signzy_lab").config.base_url == "http://signzy-emulator:8089"


def test_allow_insecure_http_from_an_old_style_form_extra(make_conn: MakeConn) -> None:
    make_conn("signzy_lab", url="http://10.0.0.5:8089", **{"extra__signzy__allow_insecure_http": "true"})
    assert SignzyHook("signzy_lab").config.base_url == "http://10.0.0.5:8089"


@pytest.mark.parametrize("value", [False, "false", "no", "0", 0, ""])
def test_allow_insecure_http_off_refuses(make_conn: MakeConn, value: object) -> None:
    make_conn("signzy_lab", url="http://10.0.0.5:8089", allow_insecure_http=value)
    with pytest.raises(SignzyConfigError, match="allow_insecure_http"):
        SignzyHook("signzy_lab").config  # noqa: B018


def test_allow_insecure_http_that_is_not_a_boolean_names_the_extra(make_conn: MakeConn) -> None:
    make_conn("signzy_lab", url="http://10.0.0.5:8089", allow_insecure_http="maybe")
    with pytest.raises(SignzyConfigError) as raised:
        SignzyHook("signzy_lab").config  # noqa: B018
    assert "Connection 'signzy_lab': extra 'allow_insecure_http' must be true or false" in str(raised.value)


def test_the_form_offers_the_extra_off_by_default() -> None:
    from wtforms import BooleanField

    spec = CONN_FIELDS["allow_insecure_http"]
    assert spec["schema"] == {"type": ["boolean", "null"], "default": False}
    for words in ("API key", "personal data", "unencrypted", "test server"):
        assert words in spec["description"]
    assert SignzyHook.get_connection_form_widgets()["allow_insecure_http"].field_class is BooleanField


def compose_connection() -> dict[str, object]:
    compose = yaml.safe_load((REPO / "docker-compose.yaml").read_text())
    raw = compose["services"]["airflow-worker"]["environment"]["AIRFLOW_CONN_SIGNZY_DEFAULT"]
    text = raw
    for name, default in (("SIGNZY_BASE_URL", "http://signzy-emulator:8089"), ("SIGNZY_USERNAME", "demo")):
        text = text.replace(f"${{{name}:-{default}}}", default)
    text = text.replace("${SIGNZY_API_KEY:-demo-api-key-0123456789}", KEY)
    return json.loads(text)


def test_the_compose_stack_allows_its_emulator_over_http(monkeypatch: pytest.MonkeyPatch) -> None:
    """docker-compose.yaml points Airflow at http://signzy-emulator:8089: its connection must say so."""
    connection = compose_connection()
    monkeypatch.setenv("AIRFLOW_CONN_SIGNZY_COMPOSE", json.dumps(connection))
    assert SignzyHook("signzy_compose").config.base_url == "http://signzy-emulator:8089"
    extra = dict(connection["extra"])  # type: ignore[call-overload]
    del extra["allow_insecure_http"]
    monkeypatch.setenv("AIRFLOW_CONN_SIGNZY_COMPOSE_PLAIN", json.dumps({**connection, "extra": extra}))
    with pytest.raises(SignzyConfigError, match="allow_insecure_http"):
        SignzyHook("signzy_compose_plain").config  # noqa: B018
