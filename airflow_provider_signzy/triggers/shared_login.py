"""One Signzy login per connection per triggerer process, shared by every Signzy trigger in it.

``async with shared_login(conn_id) as login:`` counts the trigger as a user. The first user reads the
connection (async-safe) and logs in for a short-lived token; later users reuse it. The token is renewed
shortly before it expires and after a 401 (once for all the triggers that saw that 401), and revoked
when the last user leaves, whether it succeeded, failed, timed out or was cancelled.

Logins are kept per event loop: the triggerer runs one loop, ``dag.test()`` one per trigger run, and an
``httpx`` client or ``asyncio.Lock`` cannot cross loops.

A token that could not be revoked because Signzy did not answer (it is down) is kept in this process's
memory, and revoked by the next login of the same connection here, once Signzy answers again; else it
dies at its TTL (the connection's ``token_ttl``).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from airflow_provider_signzy.exceptions import SignzyConfigError, SignzyError
from airflow_provider_signzy.hooks.signzy_async import SignzyAsyncHook
from airflow_provider_signzy.utils.access_token import SignzyToken
from airflow_provider_signzy.utils.connection_config import SignzyConnectionConfig
from airflow_provider_signzy.utils.retry_policy import is_transient

_LOGINS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, SharedLogin]] = weakref.WeakKeyDictionary()
#: Tokens whose revocation failed because Signzy did not answer, per connection (memory only).
_UNREVOKED: dict[str, list[SignzyToken]] = {}


async def _mask(secret: str) -> None:
    try:
        from airflow.sdk.log import amask_secret
    except ImportError:  # Airflow 2.x
        from airflow.providers.common.compat.sdk import mask_secret

        mask_secret(secret)
    else:
        await amask_secret(secret)


class SharedLogin:
    """The token of one connection on one event loop, and the client that uses it."""

    def __init__(self, conn_id: str, log: Any) -> None:
        self.conn_id = conn_id
        self.log = log
        self.users = 0
        self._lock = asyncio.Lock()
        self._client: SignzyAsyncHook | None = None
        self._token: SignzyToken | None = None
        self._renewal: asyncio.Future[SignzyToken] | None = None

    async def client(self) -> SignzyAsyncHook:
        """The connection's client; the connection is read on first use, without blocking the loop."""
        async with self._lock:
            return await self._client_locked()

    async def _client_locked(self) -> SignzyAsyncHook:
        if self._client is None:
            from airflow.providers.common.compat.connection import get_async_connection

            try:
                conn = await get_async_connection(self.conn_id)
            except Exception as exc:  # AirflowNotFoundException, a secrets backend down: say which
                raise SignzyConfigError(
                    f"The triggerer could not read connection {self.conn_id!r}: {type(exc).__name__}: {exc}",
                    conn_id=self.conn_id,
                ) from None
            config = SignzyConnectionConfig.from_connection(conn)
            await _mask(config.api_key)
            self._client = SignzyAsyncHook(config, log=self.log)
        return self._client

    async def token(self, *, stale: SignzyToken | None = None) -> SignzyToken:
        """The shared token; a new one when there is none, it expires soon, or it is ``stale`` (got a 401).

        The login runs as its own task, shielded: a trigger cancelled mid-login must not lose a token
        that Signzy has already issued (nobody could revoke it then). :meth:`close` waits for it.
        """
        async with self._lock:
            if self._renewal is None or self._renewal.done():
                client = await self._client_locked()
                current = self._token
                if current is not None and not current.needs_refresh() and (stale is None or current.id != stale.id):
                    return current
                self._renewal = asyncio.ensure_future(self._renew(client, current, stale))
            return await asyncio.shield(self._renewal)

    async def _renew(
        self, client: SignzyAsyncHook, current: SignzyToken | None, stale: SignzyToken | None
    ) -> SignzyToken:
        fresh = await client.login(None)  # the connection's token_ttl: an hour unless it says otherwise
        self._token = fresh
        await _mask(fresh.id)
        why = "first use" if current is None else ("a 401" if stale is not None else "renewal before expiry")
        self.log.info(
            "Shared Signzy login for connection %r (%s): patron %s, token valid until %s, %d trigger(s) use it",
            self.conn_id,
            why,
            fresh.user_id,
            fresh.expires_at.isoformat(timespec="seconds"),
            self.users,
        )
        if current is not None:
            await self._revoke(client, current)  # replaced: a 401 does not prove it dead (it may be a denial)
        for orphan in _UNREVOKED.pop(self.conn_id, []):  # Signzy answers again: revoke what it could not
            if not orphan.needs_refresh():
                await self._revoke(client, orphan)
        return fresh

    async def _revoke(self, client: SignzyAsyncHook, token: SignzyToken) -> None:
        try:
            revoked = await client.logout(token)
        except SignzyError as exc:
            later = is_transient(exc)
            if later:
                _UNREVOKED.setdefault(self.conn_id, []).append(token)
            self.log.warning(
                "Could not revoke a shared Signzy token of connection %r: %s%s",
                self.conn_id,
                exc,
                "; the next login of this connection in this process revokes it, else it expires at "
                + token.expires_at.isoformat(timespec="seconds")
                if later
                else "",
            )
            return
        self.log.info(
            "%s the shared Signzy token of connection %r",
            "Revoked" if revoked else "Already dead:",
            self.conn_id,
        )

    async def close(self) -> None:
        """Revoke the token and close the client (the last user left), after any login in flight."""
        if self._renewal is not None:
            await asyncio.gather(self._renewal, return_exceptions=True)
        async with self._lock:
            client, token = self._client, self._token
            self._client, self._token = None, None
        if client is None:
            return
        try:
            if token is not None:
                await self._revoke(client, token)
        finally:
            await client.aclose()


@asynccontextmanager
async def shared_login(conn_id: str, log: Any) -> AsyncIterator[SharedLogin]:
    """Use the loop's shared login of ``conn_id`` for the block; the last user out revokes its token."""
    loop = asyncio.get_running_loop()
    logins = _LOGINS.setdefault(loop, {})
    login = logins.get(conn_id)
    if login is None:
        login = logins[conn_id] = SharedLogin(conn_id, log)
    login.users += 1
    try:
        yield login
    finally:
        login.users -= 1
        if login.users == 0:
            if logins.get(conn_id) is login:
                del logins[conn_id]  # a trigger that starts now logs in anew
            # Shielded: a cancelled trigger must still finish revoking the token.
            await asyncio.shield(login.close())


def active_logins() -> dict[str, int]:
    """Users per connection on the running loop (for tests and diagnostics)."""
    logins = _LOGINS.get(asyncio.get_running_loop(), {})
    return {conn_id: login.users for conn_id, login in logins.items()}
