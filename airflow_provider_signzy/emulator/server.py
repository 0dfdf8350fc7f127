"""A local Signzy: the v2 auth API and patron-scoped identities, as LoopBack 3 answers them.

Standard library only. Threaded, HTTP/1.1 keep-alive, binds 127.0.0.1. Control endpoints live outside
``/api`` under ``/_emulator``: ``GET state``, ``POST faults``, ``DELETE faults``, ``POST rate_limit``
(``{"per_second": R}``, see :mod:`.rate_limit`), ``DELETE rate_limit``, ``POST clock``
(``{"advance": seconds}``), ``POST reset``, ``POST identities/<id>/status`` (``{"status": "verified"}``:
what a person's action does; ``*`` for every identity) and ``POST auto-status``
(``{"status": "verified", "after": 2}``: identities created from then on move on their own after that
many seconds; ``{}`` turns it off).
The emulator never logs a request line: query strings may hold ``access_token``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
import select
import socket
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from airflow_provider_signzy.emulator.faults import FaultPlan, fault_kind
from airflow_provider_signzy.emulator.loopback_filter import FilterError, ListFilter
from airflow_provider_signzy.emulator.rate_limit import RateLimit, retry_after_header
from airflow_provider_signzy.emulator.state import EmulatorState, Patron, iso

LOGIN_PATHS = ("/api/v2/patrons/login", "/api/customers/login")
LOGOUT_PATHS = ("/api/v2/patrons/logout", "/api/customers/logout")
_IDENTITY_STATUS_CONTROL = re.compile(r"^/_emulator/identities/(?P<identity>[^/]+)/status$")
_PATRON_ROUTE = re.compile(r"^/api/v2/patrons/(?P<user_id>[^/]+)(?P<rest>/identities(?:/(?P<identity>[^/]+))?)?$")
_NGINX_PAGE = (
    "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


class ApiError(Exception):
    """An answer in LoopBack's error envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        name: str = "Error",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers
        self.envelope: dict[str, Any] = {"statusCode": status, "name": name, "message": message}
        if code:
            self.envelope["code"] = code


def status_phrase(status: int) -> str:
    """``Bad Gateway`` for 502; ``Error`` for a status code the standard library does not know."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _auth_required() -> ApiError:
    return ApiError(401, "Authorization Required", code="AUTHORIZATION_REQUIRED")


class SignzyRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SignzyEmulator/1.0"
    disable_nagle_algorithm = True
    server: SignzyHTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.state.count("connections")

    def log_message(self, format: str, *args: Any) -> None:
        """Silent on purpose: request lines can carry ``access_token``."""

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    # -- plumbing --

    def _send(
        self,
        status: int,
        body: bytes = b"",
        *,
        content_type: str = "application/json; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        reason = status_phrase(status)
        lines = [f"HTTP/1.1 {status} {reason}", f"Server: {self.server_version}"]
        if body or status != 204:
            lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(body)}")
        lines.extend(f"{k}: {v}" for k, v in (headers or {}).items())
        if self.close_connection:
            lines.append("Connection: close")
        # One write per answer: separate writes for headers and body meet Nagle and delayed ACKs.
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload, separators=(",", ":")).encode(), headers=headers)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/") or "/"
        query = parse_qs(parts.query)
        body = self._read_body()
        if path.startswith("/_emulator/"):
            self._control(path, body)
            return
        state = self.server.state
        route = f"{self.command} {route_of(path)}"
        state.count_request(route)
        fault = self.server.faults.take(self.command, path)
        if fault:
            state.count("faults_served")
            state.count(f"fault {fault_kind(fault)}")
            if fault.get("delay"):
                time.sleep(float(fault["delay"]))
            if fault.get("drop") == "before":
                self._drop()
                return
            if fault.get("status"):
                self._fault_answer(fault)
                return
        try:
            status, payload = self._api(path, query, body)
        except ApiError as err:
            envelope = err.envelope
            if self.server.loopback2:  # LoopBack 2 says "status" where LoopBack 3 says "statusCode"
                envelope = {("status" if k == "statusCode" else k): v for k, v in envelope.items()}
            status, payload, headers = err.status, {"error": envelope}, err.headers
        else:
            headers = None
        if fault and fault.get("drop") == "after":
            self._drop()
            return
        if fault and fault.get("hold") and not self._hold(float(fault["hold"]), route):
            return
        if status == 204:
            self._send(204)
        else:
            self._json(status, payload, headers=headers)

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _hold(self, seconds: float, route: str) -> bool:
        """Hold the answer ``seconds``; False (nothing to send) when the client left first or we stop."""
        state, key = self.server.state, id(self)
        state.hold_started(key, route, int(self.client_address[1]))
        deadline = time.monotonic() + seconds
        delivered = False
        try:
            while not self._client_gone():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    delivered = True
                    return True
                if self.server.closing.wait(min(0.1, remaining)):
                    return False
            self.close_connection = True
            return False
        finally:
            state.hold_ended(key, delivered=delivered)

    def _client_gone(self) -> bool:
        """The client closed its end (a read timeout, or its process died): EOF or a reset is waiting."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _fault_answer(self, fault: dict[str, Any]) -> None:
        status = int(fault["status"])
        headers = {}
        if fault.get("retry_after") is not None:
            headers["Retry-After"] = str(fault["retry_after"])
        reason = status_phrase(status)
        if "body" in fault:
            raw = fault["body"]
            body = raw.encode() if isinstance(raw, str) else json.dumps(raw).encode()
            content_type = fault.get("content_type", "application/json; charset=utf-8")
        elif status in (502, 504):
            body = _NGINX_PAGE.format(status=status, reason=reason).encode()
            content_type = "text/html"
        else:
            envelope = {"statusCode": status, "name": "Error", "message": fault.get("message", reason)}
            if fault.get("code"):
                envelope["code"] = fault["code"]
            body = json.dumps({"error": envelope}).encode()
            content_type = "application/json; charset=utf-8"
        self._send(status, body, content_type=content_type, headers=headers)

    # -- the API --

    def _api(self, path: str, query: dict[str, list[str]], body: bytes) -> tuple[int, Any]:
        state = self.server.state
        if path in LOGIN_PATHS and self.command == "POST":
            return 200, self._login(body)
        if path in LOGOUT_PATHS and self.command == "POST":
            token_id = self._token_id(query)
            if not token_id or not state.revoke(token_id):
                raise ApiError(401, "accessToken is required to logout")
            return 204, None
        match = _PATRON_ROUTE.match(path)
        if match:
            token = self._authenticate(query)
            if match["user_id"] != token.user_id:
                raise self._denied()
            self._check_rate_limit(token.user_id)
            return self._patron_resource(token.user_id, match["rest"], match["identity"], body, query)
        if path == "/api/v2/snoops" and self.command == "POST":
            token = self._authenticate(query)
            self._check_rate_limit(token.user_id)
            payload = self._parse_json(body)
            return 200, {"id": f"snoop-{time.time_ns()}", "patronId": token.user_id, "request": payload}
        raise ApiError(404, f"There is no method to handle {self.command} {path}", code="METHOD_NOT_FOUND")

    def _login(self, body: bytes) -> dict[str, Any]:
        state = self.server.state
        content_type = self.headers.get("Content-Type", "")
        if "application/x-www-form-urlencoded" in content_type:
            data: Any = {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()}
        else:
            data = self._parse_json(body)
        if not isinstance(data, dict):
            data = {}
        username, email = data.get("username"), data.get("email")
        if not username and not email:
            state.count("failed_logins")
            raise ApiError(400, "username or email is required", code="USERNAME_EMAIL_REQUIRED")
        patron = state.find_patron(username, email)
        if patron is None or not isinstance(data.get("password"), str) or data["password"] != patron.api_key:
            state.count("failed_logins")
            raise ApiError(401, "login failed", code="LOGIN_FAILED")
        ttl = state.default_ttl
        if data.get("ttl") not in (None, ""):
            try:
                ttl = int(float(data["ttl"]))
            except (TypeError, ValueError):
                raise ApiError(422, "ttl must be a number of seconds", name="ValidationError") from None
            ttl = max(1, min(ttl, state.max_ttl))
        token = state.issue_token(patron, ttl)
        shown_ttl: int | str = str(ttl) if self.server.ttl_as_string else ttl
        return {"id": token.id, "ttl": shown_ttl, "created": iso(token.created), "userId": patron.user_id}

    def _parse_json(self, body: bytes) -> Any:
        if not body:
            return {}
        try:
            return json.loads(body)
        except json.JSONDecodeError as exc:
            raise ApiError(400, f"Unexpected token in JSON at position {exc.pos}", name="SyntaxError") from None
        except UnicodeDecodeError:
            raise ApiError(400, "Unexpected token in JSON at position 0", name="SyntaxError") from None

    def _token_id(self, query: dict[str, list[str]]) -> str | None:
        """LoopBack's order: ``access_token`` query, then the Authorization header."""
        if query.get("access_token"):
            return query["access_token"][0]
        header = self.headers.get("Authorization") or self.headers.get("X-Access-Token")
        if not header:
            return None
        if header.startswith("Bearer "):
            # Stock LoopBack base64-decodes a Bearer value, so a raw token sent as Bearer never matches.
            try:
                return base64.b64decode(header[7:], validate=True).decode("utf-8", "replace")
            except (binascii.Error, ValueError):
                return None
        return header

    def _authenticate(self, query: dict[str, list[str]]) -> Any:
        token_id = self._token_id(query)
        if not token_id:
            raise _auth_required()
        token, problem = self.server.state.resolve(token_id)
        if problem == "INVALID_TOKEN":
            raise ApiError(401, "Invalid Access Token", code="INVALID_TOKEN")
        if token is None:
            raise _auth_required()
        return token

    def _check_rate_limit(self, user_id: str) -> None:
        limit = self.server.rate_limit
        wait = limit.take(user_id) if limit is not None else None
        if limit is None or wait is None:
            return
        self.server.state.count("rate_limited")
        if limit.status == 403:  # Signzy's documented rate-limit answer; its code is not ACCESS_DENIED
            raise ApiError(403, "Rate limit exceeded", code="RATE_LIMIT_EXCEEDED")
        raise ApiError(
            429, "Too Many Requests", code="TOO_MANY_REQUESTS", headers={"Retry-After": retry_after_header(wait)}
        )

    def _denied(self) -> ApiError:
        if self.server.acl_error_status == 403:
            return ApiError(403, "Access Denied", code="ACCESS_DENIED")
        return _auth_required()

    def _patron_resource(
        self, user_id: str, rest: str | None, identity_id: str | None, body: bytes, query: dict[str, list[str]]
    ) -> tuple[int, Any]:
        state = self.server.state
        if rest is None and self.command == "GET":
            patron = next(p for p in state.patrons.values() if p.user_id == user_id)
            return 200, {"id": user_id, "username": patron.username, "email": patron.email}
        if rest and identity_id is None and self.command == "POST":
            payload = self._parse_json(body)
            if isinstance(payload, dict) and payload.get("images") is not None:
                payload = {**payload, "images": list_property(payload["images"])}
            if not isinstance(payload, dict) or not isinstance(payload.get("type"), str) or not payload["type"]:
                raise ApiError(
                    422,
                    "The `identity` instance is not valid. Details: `type` can't be blank (value: undefined).",
                    name="ValidationError",
                )
            return 200, state.create_identity(user_id, payload)
        if rest and identity_id is None and self.command == "GET":
            # LoopBack's ?filter={"where": ..., "order": ..., "limit": ..., "skip": ...}, JSON or brackets.
            try:
                return 200, state.identities_of(user_id, list_filter=ListFilter.from_query(query))
            except FilterError as exc:
                raise ApiError(400, str(exc), name="Error", code="INVALID_FILTER") from None
        if identity_id is not None and self.command == "GET":
            found = [i for i in state.identities_of(user_id) if i["id"] == identity_id]
            if not found:
                raise ApiError(404, f'Unknown "identity" id "{identity_id}".', code="MODEL_NOT_FOUND")
            return 200, found[0]
        raise ApiError(404, f"There is no method to handle {self.command} {rest}", code="METHOD_NOT_FOUND")

    # -- control --

    def _control(self, path: str, body: bytes) -> None:
        server = self.server
        try:
            payload = json.loads(body) if body else {}
            if path == "/_emulator/state" and self.command == "GET":
                self._json(200, {**server.state.snapshot(), "faults": server.faults.describe()})
            elif path == "/_emulator/faults" and self.command == "POST":
                for spec in payload if isinstance(payload, list) else [payload]:
                    server.faults.add(spec)
                self._json(200, {"faults": server.faults.describe()})
            elif path == "/_emulator/faults" and self.command == "DELETE":
                server.faults.clear()
                self._json(200, {"faults": []})
            elif path == "/_emulator/rate_limit" and self.command == "POST":
                server.rate_limit = RateLimit.from_json(payload)
                self._json(200, {"rate_limit": server.rate_limit.describe()})
            elif path == "/_emulator/rate_limit" and self.command == "DELETE":
                server.rate_limit = None
                self._json(200, {"rate_limit": None})
            elif path == "/_emulator/clock" and self.command == "POST":
                server.state.advance_clock(float(payload.get("advance", 0)))
                self._json(200, {"offset": server.state.clock_offset})
            elif path == "/_emulator/reset" and self.command == "POST":
                server.state.reset()
                server.faults.clear()
                server.rate_limit = None
                self._json(200, {"reset": True})
            elif (match := _IDENTITY_STATUS_CONTROL.match(path)) and self.command == "POST":
                status = payload.get("status")
                if not isinstance(status, str) or not status:
                    raise ValueError('give the new status as {"status": "verified"}')
                if match["identity"] == "*":
                    self._json(200, {"moved": server.state.set_all_identities_status(status)})
                    return
                identity = server.state.set_identity_status(match["identity"], status)
                if identity is None:
                    self._json(404, {"error": f"no identity {match['identity']}"})
                else:
                    self._json(200, identity)
            elif path == "/_emulator/auto-status" and self.command == "POST":
                server.state.auto_status = auto_status_of(payload)
                self._json(200, {"auto_status": server.state.auto_status})
            elif path == "/_emulator/identities" and self.command == "GET":
                # Every identity held, personal fields included: for leak scans (``make demo``) of a local emulator.
                with server.state.lock:
                    identities = [dict(identity) for identity in server.state.identities.values()]
                self._json(200, {"identities": identities})
            elif path == "/_emulator/health":
                self._json(200, {"status": "ok"})
            else:
                self._json(404, {"error": f"no control endpoint {self.command} {path}"})
        except (ValueError, TypeError, AttributeError) as exc:
            self._json(400, {"error": str(exc)})


def list_property(value: Any) -> list[Any]:
    """A LoopBack list property (``images: ['string']``) from a body's value, as LoopBack 3 builds it.

    A JSON string of a list is accepted; anything else is refused with LoopBack's own 400, whose message
    echoes the value (``could not create List from JSON string: "..."``, ``Items must be an array: ...``),
    raised while the model is built, before validation: Signzy's errors quote customers' data.
    """
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ApiError(400, f"could not create List from JSON string: {_js_json(value)}") from None
    if not isinstance(value, list):
        raise ApiError(400, f"Items must be an array: {_js_json(value)}")
    return value


def _js_json(value: Any) -> str:
    """``JSON.stringify(value)``, as Node's ``%j`` prints it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def auto_status_of(payload: Any) -> tuple[str, float] | None:
    """``{"status": "verified", "after": 2}`` as ``("verified", 2.0)``; ``{}`` or null: no automatic move."""
    if not payload:
        return None
    status, after = payload.get("status"), float(payload.get("after", 0))
    if not isinstance(status, str) or not status or after < 0:
        raise ValueError('auto-status is {"status": "<new status>", "after": <seconds >= 0>}')
    return status, after


def route_of(path: str) -> str:
    """The path with patron and identity ids replaced, so counts add up per route."""
    match = _PATRON_ROUTE.match(path)
    if not match or path in LOGIN_PATHS or path in LOGOUT_PATHS:
        return path
    route = "/api/v2/patrons/{userId}"
    if match["rest"]:
        route += "/identities" + ("/{id}" if match["identity"] else "")
    return route


class SignzyHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        state: EmulatorState,
        *,
        acl_error_status: int = 401,
        ttl_as_string: bool = False,
        loopback2: bool = False,
    ) -> None:
        super().__init__(address, SignzyRequestHandler)
        self.loopback2 = loopback2
        self.state = state
        self.faults = FaultPlan()
        self.rate_limit: RateLimit | None = None
        self.acl_error_status = acl_error_status
        self.ttl_as_string = ttl_as_string
        self.closing = threading.Event()  # set on stop: held answers stop waiting


DEFAULT_PATRONS = (Patron("demo", "demo-api-key-0123456789", "patron-demo-0001", "demo@example.com"),)


class SignzyEmulator:
    """Runs the emulator in a background thread: ``with SignzyEmulator() as emu: emu.url``.

    :param patrons: who may log in (default: user ``demo`` with API key ``demo-api-key-0123456789``).
    :param port: 0 picks a free port.
    :param acl_error_status: 401 (stock LoopBack) or 403 (``ACCESS_DENIED``) for another patron's resource.
    :param ttl_as_string: answer ``"ttl": "1209600"``, as some Signzy docs show it.
    :param loopback2: error envelopes as LoopBack 2 sends them (``status`` instead of ``statusCode``).
    :param token_log: append each issued token to this file (for leak scans in tests only).
    :param auto_status: ``(status, seconds)``: each new identity moves to ``status`` that long after creation.
    """

    def __init__(
        self,
        patrons: list[Patron] | tuple[Patron, ...] = DEFAULT_PATRONS,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_ttl: int | None = None,
        acl_error_status: int = 401,
        ttl_as_string: bool = False,
        loopback2: bool = False,
        token_log: str | None = None,
        auto_status: tuple[str, float] | None = None,
    ) -> None:
        state_kwargs: dict[str, Any] = {"token_log": token_log, "auto_status": auto_status}
        if max_ttl is not None:
            state_kwargs["max_ttl"] = max_ttl
        self.state = EmulatorState(list(patrons), **state_kwargs)
        self.httpd = SignzyHTTPServer(
            (host, port),
            self.state,
            acl_error_status=acl_error_status,
            ttl_as_string=ttl_as_string,
            loopback2=loopback2,
        )
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def faults(self) -> FaultPlan:
        return self.httpd.faults

    def rate_limit(self, per_second: float, *, burst: float | None = None, status: int = 429) -> None:
        """Limit each patron to ``per_second`` calls (see :mod:`.rate_limit`)."""
        self.httpd.rate_limit = RateLimit.from_json({"per_second": per_second, "burst": burst, "status": status})

    def start(self) -> SignzyEmulator:
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, args=(0.05,), name="signzy-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> SignzyEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
