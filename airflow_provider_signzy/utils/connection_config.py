"""A ``signzy`` connection's settings, parsed and checked once, with errors that name the field."""

from __future__ import annotations

import difflib
import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_signzy.exceptions import SignzyConfigError
from airflow_provider_signzy.utils.connection_form import (
    CONN_FIELDS,
    CONN_TYPE,
    DEFAULT_BACKOFF_INITIAL,
    DEFAULT_BACKOFF_MAX,
    DEFAULT_BASE_URL,
    DEFAULT_LOGIN_PATH,
    DEFAULT_LOGOUT_PATH,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_TIMEOUT,
    DEFAULT_TOKEN_TTL,
)
from airflow_provider_signzy.utils.dependency_guard import known_dependency_break

if TYPE_CHECKING:
    from collections.abc import Mapping


@dataclass(frozen=True)
class SignzyConnectionConfig:
    """A ``signzy`` connection, checked once: every error names the connection id and the field."""

    conn_id: str
    base_url: str
    username: str
    api_key: str
    token_ttl: int
    timeout: float
    max_attempts: int
    backoff_initial: float
    backoff_max: float
    verify: bool | str
    login_path: str
    logout_path: str
    token_in: str
    extra: Mapping[str, Any]
    #: Signzy's file service (persist): the ``persist_url`` extra, else derived from the Base URL.
    persist_url: str = ""

    def __repr__(self) -> str:  # the dataclass repr would print the API key
        return f"SignzyConnectionConfig(conn_id={self.conn_id!r}, base_url={self.base_url!r})"

    @property
    def connect_timeout(self) -> float:
        return min(self.timeout, 10.0)

    def url_for(self, endpoint: str) -> str:
        """The full URL of a path under the Base URL; a full URL is refused, so the token never leaves."""
        if "://" in endpoint or endpoint.startswith("//"):
            raise SignzyConfigError(
                f"Endpoint {endpoint!r} is a full URL: give a path under the connection's Base URL, "
                "so the token is never sent to another host",
                conn_id=self.conn_id,
            )
        return f"{self.base_url}/{endpoint.lstrip('/')}"

    @classmethod
    def from_connection(cls, conn: Any) -> SignzyConnectionConfig:
        conn_id = str(conn.conn_id)
        extra = _extra_dict(conn, conn_id)
        _check_extra_names(extra, conn_id)
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
        insecure = reader.flag("allow_insecure_http", default=False)
        base_url = _base_url(conn.host, conn.port, conn_id, allow_insecure_http=insecure)
        persist = extra.get("persist_url")
        if persist not in (None, "") and not isinstance(persist, str):
            raise SignzyConfigError(f"Connection {conn_id!r}: extra 'persist_url' must be a URL", conn_id=conn_id)
        return cls(
            conn_id=conn_id,
            base_url=base_url,
            username=username,
            api_key=str(conn.password),
            token_ttl=reader.optional_int("token_ttl") or DEFAULT_TOKEN_TTL,
            timeout=reader.number("timeout", DEFAULT_TIMEOUT, minimum=0.001),
            max_attempts=int(reader.number("max_attempts", DEFAULT_MAX_ATTEMPTS, minimum=1)),
            backoff_initial=backoff_initial,
            backoff_max=reader.number("backoff_max", max(DEFAULT_BACKOFF_MAX, backoff_initial), minimum=0),
            verify=reader.verify(),
            login_path=reader.path("login_path", DEFAULT_LOGIN_PATH),
            logout_path=reader.path("logout_path", DEFAULT_LOGOUT_PATH),
            token_in=reader.choice("token_in", "header", ("header", "query")),
            extra=extra,
            persist_url=(
                _base_url(persist, None, conn_id, allow_insecure_http=insecure, field="extra 'persist_url'")
                if persist
                else persist_url_for(base_url)
            ),
        )


def read_connection(conn_id: str) -> Any:
    """Airflow's connection ``conn_id``; a missing one fails saying how to create it, or, where a known
    dependency break makes Airflow report it missing, naming the break and its fix."""
    from airflow.providers.common.compat.sdk import BaseHook

    try:
        return BaseHook.get_connection(conn_id)
    except Exception as exc:
        # By name: the class comes from airflow.exceptions or airflow.sdk.exceptions depending on the line.
        if type(exc).__name__ != "AirflowNotFoundException":
            raise
        broken = known_dependency_break()
        if broken is not None:
            raise SignzyConfigError(f"Connection {conn_id!r} cannot be read: {broken}", conn_id=conn_id) from None
        raise missing_connection(conn_id) from None


def missing_connection(conn_id: str) -> SignzyConfigError:
    """The error for a connection id Airflow does not know, with the three ways to create it."""
    return SignzyConfigError(
        f"There is no Airflow connection {conn_id!r}. Create one of type 'signzy': in the UI (Admin > "
        f"Connections > +, type Signzy), or `airflow connections add {conn_id} --conn-type signzy --conn-host "
        f"https://signzy.tech --conn-login <username> --conn-password <API key>`, or the environment variable "
        f'AIRFLOW_CONN_{conn_id.upper()}=\'{{"conn_type": "signzy", "host": "https://signzy.tech", '
        f'"login": "<username>", "password": "<API key>"}}\'',
        conn_id=conn_id,
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


def _check_extra_names(extra: Mapping[str, Any], conn_id: str) -> None:
    """Misspelled extras (``tokenttl``) fail by name, all in one message, each with the one it resembles;
    other unknown ones are left alone (a shared connection may carry extras of other tools)."""
    typos = []
    for name in extra:
        if name in CONN_FIELDS:
            continue
        near = difflib.get_close_matches(name, list(CONN_FIELDS), n=1, cutoff=0.75)
        if near:
            typos.append(f"unknown extra {name!r}; did you mean {near[0]!r}?")
    if typos:
        raise SignzyConfigError(
            f"Connection {conn_id!r}: {' '.join(typos)} (known extras: {', '.join(sorted(CONN_FIELDS))})",
            conn_id=conn_id,
        )


#: Signzy's file service for each of its API hosts (signzy-v2-products.md, section 5).
PERSIST_HOSTS = {
    "signzy.tech": "https://persist.signzy.tech",
    "preproduction.signzy.tech": "https://preproduction-persist.signzy.tech",
}


def persist_url_for(base_url: str) -> str:
    """Signzy's persist service for an API Base URL; any other host (the emulator, a proxy) serves both."""
    return PERSIST_HOSTS.get(urlsplit(base_url).hostname or "", base_url)


def _base_url(
    host: str | None,
    port: int | None,
    conn_id: str,
    *,
    allow_insecure_http: bool,
    field: str = "Base URL (host field)",
) -> str:
    host = (host or "").strip()
    if not host:
        return DEFAULT_BASE_URL
    parts = urlsplit(host)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SignzyConfigError(
            f"Connection {conn_id!r}: {field} must start with https:// or http://, "
            f"got {host!r} (for example {DEFAULT_BASE_URL})",
            conn_id=conn_id,
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise SignzyConfigError(
            f"Connection {conn_id!r}: {field} must hold no credentials, query or fragment",
            conn_id=conn_id,
        )
    hostname = parts.hostname or ""
    if parts.scheme == "http" and not allow_insecure_http and not is_loopback(hostname):
        # Only the host name is shown: the Base URL is checked for credentials above, but say less anyway.
        raise SignzyConfigError(
            f"Connection {conn_id!r}: {field} is http:// to {hostname!r}, which is not this "
            "machine: the API key, the token and customers' personal data would cross the network "
            "unencrypted. Use https:// (for example "
            f"{DEFAULT_BASE_URL}), or, for a private test server only, set the extra "
            '"allow_insecure_http": true',
            conn_id=conn_id,
        )
    netloc = parts.netloc
    if port and parts.port is None:
        netloc = f"{netloc}:{port}"
    return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"


def is_loopback(hostname: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ``::1``): plain http stays on the machine."""
    name = hostname.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _boolean(value: Any) -> bool | None:
    """A boolean extra as the form or a hand-written JSON may hold it; None when it is not one."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    return None


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
        flag = _boolean(value)
        return str(value).strip() if flag is None else flag  # else a CA bundle path

    def flag(self, name: str, *, default: bool) -> bool:
        value = self._raw(name)
        if value is None:
            return default
        flag = _boolean(value)
        if flag is None:
            raise self._fail(name, "true or false", value)
        return flag

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
