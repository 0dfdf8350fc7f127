"""The ``signzy`` connection form, declared once.

Served two ways: as ``conn-fields`` / ``ui-field-behaviour`` in the provider info (read by Airflow 3.2+
without importing the hook) and through the hook's ``get_connection_form_widgets`` /
``get_ui_field_behaviour`` (read by Airflow 3.0 and 3.1). This module imports nothing from Airflow:
the provider info is read while Airflow itself is still starting.
"""

from __future__ import annotations

from typing import Any

CONN_TYPE = "signzy"
DEFAULT_CONN_ID = "signzy_default"
DEFAULT_BASE_URL = "https://signzy.tech"
DEFAULT_LOGIN_PATH = "/api/v2/patrons/login"
DEFAULT_LOGOUT_PATH = "/api/v2/patrons/logout"
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_BACKOFF_INITIAL = 1.0
DEFAULT_BACKOFF_MAX = 30.0
#: Token lifetime asked for at login when neither the operator nor the connection says: long enough for a
#: typical DAG run (a longer run logs in again when it expires), short enough that a token whose login
#: answer was lost, and so cannot be revoked, dies within the hour instead of living Signzy's 14 days.
DEFAULT_TOKEN_TTL = 3600

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
        "Empty: one hour (a run that lasts longer logs in again when it expires).",
        "schema": {"type": ["integer", "null"], "default": DEFAULT_TOKEN_TTL, "minimum": 1},
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
    "allow_insecure_http": {
        "label": "Allow plain http://",
        "description": "Only for a private test server: with an http:// Base URL to another machine, the API key, "
        "the token and customers' personal data would cross the network unencrypted. Off: such a URL is "
        "refused (http:// to this machine, such as the emulator, is always allowed).",
        "schema": {"type": ["boolean", "null"], "default": False},
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
    "persist_url": {
        "label": "Document upload URL",
        "description": "Signzy's file service (persist), where documents are uploaded for products that read them. "
        "Empty: https://persist.signzy.tech for signzy.tech, https://preproduction-persist.signzy.tech for "
        "preproduction.signzy.tech, else the Base URL (the emulator serves both).",
        "schema": {"type": ["string", "null"]},
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
    """``CONN_FIELDS`` as WTForms fields, for Airflow 3.0 and 3.1 (and 2.11's FAB form).

    Imported at call time, on purpose: 3.0/3.1's API server (``HookMetaService``) patches
    ``wtforms.StringField``, ``wtforms.validators.Optional`` and ``wtforms.validators.any_of`` with stand-ins
    that turn each field into a JSON-schema param for the React form. ``any_of`` (not ``AnyOf``) is the name
    it patches, so the enum reaches the UI. WTForms is a dependency of this package: without it those
    versions' ProvidersManager drops every hook's form (``_import_hook`` imports wtforms itself).
    """
    from wtforms import BooleanField, IntegerField, PasswordField, StringField
    from wtforms.validators import NumberRange, Optional, any_of
    from wtforms.widgets import PasswordInput, TextInput

    try:  # the Bootstrap widgets of the FAB UI, where it is installed
        from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget
    except ImportError:
        BS3PasswordFieldWidget, BS3TextFieldWidget = PasswordInput, TextInput

    widgets: dict[str, Any] = {}
    for name, spec in CONN_FIELDS.items():
        schema = spec["schema"]
        kinds = set(schema["type"]) - {"null"}
        validators: list[Any] = [Optional()]
        if "minimum" in schema and kinds & {"integer"}:
            validators.append(NumberRange(min=schema["minimum"]))
        if "enum" in schema:
            validators.append(any_of(schema["enum"]))
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
