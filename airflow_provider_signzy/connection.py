"""The ``signzy`` connection type: its form (one source of truth) and its parsed, validated settings.

The form is declared once here and served two ways: as ``conn-fields`` / ``ui-field-behaviour`` in the
provider info (read by Airflow 3.2+ without importing the hook) and through the hook's
``get_connection_form_widgets`` / ``get_ui_field_behaviour`` (read by Airflow 3.0 and 3.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_signzy.exceptions import SignzyConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

CONN_TYPE = "signzy"
DEFAULT_CONN_ID = "signzy_default"
DEFAULT_BASE_URL = "https://signzy.tech"
DEFAULT_LOGIN_PATH = "/api/v2/patrons/login"
DEFAULT_LOGOUT_PATH = "/api/v2/patrons/logout"
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_BACKOFF_INITIAL = 1.0
DEFAULT_BACKOFF_MAX = 30.0

UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema", "port"],
    "relabeling": {"host": "Base URL", "login": "Username", "password": "API key"},
    "placeholders": {
        "host": DEFAULT_BASE_URL,
        "login": "your Signzy username",
        "password": "your Signzy API key",
    },
}

CONN_FIELDS: dict[str, dict[str, Any]] = {
    "token_ttl": {
        "label": "Token TTL (seconds)",
        "description": "Lifetime to ask for at login; a short one (the DAG's expected length) limits a leak. "
        "Empty: Signzy's default (14 days).",
        "schema": {"type": ["integer", "null"], "minimum": 1},
    },
    "timeout": {
        "label": "Timeout (seconds)",
        "description": "Read timeout of each HTTP request; the connect timeout is the smaller of this and 10.",
        "schema": {"type": ["number", "null"], "default": DEFAULT_TIMEOUT, "minimum": 0.001},
    },
    "max_attempts": {
        "label": "Max attempts",
        "description": "Attempts per call for transient failures (1 = no retry).",
        "schema": {"type": ["integer", "null"], "default": DEFAULT_MAX_ATTEMPTS, "minimum": 1},
    },
    "backoff_initial": {
        "label": "Backoff initial wait (seconds)",
        "description": "First retry wait; it doubles each retry, plus jitter, up to the maximum.",
        "schema": {"type": ["number", "null"], "default": DEFAULT_BACKOFF_INITIAL, "minimum": 0},
    },
    "backoff_max": {
        "label": "Backoff maximum wait (seconds)",
        "description": "Longest wait between two attempts, Retry-After included.",
        "schema": {"type": ["number", "null"], "default": DEFAULT_BACKOFF_MAX, "minimum": 0},
    },
    "verify": {
        "label": "Verify TLS certificates",
        "description": "Turn off only for a local test server. A CA bundle path can be given in the extra JSON.",
        "schema": {"type": ["boolean", "null"], "default": True},
    },
    "login_path": {
        "label": "Login path",
        "description": "Some Signzy products log in at /api/customers/login.",
        "schema": {"type": ["string", "null"], "default": DEFAULT_LOGIN_PATH},
    },
    "logout_path": {
        "label": "Logout path",
        "schema": {"type": ["string", "null"], "default": DEFAULT_LOGOUT_PATH},
    },
    "token_in": {
        "label": "Send the token in",
        "description": "header (default) or query (?access_token=, which proxies and servers may log).",
        "schema": {"type": ["string", "null"], "default": "header", "enum": ["header", "query"]},
    },
    "xcom_fernet_key": {
        "label": "XCom Fernet key",
        "description": "Key that encrypts the token in XCom; empty: Airflow's [core] fernet_key.",
        "schema": {"type": ["string", "null"], "format": "password"},
    },
}


def hook_ui_field_behaviour() -> dict[str, Any]:
    """``UI_FIELD_BEHAVIOUR`` in the snake_case form that ``get_ui_field_behaviour`` returns."""
    return {key.replace("-", "_"): value for key, value in UI_FIELD_BEHAVIOUR.items()}


def hook_form_widgets() -> dict[str, Any]:
    """``CONN_FIELDS`` as WTForms fields, for Airflow 3.0 and 3.1 (which need flask-appbuilder)."""
    from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget
    from wtforms import BooleanField, IntegerField, PasswordField, StringField
    from wtforms.validators import AnyOf, NumberRange, Optional

    widgets: dict[str, Any] = {}
    for name, spec in CONN_FIELDS.items():
        schema = spec["schema"]
        kinds = set(schema["type"]) - {"null"}
        validators: list[Any] = [Optional()]
        if "minimum" in schema and kinds & {"integer"}:
            validators.append(NumberRange(min=schema["minimum"]))
        if "enum" in schema:
            validators.append(AnyOf(schema["enum"]))
        common = {"description": spec.get("description"), "default": schema.get("default")}
        if schema.get("format") == "password":
            widgets[name] = PasswordField(spec["label"], widget=BS3PasswordFieldWidget(), **common)
        elif kinds == {"boolean"}:
            widgets[name] = BooleanField(spec["label"], **common)
        elif kinds == {"integer"}:
            widgets[name] = IntegerField(spec["label"], validators=validators, widget=BS3TextFieldWidget(), **common)
        else:  # strings, and numbers (Airflow's form allows no float field)
            widgets[name] = StringField(spec["label"], validators=validators, widget=BS3TextFieldWidget(), **common)
    return widgets


@dataclass(frozen=True)
class SignzyConnectionConfig:
    """A ``signzy`` connection, checked once: every error names the connection id and the field."""

    conn_id: str
    base_url: str
    username: str
    api_key: str
    token_ttl: int | None
    timeout: float
    max_attempts: int
    backoff_initial: float
    backoff_max: float
    verify: bool | str
    login_path: str
    logout_path: str
    token_in: str
    extra: Mapping[str, Any]

    def __repr__(self) -> str:  # the dataclass repr would print the API key
        return f"SignzyConnectionConfig(conn_id={self.conn_id!r}, base_url={self.base_url!r})"

    @property
    def connect_timeout(self) -> float:
        return min(self.timeout, 10.0)

    @classmethod
    def from_connection(cls, conn: Any) -> SignzyConnectionConfig:
        conn_id = str(conn.conn_id)
        extra = _extra_dict(conn, conn_id)
        reader = _ExtraReader(conn_id, extra)
        username = (conn.login or "").strip()
        if not username:
            raise SignzyConfigError(
                f"Connection {conn_id!r} has no Username (login field): set it to your Signzy username",
                conn_id=conn_id,
            )
        if not conn.password:
            raise SignzyConfigError(
                f"Connection {conn_id!r} has no API key (password field): set it to your Signzy API key",
                conn_id=conn_id,
            )
        backoff_initial = reader.number("backoff_initial", DEFAULT_BACKOFF_INITIAL, minimum=0)
        return cls(
            conn_id=conn_id,
            base_url=_base_url(conn, conn_id),
            username=username,
            api_key=str(conn.password),
            token_ttl=reader.optional_int("token_ttl"),
            timeout=reader.number("timeout", DEFAULT_TIMEOUT, minimum=0.001),
            max_attempts=int(reader.number("max_attempts", DEFAULT_MAX_ATTEMPTS, minimum=1)),
            backoff_initial=backoff_initial,
            backoff_max=reader.number("backoff_max", max(DEFAULT_BACKOFF_MAX, backoff_initial), minimum=0),
            verify=reader.verify(),
            login_path=reader.path("login_path", DEFAULT_LOGIN_PATH),
            logout_path=reader.path("logout_path", DEFAULT_LOGOUT_PATH),
            token_in=reader.choice("token_in", "header", ("header", "query")),
            extra=extra,
        )


def _extra_dict(conn: Any, conn_id: str) -> dict[str, Any]:
    try:
        extra = conn.extra_dejson
    except Exception:
        raise SignzyConfigError(f"Connection {conn_id!r}: Extra is not valid JSON", conn_id=conn_id) from None
    if not isinstance(extra, dict):
        raise SignzyConfigError(f"Connection {conn_id!r}: Extra must be a JSON object", conn_id=conn_id)
    # Forms of older Airflow versions stored extras as ``extra__signzy__<name>``.
    prefix = f"extra__{CONN_TYPE}__"
    return {key.removeprefix(prefix): value for key, value in extra.items()}


def _base_url(conn: Any, conn_id: str) -> str:
    host = (conn.host or "").strip()
    if not host:
        return DEFAULT_BASE_URL
    parts = urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SignzyConfigError(
            f"Connection {conn_id!r}: Base URL (host field) must start with https:// or http://, "
            f"got {host!r} (for example {DEFAULT_BASE_URL})",
            conn_id=conn_id,
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise SignzyConfigError(
            f"Connection {conn_id!r}: Base URL (host field) must hold no credentials, query or fragment",
            conn_id=conn_id,
        )
    netloc = parts.netloc
    if conn.port and parts.port is None:
        netloc = f"{netloc}:{conn.port}"
    return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"


class _ExtraReader:
    """Reads extras leniently (form values arrive as strings) and fails with the field's name."""

    def __init__(self, conn_id: str, extra: Mapping[str, Any]) -> None:
        self.conn_id = conn_id
        self.extra = extra

    def _raw(self, name: str) -> Any:
        value = self.extra.get(name)
        return None if value is None or (isinstance(value, str) and not value.strip()) else value

    def _fail(self, name: str, expected: str, value: Any) -> SignzyConfigError:
        return SignzyConfigError(
            f"Connection {self.conn_id!r}: extra {name!r} must be {expected}, got {value!r}",
            conn_id=self.conn_id,
        )

    def number(self, name: str, default: float, *, minimum: float) -> float:
        value = self._raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise self._fail(name, f"a number >= {minimum}", value) from None
        if isinstance(value, bool) or number < minimum or number != number:
            raise self._fail(name, f"a number >= {minimum}", value)
        return number

    def optional_int(self, name: str) -> int | None:
        value = self._raw(name)
        if value is None:
            return None
        try:
            number = int(str(value).strip())
        except ValueError:
            raise self._fail(name, "a whole number of seconds", value) from None
        if isinstance(value, bool) or number < 1:
            raise self._fail(name, "a whole number of seconds", value)
        return number

    def verify(self) -> bool | str:
        value = self._raw("verify")
        if value is None:
            return True
        if isinstance(value, bool):
            return value
        text = str(value).strip()
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no"):
            return False
        return text  # a CA bundle path

    def path(self, name: str, default: str) -> str:
        value = self._raw(name)
        if value is None:
            return default
        text = str(value).strip()
        if not text.startswith("/") or "://" in text:
            raise self._fail(name, "a path starting with '/'", value)
        return text

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self._raw(name)
        if value is None:
            return default
        text = str(value).strip().lower()
        if text not in choices:
            raise self._fail(name, " or ".join(repr(c) for c in choices), value)
        return text
