"""The emulator's Signzy API: login, logout, the patron and its identities, as LoopBack 3 answers them; snoops and
one-step product resources (answers in :mod:`.products`)."""

from __future__ import annotations

import base64
import binascii
import importlib
import json
import re
import secrets
from http.server import BaseHTTPRequestHandler
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from airflow_provider_signzy.emulator.api_error import ApiError
from airflow_provider_signzy.emulator.loopback_filter import FilterError, ListFilter
from airflow_provider_signzy.emulator.rate_limit import retry_after_header
from airflow_provider_signzy.emulator.state import iso

if TYPE_CHECKING:
    from airflow_provider_signzy.emulator.server import SignzyHTTPServer

LOGIN_PATHS = ("/api/v2/patrons/login", "/api/customers/login")
LOGOUT_PATHS = ("/api/v2/patrons/logout", "/api/customers/logout")
SNOOPS_PATH = "/api/v2/snoops"
_PATRON_ROUTE = re.compile(r"^/api/v2/patrons/(?P<user_id>[^/]+)(?P<rest>/identities(?:/(?P<identity>[^/]+))?)?$")
_RESOURCE_ROUTE = re.compile(r"^/api/v2/patrons/(?P<user_id>[^/]+)/(?P<resource>[A-Za-z]+)$")
_DOWNLOAD_ROUTE = re.compile(r"^/api/(?P<kind>files|base64strings)/[^/]+/download/[^/]+$")
_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")


def _auth_required() -> ApiError:
    return ApiError(401, "Authorization Required", code="AUTHORIZATION_REQUIRED")


class SignzyApiRoutes(BaseHTTPRequestHandler):
    """The ``/api`` routes: :meth:`_api` answers one request as ``(status, payload)`` or raises :class:`ApiError`."""

    server: SignzyHTTPServer

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
            token = self._patron_token(match["user_id"], query)
            return self._patron_resource(token.user_id, match["rest"], match["identity"], body, query)
        if path == SNOOPS_PATH and self.command == "POST":
            return 200, self._snoop(body)
        match = _RESOURCE_ROUTE.match(path)
        if match and self.command == "POST" and _products().knows_resource(match["resource"]):
            token = self._patron_token(match["user_id"], query)
            return 200, self._product_resource(token.user_id, match["resource"], body)
        raise ApiError(404, f"There is no method to handle {self.command} {path}", code="METHOD_NOT_FOUND")

    def _patron_token(self, user_id: str, query: dict[str, list[str]]) -> Any:
        """The patron token of a patron-scoped call: valid, the path's own patron, within the rate limit."""
        token = self._authenticate(query)
        if user_id != token.user_id:
            raise self._denied()
        self._check_rate_limit(token.user_id)
        return token

    # -- products --

    def _snoop(self, body: bytes) -> dict[str, Any]:
        """``POST /api/v2/snoops``: authenticated by the identity's ``itemId`` + ``accessToken`` in the body;
        an ``Authorization`` header is ignored (open question 1)."""
        products, state = _products(), self.server.state
        payload = self._parse_json(body)
        payload = payload if isinstance(payload, dict) else {}
        identity = state.identity_for_snoop(payload.get("itemId"), payload.get("accessToken"))
        if identity is None:
            raise ApiError(401, "Authorization Required: unknown itemId or wrong accessToken", v2=True)
        self._check_rate_limit(identity["patronId"])
        if payload.get("service") != "Identity":
            raise ApiError(422, f"service must be Identity, got {_js_json(payload.get('service'))}", v2=True)
        product = products.identity_product(identity["type"], payload.get("task"))
        images = identity.get("images") or []
        essentials = products.check(product, payload.get("essentials"), images)
        sequence = state.record_snoop(product.name, identity["id"])
        self._latency(product.name)
        result = products.answer(product, essentials, images, base_url=self.base_url(), identity_type=identity["type"])
        response: dict[str, Any] = {**products.echoed(product, essentials, images)}
        response.update({"instance": {"id": identity["id"], "callbackUrl": identity.get("callbackUrl")}})
        response.update({"id": sequence, "result": result})
        return {
            "service": "Identity",
            "itemId": identity["id"],
            "task": payload["task"],
            "essentials": essentials,
            "accessToken": payload["accessToken"],
            "id": secrets.token_hex(12),
            "response": response,
        }

    def _product_resource(self, user_id: str, resource: str, body: bytes) -> dict[str, Any]:
        """``POST /api/v2/patrons/{userId}/<resource>``: a one-step product, with the patron token."""
        products = _products()
        payload = self._parse_json(body)
        payload = payload if isinstance(payload, dict) else {}
        product = products.resource_product(resource, payload.get("task"))
        essentials = products.check(product, payload.get("essentials"), [])
        self.server.state.record_resource_call(product.name)
        self._latency(product.name)
        result = products.answer(product, essentials, [], base_url=self.base_url(), identity_type=None)
        answer: dict[str, Any] = {"task": payload["task"]} if payload.get("task") is not None else {}
        answer.update({"essentials": essentials, "id": secrets.token_hex(12), "patronId": user_id, "result": result})
        return answer

    def _latency(self, key: str) -> None:
        """Wait the configured latency for ``key`` (a product name, or ``persist``); stops early on shutdown."""
        seconds = self.server.latency_for(key)
        if seconds > 0:
            self.server.closing.wait(seconds)

    def base_url(self) -> str:
        """This emulator's address as the client reached it (its ``Host`` header), for URLs in answers."""
        host = self.headers.get("Host") or ""
        if not _HOST.match(host):
            address, port = self.server.server_address[:2]
            host = f"{address!s}:{port}"
        return f"http://{host}"

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
            found = state.identity(identity_id)
            if found is None or found["patronId"] != user_id:
                raise ApiError(404, f'Unknown "identity" id "{identity_id}".', code="MODEL_NOT_FOUND")
            return 200, found
        raise ApiError(404, f"There is no method to handle {self.command} {rest}", code="METHOD_NOT_FOUND")


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


def _products() -> ModuleType:
    """:mod:`.products`, imported on first use: the catalog it reads imports the provider's exceptions (Airflow)."""
    return importlib.import_module("airflow_provider_signzy.emulator.products")


def route_of(path: str) -> str:
    """The path with patron, identity and file ids replaced, so counts add up per route."""
    if path in LOGIN_PATHS or path in LOGOUT_PATHS:
        return path
    match = _PATRON_ROUTE.match(path)
    if match:
        route = "/api/v2/patrons/{userId}"
        if match["rest"]:
            route += "/identities" + ("/{id}" if match["identity"] else "")
        return route
    if match := _RESOURCE_ROUTE.match(path):
        return "/api/v2/patrons/{userId}/" + match["resource"]
    if match := _DOWNLOAD_ROUTE.match(path):
        return f"/api/{match['kind']}/{{id}}/download/{{name}}"
    return path
