"""The emulator's memory: patrons, access tokens, identities, snoops, counters and a clock that tests can move."""

from __future__ import annotations

import base64
import secrets
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_signzy.emulator.loopback_filter import ListFilter

#: An identity's status when created; a person's action (upload, consent, ...) moves it later.
INITIAL_STATUS = "pending"

#: Personal fields of an identity's body that the identity keeps, when given.
PERSONAL_FIELDS = ("name", "pan", "dob", "address", "phone", "aadhaar")

#: LoopBack's default and maximum access-token lifetimes (seconds).
DEFAULT_TTL = 1_209_600
MAX_TTL = 31_556_926

#: The most recent snoops kept for ``GET /_emulator/snoops`` (counts are kept for all of them).
RECENT_SNOOPS = 10_000


@dataclass(frozen=True)
class Patron:
    username: str
    api_key: str = field(repr=False)
    user_id: str
    email: str | None = None


@dataclass
class AccessToken:
    id: str = field(repr=False)
    user_id: str
    ttl: int
    created: float


class EmulatorState:
    """Thread-safe store behind the emulator's HTTP handler."""

    def __init__(
        self,
        patrons: list[Patron],
        *,
        max_ttl: int = MAX_TTL,
        default_ttl: int = DEFAULT_TTL,
        token_log: str | None = None,
        auto_status: tuple[str, float] | None = None,
    ) -> None:
        self.lock = threading.Lock()
        self.default_auto_status = auto_status
        self.patrons = {p.username: p for p in patrons}
        self.by_email = {p.email: p for p in patrons if p.email}
        self.max_ttl = max_ttl
        self.default_ttl = default_ttl
        self.token_log = token_log
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.tokens: dict[str, AccessToken] = {}
            self.identities: dict[str, dict[str, Any]] = {}
            self.snoops_by_identity: Counter[str] = Counter()
            self.snoops_by_product: Counter[str] = Counter()
            self.resource_calls_by_product: Counter[str] = Counter()
            self.recent_snoops: deque[dict[str, Any]] = deque(maxlen=RECENT_SNOOPS)
            self.pending_moves: dict[str, tuple[float, str]] = {}
            self.counters: Counter[str] = Counter()
            self.requests: Counter[str] = Counter()
            self.held: dict[int, dict[str, Any]] = {}
            self.clock_offset = 0.0
            #: (status, seconds): each identity created from now on moves to ``status`` that long after creation.
            self.auto_status: tuple[str, float] | None = self.default_auto_status

    # -- clock --

    def now(self) -> float:
        return time.time() + self.clock_offset

    def advance_clock(self, seconds: float) -> None:
        with self.lock:
            self.clock_offset += seconds

    # -- patrons and tokens --

    def find_patron(self, username: str | None, email: str | None) -> Patron | None:
        if username:
            return self.patrons.get(username)
        return self.by_email.get(email or "")

    def issue_token(self, patron: Patron, ttl: int) -> AccessToken:
        token = AccessToken(id=secrets.token_urlsafe(48), user_id=patron.user_id, ttl=ttl, created=self.now())
        with self.lock:
            self.tokens[token.id] = token
            self.counters["logins"] += 1
        self._log_secret(token.id)
        return token

    def _log_secret(self, secret: str) -> None:
        if self.token_log:  # for leak scans in end-to-end tests only
            with open(self.token_log, "a", encoding="utf-8") as handle:
                handle.write(secret + "\n")

    def resolve(self, token_id: str) -> tuple[AccessToken | None, str | None]:
        """(token, None) when valid; (None, 'INVALID_TOKEN') when expired (and deleted); (None, None)."""
        with self.lock:
            token = self.tokens.get(token_id)
            if token is None:
                return None, None
            if self.now() >= token.created + token.ttl:
                del self.tokens[token_id]
                self.counters["expired"] += 1
                return None, "INVALID_TOKEN"
            return token, None

    def revoke(self, token_id: str) -> bool:
        with self.lock:
            token = self.tokens.pop(token_id, None)
            if token is None:
                self.counters["logout_misses"] += 1
                return False
            self.counters["logouts"] += 1
            return True

    def live_tokens(self) -> list[AccessToken]:
        now = self.now()
        with self.lock:
            return [t for t in self.tokens.values() if now < t.created + t.ttl]

    # -- identities --

    def create_identity(self, user_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Store an identity; the answer (only this one) carries its own ``accessToken``, the snoops' credential."""
        now = self.now()
        access_token = base64.b32encode(secrets.token_bytes(20)).decode().lower()  # 32 of a-z, 2-7
        identity = {
            "id": secrets.token_hex(12),
            "patronId": user_id,
            "type": body["type"],
            "email": body.get("email"),
            "callbackUrl": body.get("callbackUrl"),
            "images": body.get("images", []),
            "status": INITIAL_STATUS,
            "createdAt": iso(now),
            # The identity's own credential for its snoops: kept here, shown by the create answer only.
            "accessToken": access_token,
        }
        # The customer's own data, as a real KYC answer carries it (so tests see personal data in answers).
        identity.update({name: body[name] for name in PERSONAL_FIELDS if name in body})
        with self.lock:
            self.identities[identity["id"]] = identity
            if self.auto_status is not None:
                status, after = self.auto_status
                self.pending_moves[identity["id"]] = (now + after, status)
            self.counters["identities_created"] += 1
        self._log_secret(access_token)
        # Signzy's answer (section 1a) also has these arrays; they stay empty here (open question 2).
        return {**identity, "autoRecognition": [], "verification": [], "forgeryCheck": []}

    def identity(self, identity_id: str) -> dict[str, Any] | None:
        """One identity as answers show it (no ``accessToken``): a dict lookup, never a scan, its due status
        move applied; None when unknown."""
        with self.lock:
            identity = self.identities.get(identity_id)
            if identity is None:
                return None
            move = self.pending_moves.get(identity_id)
            if move is not None and self.now() >= move[0]:
                del self.pending_moves[identity_id]
                self._moved(identity, move[1], move[0])
            return public(identity)

    def identity_for_snoop(self, item_id: Any, access_token: Any) -> dict[str, Any] | None:
        """The identity whose id and own token these are (as :meth:`identity` shows it); None for an unknown
        id or a wrong token."""
        if not isinstance(item_id, str) or not isinstance(access_token, str):
            return None
        with self.lock:
            identity = self.identities.get(item_id)
            expected = "" if identity is None else identity["accessToken"]
        if not expected or not secrets.compare_digest(expected.encode(), access_token.encode()):
            return None
        return self.identity(item_id)

    # -- product calls --

    def record_snoop(self, product: str, item_id: str) -> int:
        """Count a snoop that reached the product; returns its sequence number (Signzy's ``response.id``)."""
        with self.lock:
            self.counters["snoops"] += 1
            self.snoops_by_product[product] += 1
            self.snoops_by_identity[item_id] += 1
            self.recent_snoops.append({"product": product, "itemId": item_id, "at": iso(self.now())})
            return self.counters["snoops"]

    def record_resource_call(self, product: str) -> None:
        with self.lock:
            self.counters["resource_calls"] += 1
            self.resource_calls_by_product[product] += 1

    def snoops_of(self, item_id: str) -> int:
        with self.lock:
            return self.snoops_by_identity[item_id]

    def set_identity_status(self, identity_id: str, status: str) -> dict[str, Any] | None:
        """Move an identity's status now (what a person's action does); None when it is unknown."""
        with self.lock:
            identity = self.identities.get(identity_id)
            if identity is None:
                return None
            self._move(identity, status)
            return public(identity)

    def set_all_identities_status(self, status: str) -> int:
        """Move every identity's status now; returns how many."""
        with self.lock:
            for identity in self.identities.values():
                self._move(identity, status)
            return len(self.identities)

    def _move(self, identity: dict[str, Any], status: str) -> None:
        self.pending_moves.pop(identity["id"], None)
        self._moved(identity, status, self.now())

    def _moved(self, identity: dict[str, Any], status: str, when: float) -> None:
        identity["status"] = status
        identity["updatedAt"] = iso(when)
        self.counters["status_changes"] += 1

    def _apply_due_moves(self) -> None:
        """Automatic moves whose time has come (call with the lock held)."""
        now = self.now()
        for identity_id, (due, status) in list(self.pending_moves.items()):
            if now >= due:
                del self.pending_moves[identity_id]
                self._moved(self.identities[identity_id], status, due)

    def identities_of(self, user_id: str, *, list_filter: ListFilter | None = None) -> list[dict[str, Any]]:
        """The patron's identities in creation order; ``list_filter`` selects, orders and pages them."""
        with self.lock:
            self._apply_due_moves()
            mine = [public(i) for i in self.identities.values() if i["patronId"] == user_id]
        return mine if list_filter is None else list_filter.apply(mine)

    # -- counters --

    def count(self, name: str, n: int = 1) -> None:
        with self.lock:
            self.counters[name] += n

    def count_request(self, route: str) -> None:
        with self.lock:
            self.requests[route] += 1

    # -- answers held by the ``hold`` fault --

    def hold_started(self, key: int, route: str, client_port: int) -> None:
        with self.lock:
            self.held[key] = {"route": route, "client_port": client_port, "since": time.monotonic()}

    def hold_ended(self, key: int, *, delivered: bool) -> None:
        with self.lock:
            self.held.pop(key, None)
            self.counters["held_answers_sent" if delivered else "held_answers_undelivered"] += 1

    def snapshot(self) -> dict[str, Any]:
        """What tests and demos read: counts only, never a token value."""
        live = self.live_tokens()
        by_patron = Counter(t.user_id for t in live)
        with self.lock:
            return {
                "live_tokens": len(live),
                "live_tokens_by_patron": dict(by_patron),
                "logins": self.counters["logins"],
                "failed_logins": self.counters["failed_logins"],
                "logouts": self.counters["logouts"],
                "logout_misses": self.counters["logout_misses"],
                "expired": self.counters["expired"],
                "identities_created": self.counters["identities_created"],
                "snoops": self.counters["snoops"],
                "resource_calls": self.counters["resource_calls"],
                "snoops_by_product": dict(self.snoops_by_product),
                "resource_calls_by_product": dict(self.resource_calls_by_product),
                "uploads": self.counters["uploads"],
                "upload_bytes": self.counters["upload_bytes"],
                "uploads_refused": self.counters["uploads_refused"],
                "downloads": self.counters["downloads"],
                "status_changes": self.counters["status_changes"],
                "faults_served": self.counters["faults_served"],
                "rate_limited": self.counters["rate_limited"],
                "faults_by_kind": {k[6:]: n for k, n in self.counters.items() if k.startswith("fault ")},
                "held": [
                    {
                        "route": h["route"],
                        "client_port": h["client_port"],
                        "seconds": round(time.monotonic() - h["since"], 2),
                    }
                    for h in self.held.values()
                ],
                "held_answers_sent": self.counters["held_answers_sent"],
                "held_answers_undelivered": self.counters["held_answers_undelivered"],
                "connections": self.counters["connections"],
                "requests": dict(self.requests),
                "total_requests": sum(self.requests.values()),
            }


def public(identity: dict[str, Any]) -> dict[str, Any]:
    """An identity as list, item and control answers show it: without its ``accessToken``."""
    return {k: v for k, v in identity.items() if k != "accessToken"}


def iso(epoch: float) -> str:
    """LoopBack's timestamp format: ``2023-03-02T15:21:31.457Z``."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
