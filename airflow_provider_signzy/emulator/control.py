"""The emulator's control endpoints under ``/_emulator`` (listed in :mod:`.server`): tests and demos steer it."""

from __future__ import annotations

import json
import re
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

from airflow_provider_signzy.emulator.rate_limit import RateLimit

if TYPE_CHECKING:
    from airflow_provider_signzy.emulator.server import SignzyHTTPServer

_IDENTITY_STATUS_CONTROL = re.compile(r"^/_emulator/identities/(?P<identity>[^/]+)/status$")


class EmulatorControl(BaseHTTPRequestHandler):
    """Answers ``/_emulator/...``; the request handler supplies :meth:`_json`."""

    server: SignzyHTTPServer

    if TYPE_CHECKING:

        def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None: ...

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


def auto_status_of(payload: Any) -> tuple[str, float] | None:
    """``{"status": "verified", "after": 2}`` as ``("verified", 2.0)``; ``{}`` or null: no automatic move."""
    if not payload:
        return None
    status, after = payload.get("status"), float(payload.get("after", 0))
    if not isinstance(status, str) or not status or after < 0:
        raise ValueError('auto-status is {"status": "<new status>", "after": <seconds >= 0>}')
    return status, after
