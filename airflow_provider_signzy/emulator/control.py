"""The emulator's control endpoints under ``/_emulator`` (listed in :mod:`.server`): tests and demos steer it."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from airflow_provider_signzy.emulator.rate_limit import RateLimit
from airflow_provider_signzy.emulator.state import public

if TYPE_CHECKING:
    from airflow_provider_signzy.emulator.server import SignzyHTTPServer

_IDENTITY_STATUS_CONTROL = re.compile(r"^/_emulator/identities/(?P<identity>[^/]+)/status$")
_MEDIA = re.compile(r"^/_emulator/media/[0-9a-f]+\.png$")
#: What every synthetic image URL in a product result serves: a 1x1 PNG.
PIXEL_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
#: Latency keys besides product names: every other call, and uploads.
LATENCY_KEYS = ("*", "persist")


class EmulatorControl(BaseHTTPRequestHandler):
    """Answers ``/_emulator/...``; the request handler supplies :meth:`_json`."""

    server: SignzyHTTPServer

    if TYPE_CHECKING:

        def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None: ...

        def _send(
            self,
            status: int,
            body: bytes = b"",
            *,
            content_type: str = "application/json; charset=utf-8",
            headers: dict[str, str] | None = None,
        ) -> None: ...

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
                server.files.clear()
                server.rate_limit = None
                server.latency = dict(server.default_latency)
                self._json(200, {"reset": True})
            elif path == "/_emulator/latency" and self.command == "POST":
                server.latency = latency_of(payload)
                self._json(200, {"latency": server.latency})
            elif path == "/_emulator/latency" and self.command == "DELETE":
                server.latency = {}
                self._json(200, {"latency": {}})
            elif path == "/_emulator/snoops" and self.command == "GET":
                with server.state.lock:
                    snoops = list(server.state.recent_snoops)
                self._json(200, {"snoops": snoops})
            elif _MEDIA.match(path) and self.command == "GET":
                self._send(200, PIXEL_PNG, content_type="image/png")
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
                    identities = [public(identity) for identity in server.state.identities.values()]
                self._json(200, {"identities": identities})
            elif path == "/_emulator/health":
                self._json(200, {"status": "ok"})
            else:
                self._json(404, {"error": f"no control endpoint {self.command} {path}"})
        except (ValueError, TypeError, AttributeError) as exc:
            self._json(400, {"error": str(exc)})


def auto_status_of(payload: Any) -> tuple[str, float] | None:
    """``{"status": "verified", "after": 2}`` as ``("verified", 2.0)``; ``{}`` or null: no automatic move."""
    if not payload:
        return None
    status, after = payload.get("status"), float(payload.get("after", 0))
    if not isinstance(status, str) or not status or after < 0:
        raise ValueError('auto-status is {"status": "<new status>", "after": <seconds >= 0>}')
    return status, after


def latency_of(spec: Mapping[str, Any] | float | None) -> dict[str, float]:
    """``{"pan.verification": 0.3, "*": 0.05}`` checked (known keys, seconds >= 0); a number means ``{"*": n}``."""
    if spec is None:
        return {}
    if isinstance(spec, bool) or not isinstance(spec, int | float | Mapping):
        raise ValueError('latency is {"<product name>|persist|*": seconds} or a number of seconds')
    mapping = {"*": spec} if isinstance(spec, int | float) else dict(spec)
    known = _product_names() if set(mapping) - set(LATENCY_KEYS) else None
    latency = {}
    for key, seconds in mapping.items():
        if not isinstance(key, str) or (key not in LATENCY_KEYS and known is not None and key not in known):
            raise ValueError(f"latency: unknown key {key!r}; give a product name, 'persist' or '*'")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds >= 0:
            raise ValueError(f"latency: {key!r} must be a number of seconds >= 0")
        latency[key] = float(seconds)
    return latency


def _product_names() -> set[str] | None:
    """The catalog's product names; None when it cannot be imported (it needs Airflow for its errors)."""
    try:
        from airflow_provider_signzy.products.catalog import PRODUCTS
    except ImportError:
        return None
    return set(PRODUCTS)
