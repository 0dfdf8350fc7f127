"""SignzyEventTrigger: start DAGs when Signzy items reach a state (event-driven scheduling, AIP-82).

Attach it to an asset with ``AssetWatcher``; each item of a list endpoint (a patron's identities by
default) that reaches ``emit_when`` becomes one asset event, whose ``extra["payload"]`` holds the item's
id and the values of the ``emit_when`` paths: no personal data.

Each item is emitted once. What was emitted is remembered in the asset state store where Airflow has one
(3.3+), so a restarted triggerer does not emit it again; elsewhere only in the triggerer's memory, and
each start begins with a baseline (see :class:`SignzyEventTrigger`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from airflow_provider_signzy.exceptions import SignzyError
from airflow_provider_signzy.triggers.shared_login import SharedLogin, shared_login
from airflow_provider_signzy.triggers.signzy import poll_json, shown_value
from airflow_provider_signzy.utils.answer_conditions import all_match, lookup, normalize
from airflow_provider_signzy.utils.retry_policy import is_transient

IDENTITIES = "/api/v2/patrons/{patron_id}/identities"
#: The state-store key prefix; the rest is a digest of what the trigger watches.
RECORD_PREFIX = "signzy_emitted:"
#: Pages read per poll at most (a safety net against a server that ignores ``skip``).
MAX_PAGES = 10_000


class SignzyEventTrigger(BaseEventTrigger):
    """Emit one event per item of ``endpoint`` that reaches ``emit_when``: ``{"id": ..., "state": {...}}``.

    :param emit_when: ``{dotted.path: accepted value or list}``, as ``SignzySensor``'s ``success_when``;
        an item is emitted when every path matches, e.g. ``{"status": "verified"}``.
    :param endpoint: a GET that lists items (a JSON list); ``{patron_id}`` is the logged-in patron.
    :param id_field: the path of each item's id (must not be personal data: it goes into the event).
    :param query_params: more query parameters of the GET. The trigger owns ``filter``.
    :param server_filter: send ``emit_when`` to the server as LoopBack's
        ``filter={"where": ..., "order": "<id_field> ASC", "limit": page_size, "skip": ...}`` and page
        through the answers (Signzy's v2 API is LoopBack 3). ``False``: one GET of the whole list, filtered
        here. Items are checked here in both cases.
    :param page_size: items per page with ``server_filter``.
    :param poll_interval: seconds between polls.
    :param emit_existing: what the first poll of a new watch does with items already in the state: ``False``
        (default) takes them as handled (a baseline: only later arrivals are emitted); ``True`` emits them.
    :param signzy_conn_id: the connection; the trigger uses the triggerer's shared login and retry policy.
    :param release_after: seconds of quiet after events that came close together (a burst) before one
        more event, ``{"release": true}`` with no id, is emitted. Airflow's scheduler (3.0-3.3.2) creates a
        run for the events queued up to the first one and leaves the rest of a burst to the run of the *next*
        event (apache/airflow#56050); the release event is that next event, so a burst is handled in two runs
        instead of waiting for the next customer. ``None``: never. Consumers skip events without ``id``.

    **Once.** An emitted id is remembered; where the triggerer gives this trigger an asset state store
    (Airflow 3.3+) the ids are written there ``COMMIT_DELAY`` seconds after the events leave, once the
    triggerer has handed them to its supervisor, so a restart neither loses nor repeats an item, except
    one emitted in the last ``COMMIT_DELAY`` seconds before the triggerer stopped: that one may come twice
    (at least once; never lost). Without a store (3.0-3.2) the ids live in memory: each start is a first
    poll (``emit_existing`` decides), so an item that reached the state while the triggerer was down is
    not emitted unless ``emit_existing=True``, which emits every item in the state again at each start.
    """

    #: Seconds between emitting events and recording them: the triggerer hands events to its supervisor,
    #: which stores them, about once a second.
    COMMIT_DELAY = 2.0
    #: Events emitted closer than this (seconds) may fall in one scheduler loop (see ``release_after``).
    CLOSE_EVENTS = 2.0

    def __init__(
        self,
        *,
        emit_when: Mapping[str, Any],
        endpoint: str = IDENTITIES,
        id_field: str = "id",
        query_params: dict[str, Any] | None = None,
        server_filter: bool = True,
        page_size: int = 100,
        poll_interval: float = 60.0,
        emit_existing: bool = False,
        signzy_conn_id: str = "signzy_default",
        release_after: float | None = 5.0,
    ) -> None:
        super().__init__()
        self.emit_when = normalize(emit_when, name="emit_when")
        if not self.emit_when:
            raise ValueError("SignzyEventTrigger needs emit_when: which state should start a DAG run?")
        if server_filter and query_params and "filter" in query_params:
            raise ValueError("SignzyEventTrigger builds the 'filter' query parameter itself (server_filter=True)")
        if int(page_size) < 1:
            raise ValueError(f"page_size must be a positive number, got {page_size!r}")
        self.endpoint = endpoint
        self.id_field = id_field
        self.query_params = query_params
        self.server_filter = server_filter
        self.page_size = int(page_size)
        self.poll_interval = float(poll_interval)
        self.emit_existing = emit_existing
        self.signzy_conn_id = signzy_conn_id
        self.release_after = None if release_after is None else float(release_after)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "emit_when": self.emit_when,
                "endpoint": self.endpoint,
                "id_field": self.id_field,
                "query_params": self.query_params,
                "server_filter": self.server_filter,
                "page_size": self.page_size,
                "poll_interval": self.poll_interval,
                "emit_existing": self.emit_existing,
                "signzy_conn_id": self.signzy_conn_id,
                "release_after": self.release_after,
            },
        )

    @property
    def record_key(self) -> str:
        """The state-store key of this watch: the same watch after a restart finds its record."""
        watched = [self.signzy_conn_id, self.endpoint, self.emit_when, self.id_field, self.query_params]
        return RECORD_PREFIX + hashlib.sha256(json.dumps(watched, sort_keys=True).encode()).hexdigest()[:16]

    async def run(self) -> AsyncIterator[TriggerEvent]:
        record = EmittedRecord(getattr(self, "asset_state_store", None), self.record_key, self.log)
        emitted = await record.load()
        first = emitted is None
        seen: set[str] = set(emitted or ())
        if first:
            self.log.info(
                "Signzy event watch of %s (%s): %s",
                self.endpoint,
                "remembered in the asset state store" if record.durable else "remembered in memory only",
                "first poll emits the items already in the state"
                if self.emit_existing
                else "first poll takes the items already in the state as handled",
            )
        else:
            self.log.info(
                "Signzy event watch of %s: %d items already emitted (asset state store)", self.endpoint, len(seen)
            )
        failures = 0
        at_risk, last_emitted = False, float("-inf")  # see release_after
        async with shared_login(self.signzy_conn_id, self.log) as login:
            while True:
                try:
                    items = await self._matching(login)
                except SignzyError as exc:
                    failures += 1
                    log = self.log.warning if is_transient(exc) else self.log.error
                    log("Signzy event watch of %s: poll failed (%d in a row): %s", self.endpoint, failures, exc)
                    await asyncio.sleep(self.poll_interval)
                    continue
                failures = 0
                new = [(item_id, state) for item_id, state in items if item_id not in seen]
                if first and not self.emit_existing:
                    seen.update(item_id for item_id, _ in new)
                    await record.save(seen)
                    self.log.info(
                        "Signzy event watch of %s: baseline of %d items, not emitted", self.endpoint, len(new)
                    )
                    new = []
                first = False
                started = time.monotonic()
                for item_id, state in new:
                    seen.add(item_id)
                    self.log.info("Signzy event watch of %s: item %s reached %s", self.endpoint, item_id, state)
                    yield TriggerEvent({"id": item_id, "state": state})
                    at_risk = at_risk or time.monotonic() - last_emitted < self.CLOSE_EVENTS
                    last_emitted = time.monotonic()
                if new:
                    await asyncio.sleep(self.COMMIT_DELAY)  # cancelled here: not recorded, emitted again
                    await record.save(seen)
                if at_risk and self.release_after is not None and time.monotonic() - last_emitted >= self.release_after:
                    at_risk = False
                    self.log.info("Signzy event watch of %s: a release event for the scheduler", self.endpoint)
                    yield TriggerEvent({"release": True})
                    last_emitted = time.monotonic()  # an event too: one right after it is close to it
                await asyncio.sleep(max(0.0, self.poll_interval - (time.monotonic() - started)))

    async def _matching(self, login: SharedLogin) -> list[tuple[str, dict[str, Any]]]:
        """(id, state) of every listed item that meets ``emit_when``, in the server's order."""
        matching: list[tuple[str, dict[str, Any]]] = []
        for item in await self._list(login):
            if not isinstance(item, Mapping) or not all_match(item, self.emit_when):
                continue
            item_id = lookup(item, self.id_field)
            if not isinstance(item_id, str | int) or isinstance(item_id, bool):
                self.log.warning(
                    "Signzy event watch of %s: an item without %s is skipped", self.endpoint, self.id_field
                )
                continue
            state = {path: lookup(item, path) for path in self.emit_when}
            matching.append((str(item_id), state))
        return matching

    async def _list(self, login: SharedLogin) -> list[Any]:
        if not self.server_filter:
            return self._as_list(await self._get(login, dict(self.query_params or {})))
        items: list[Any] = []
        previous: list[Any] | None = None
        for page in range(MAX_PAGES):
            list_filter = {
                "where": self._where(),
                "order": f"{self.id_field} ASC",
                "limit": self.page_size,
                "skip": page * self.page_size,
            }
            params = {**(self.query_params or {}), "filter": json.dumps(list_filter)}
            answer = self._as_list(await self._get(login, params))
            if answer == previous and answer:
                self.log.warning("Signzy %s ignores filter.skip: one page was read", self.endpoint)
                break
            items.extend(answer)
            if len(answer) != self.page_size:  # the last page (or a server that does not page)
                break
            previous = answer
        return items

    def _where(self) -> dict[str, Any]:
        return {path: values[0] if len(values) == 1 else {"inq": values} for path, values in self.emit_when.items()}

    async def _get(self, login: SharedLogin, params: dict[str, Any]) -> Any:
        return await poll_json(login, self.endpoint, params=params, conn_id=self.signzy_conn_id, log=self.log)

    def _as_list(self, answer: Any) -> list[Any]:
        if not isinstance(answer, list):
            raise SignzyError(
                f"Signzy GET {self.endpoint} answered {shown_value(answer)}, not a list: SignzyEventTrigger "
                "watches list endpoints",
                conn_id=self.signzy_conn_id,
            )
        return answer


class EmittedRecord:
    """The ids a watch has emitted: in the asset state store (3.3+, survives restarts), else in memory."""

    def __init__(self, store: Any, key: str, log: Any) -> None:
        self.key = key
        self.log = log
        self.accessors = _accessors(store)
        self.durable = bool(self.accessors)

    async def load(self) -> set[str] | None:
        """The ids emitted so far; None when this watch never recorded anything (its first start)."""
        found: set[str] | None = None
        for accessor in self.accessors:
            value = await accessor.aget(self.key, None)
            if isinstance(value, Mapping) and isinstance(value.get("ids"), list):
                found = (found or set()) | {str(i) for i in value["ids"]}
        return found

    async def save(self, ids: set[str]) -> None:
        for accessor in self.accessors:
            await accessor.aset(self.key, {"v": 1, "ids": sorted(ids)})


def _accessors(store: Any) -> list[Any]:
    """One accessor per watched asset. The triggerer passes all of a trigger's assets in one object,
    whose single-asset shortcuts refuse when a trigger (deduplicated by its kwargs) watches several."""
    if store is None:
        return []
    per_asset = [*getattr(store, "_by_name", {}).values(), *getattr(store, "_by_uri", {}).values()]
    return per_asset or [store]
