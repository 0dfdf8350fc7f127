"""Tokens of :class:`~airflow_provider_signzy.hooks.signzy.SignzyHook`: the one it owns (logged in on first
use, renewed before expiry, revoked on close), and an authenticated call that logs in again once on a 401."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from airflow.providers.common.compat.sdk import mask_secret

from airflow_provider_signzy.exceptions import SignzyAuthError, SignzyError, SignzyPermissionError
from airflow_provider_signzy.hooks.transport import SignzyTransport
from airflow_provider_signzy.ledger import not_sent
from airflow_provider_signzy.utils.access_token import SignzyToken
from airflow_provider_signzy.utils.login_exchange import login_body, refused_login, token_from_answer

if TYPE_CHECKING:
    import requests

#: An inner layer of SignzyHook, not an API of its own: use :class:`~airflow_provider_signzy.hooks.signzy.SignzyHook`.
__all__: list[str] = []


class SendRecord(Protocol):
    """What the call ledger hooks into a paid call: told right before each send, and of a 401.

    :meth:`sending` runs after the token is in hand (a login never happens inside the window it opens);
    :meth:`refused` runs when Signzy answered 401 (it did not act), before the one login after it.
    """

    def sending(self) -> None: ...

    def refused(self, exc: BaseException) -> None: ...


class SignzyTokenOwner(SignzyTransport):
    """:class:`.SignzyTransport` with tokens: the hook's own, and the one re-login after a 401."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._own_token: SignzyToken | None = None
        self._replacements: dict[str, SignzyToken] = {}
        self._token_lock = threading.Lock()
        self._renew_lock = threading.Lock()

    def login(self, ttl: int | None = None) -> SignzyToken:
        """Log in and return a new token (masked in this process's logs).

        ``ttl``: seconds the token should live; default the connection's ``token_ttl`` extra, else an hour.
        """
        config = self.config
        sent_at = datetime.now(UTC)
        try:
            # Safe to resend: a login whose answer was lost only leaves a token that dies at its ttl.
            response = self._send("POST", config.login_path, json=login_body(config, ttl), idempotent=True)
        except SignzyAuthError as exc:
            raise refused_login(exc, config) from None
        token = token_from_answer(response, config, sent_at=sent_at)
        mask_secret(token.id)
        self.log.info(
            "Logged in to Signzy as patron %s (connection %r); token valid until %s",
            token.user_id,
            config.conn_id,
            token.expires_at.isoformat(timespec="seconds"),
        )
        return token

    def logout(self, token: SignzyToken | str) -> bool:
        """Revoke ``token``: True if it was revoked now, False if it was already dead. Idempotent."""
        user = token.user_id if isinstance(token, SignzyToken) else "?"
        try:
            self._send("POST", self.config.logout_path, auth=self._auth(token), idempotent=True)
        except SignzyAuthError:
            self.log.info("Signzy token of patron %s was already revoked or expired", user)
            return False
        self.log.info("Revoked the Signzy token of patron %s", user)
        return True

    def _authenticated(
        self,
        method: str,
        endpoint: str,
        url: str,
        token: SignzyToken | None,
        *,
        idempotent: bool,
        call: dict[str, Any],
        record: SendRecord | None = None,
    ) -> requests.Response:
        """The call with ``token`` (or the hook's own), logging in again once on a 401.

        Logins happen outside ``record``'s window: before :meth:`SendRecord.sending`, and after
        :meth:`SendRecord.refused`. A login that fails raises ``SignzyNotSentError`` (Signzy did not act).
        """
        shown = call.get("shown_path") or endpoint
        try:
            current = self._replacements.get(token.id, token) if token is not None else self.get_token()
        except SignzyError as exc:
            if idempotent:  # safe to send again whatever happened: the login's own error says enough
                raise
            raise not_sent(
                exc, method=method, path=shown, conn_id=self.signzy_conn_id, why="the login before it failed"
            ) from None

        def send(with_token: SignzyToken) -> requests.Response:
            if record is not None:
                record.sending()
            return self._send(method, endpoint, idempotent=idempotent, url=url, auth=self._auth(with_token), **call)

        try:
            return send(current)
        except SignzyAuthError as first:
            self.log.warning(
                "Signzy answered 401 %s to %s %s; the token is expired or revoked, logging in again once",
                first.code or "",
                method,
                first.path,
            )
            if record is not None:
                record.refused(first)
        try:
            # Keyed by the caller's token: later calls with it reuse `fresh`.
            fresh = self._renew_own_token(replacing=token, failed=current)
        except SignzyError as exc:
            if idempotent:
                raise
            raise not_sent(
                exc,
                method=method,
                path=shown,
                conn_id=self.signzy_conn_id,
                why="Signzy refused it with 401 (without acting on it), and the login after that failed",
            ) from None
        try:
            return send(fresh)
        except SignzyAuthError as second:
            raise second.restated(
                SignzyPermissionError,
                f"Signzy refused {method} {second.path} with a fresh token too ({second.status} "
                f"{second.code or ''} {second.signzy_message}): patron {fresh.user_id} may not use this "
                f"resource. This is a permission problem, not an expired token (connection "
                f"{self.signzy_conn_id!r})",
            ) from None

    @property
    def owned_token(self) -> SignzyToken | None:
        """The token the hook logged in for itself, if any (it revokes it on :meth:`close`)."""
        return self._own_token

    def get_token(self) -> SignzyToken:
        """The hook's own token: logs in on first use and again shortly before expiry (once for all threads)."""
        with self._token_lock:
            token = self._own_token
            if token is not None and not token.needs_refresh():
                return token
        with self._renew_lock:
            token = self._own_token
            if token is not None and not token.needs_refresh():
                return token  # another thread logged in meanwhile
            if token is not None:
                self.log.info("Signzy token of patron %s expires soon; logging in again", token.user_id)
            return self._login_as_own(None)

    def _renew_own_token(
        self, *, replacing: SignzyToken | None = None, failed: SignzyToken | None = None
    ) -> SignzyToken:
        with self._renew_lock:  # threads refused at once log in once, not once each
            if failed is not None:
                current = self._replacements.get(replacing.id) if replacing is not None else self._own_token
                if current is not None and current.id != failed.id:
                    return current
            return self._login_as_own(replacing)

    def _login_as_own(self, replacing: SignzyToken | None) -> SignzyToken:
        fresh = self.login()
        with self._token_lock:
            old, self._own_token = self._own_token, fresh
            if replacing is not None:
                self._replacements[replacing.id] = fresh
        if old is not None and old.id != fresh.id and old not in self._replacements.values():
            self.revoke_quietly(old)
        return fresh

    def revoke_quietly(self, token: SignzyToken) -> bool | None:
        """:meth:`logout` that logs a failure instead of raising it (None: it could not be revoked)."""
        try:
            return self.logout(token)
        except SignzyError as exc:
            self.log.warning("Could not revoke a Signzy token of patron %s: %s", token.user_id, exc)
            return None

    def _revoke_owned(self) -> None:
        with self._token_lock:
            owned = [self._own_token, *self._replacements.values()]
            self._own_token = None
            self._replacements.clear()
        for token in {t.id: t for t in owned if t is not None}.values():
            self.revoke_quietly(token)
