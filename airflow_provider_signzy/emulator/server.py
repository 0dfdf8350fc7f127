"""A local Signzy: the v2 auth API, patron-scoped identities, snoops and product resources, and persist uploads.

Standard library only (the product answers read the provider's catalog). Threaded, HTTP/1.1 keep-alive, binds
127.0.0.1. Control endpoints live outside ``/api`` under ``/_emulator``: ``GET state``, ``POST faults``,
``DELETE faults``, ``POST rate_limit`` (``{"per_second": R}``, see :mod:`.rate_limit`), ``DELETE rate_limit``,
``POST clock`` (``{"advance": seconds}``), ``POST reset``, ``POST identities/<id>/status``
(``{"status": "verified"}``: what a person's action does; ``*`` for every identity), ``POST auto-status``
(``{"status": "verified", "after": 2}``: identities created from then on move on their own after that
many seconds; ``{}`` turns it off), ``POST latency`` (``{"pan.verification": 0.3, "*": 0.05}``),
``DELETE latency`` and ``GET snoops`` (the latest snoops: product, itemId, time).
The emulator never logs a request line: query strings may hold ``access_token``.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import threading
import time
from collections.abc import Mapping
from http import HTTPStatus
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from airflow_provider_signzy.emulator import persist
from airflow_provider_signzy.emulator.api_error import ApiError
from airflow_provider_signzy.emulator.control import EmulatorControl, latency_of
from airflow_provider_signzy.emulator.faults import FaultPlan, fault_kind
from airflow_provider_signzy.emulator.rate_limit import RateLimit
from airflow_provider_signzy.emulator.routes import SignzyApiRoutes, route_of
from airflow_provider_signzy.emulator.state import EmulatorState, Patron

#: The largest body of an API or control call; bigger ones get 413 unread (persist uploads have their own limit).
MAX_BODY = 1024 * 1024

_NGINX_PAGE = (
    "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


def status_phrase(status: int) -> str:
    """``Bad Gateway`` for 502; ``Error`` for a status code the standard library does not know."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class SignzyRequestHandler(EmulatorControl, persist.PersistRoutes, SignzyApiRoutes):
    """One connection: reads each request, applies the fault plan, answers from the API or the controls."""

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

    def _read_body(self, length: int) -> bytearray:
        """Exactly ``length`` bytes (fewer if the client stops sending), read into one buffer."""
        body = bytearray(length)
        got = 0
        with memoryview(body) as view:
            while got < length:
                n = self.rfile.readinto(view[got:])
                if not n:
                    break
                got += n
        del body[got:]
        return body

    def _body_length(self, path: str, upload: bool) -> int | None:
        """The body's length, or None after refusing it unread (413, 411 or 400; the connection then closes)."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        refusal = None
        if upload and self.headers.get("Transfer-Encoding"):
            refusal = ApiError(411, "Length Required: send the upload with a Content-Length", v2=True)
        elif length < 0:
            refusal = ApiError(400, "Bad Content-Length", name="BadRequestError")
        elif upload and length > persist.body_limit(path):
            refusal = persist.too_large()
        elif not upload and length > MAX_BODY:
            refusal = ApiError(413, "request entity too large", name="PayloadTooLargeError")
        if refusal is None:
            return length
        if upload:
            self.server.state.count("uploads_refused")
        self.close_connection = True  # the body stays unread
        self._json(refusal.status, {"error": refusal.envelope})
        return None

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/") or "/"
        query = parse_qs(parts.query)
        upload = self.command == "POST" and path in persist.UPLOADS
        state = self.server.state
        route = f"{self.command} {route_of(path)}"
        if not path.startswith("/_emulator/"):
            state.count_request(route)
        length = self._body_length(path, upload)
        if length is None:
            return
        buffer = self._read_body(length)
        body = b"" if upload else bytes(buffer)  # an upload's buffer goes to persist as it is
        if path.startswith("/_emulator/"):
            self._control(path, body)
            return
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
            if persist.handles(self.command, path):
                status, payload = self._persist(path, query, buffer)
            else:
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
        elif isinstance(payload, persist.Raw):
            self._send_raw(payload)
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

    # -- control --


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
        latency: Mapping[str, float] | float | None = None,
    ) -> None:
        super().__init__(address, SignzyRequestHandler)
        self.loopback2 = loopback2
        self.state = state
        self.faults = FaultPlan()
        self.rate_limit: RateLimit | None = None
        self.acl_error_status = acl_error_status
        self.ttl_as_string = ttl_as_string
        self.closing = threading.Event()  # set on stop: held answers and latencies stop waiting
        self.default_latency = latency_of(latency)
        self.latency = dict(self.default_latency)
        self.files = persist.FileStore()

    def latency_for(self, key: str) -> float:
        """Seconds to wait before answering ``key`` (a product name, or ``persist``): its own, else ``*``."""
        latency = self.latency
        return latency.get(key, latency.get("*", 0.0))


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
    :param latency: seconds before answering a snoop, a product resource or an upload, by product name, with
        ``persist`` for uploads and ``*`` for the rest (``{"pan.verification": 0.3, "*": 0.05}``); a number: all.
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
        latency: Mapping[str, float] | float | None = None,
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
            latency=latency,
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

    def set_latency(self, latency: Mapping[str, float] | float | None) -> None:
        """Replace the latency mapping (see the constructor); None: no latency."""
        self.httpd.latency = latency_of(latency)

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
