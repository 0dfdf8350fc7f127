"""Batches under the ledger: one record per window of items, matched by identity on a later try."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_signzy.exceptions import SignzyOutcomeUnknownError
from airflow_provider_signzy.ledger.records import (
    BATCH_KEY_PREFIX,
    NOT_ACTED,
    SUCCEEDED,
    UNKNOWN,
    WINDOW,
    Records,
    TaskScope,
    UnreadableRecord,
    _sha,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_signzy.utils.fernet_cipher import SignzyCipher

# -- batches -------------------------------------------------------------------------------------------

#: What a batch does with an item, given its earlier tries' entry.
SEND, REPLAY, KEEP_UNKNOWN = "send", "replay", "unknown"


def earlier_outcome(entry: dict[str, Any] | None) -> tuple[str, str | None]:
    """(what to do with a batch item, why) from its latest entry in the earlier tries (None: none)."""
    state = entry.get("state") if entry else None
    if entry is None or state == NOT_ACTED:
        return SEND, None
    if state == SUCCEEDED:
        return REPLAY, None
    what = "its answer never arrived" if state == UNKNOWN else "that try ended before its answer was recorded"
    return KEEP_UNKNOWN, (
        f"sent by try {entry.get('try')} at {entry.get('sent_at')}, and {what}: Signzy may have acted on it and "
        "it may have been charged, so it is not sent again"
    )


class BatchLedger:
    """The call ledger of one batch run in one task: one record per window of items.

    A window's entries are written once before any of its calls leaves ("sending") and once when all
    have finished, so a batch costs two store writes per window, not per call. Keys carry the batch's
    scope and the try, so a later try reads every earlier try's windows of the same scope and takes each
    call's latest entry. Items are matched by identity (method, path, body digest or ``call_key``, and
    which repeat of an identical call it is), not by position.

    The scope: ``ledger_key`` when given, else the method and the endpoint template; plus which run of that
    name this is in the try (the first batch on an endpoint, the second, ...). So a task that sends its
    items in chunks keeps one scope per chunk, and a retry matches them chunk by chunk.
    """

    def __init__(self, records: Records, scope_name: str, log: Any) -> None:
        self.records = records
        self.scope = records.scope
        self.name = scope_name
        self.log = log

    @classmethod
    def open(
        cls,
        *,
        method: str,
        endpoint: str,
        ledger_key: str | None = None,
        cipher_factory: Callable[[], SignzyCipher],
        log: Any,
    ) -> BatchLedger | None:
        """The ledger of this batch run in the running task, or None where there is no task state store."""
        scope = TaskScope.current()
        if scope is None:
            return None
        base = f"key {ledger_key}" if ledger_key is not None else f"{method} {endpoint}"
        ordinal = scope.ordinal(f"batch {base}")
        name = _sha(f"{base} #{ordinal}")[:16]
        return cls(Records(scope, cipher_factory(), log), name, log)

    @property
    def keeps_answers(self) -> bool:
        return self.records.keeps_answers

    @property
    def limit(self) -> int:
        return self.records.limit

    def key(self, window: int, try_number: int | None = None) -> str:
        return f"{BATCH_KEY_PREFIX}{self.name}:t{try_number or self.scope.try_number}:w{window}"

    def earlier_entries(self) -> dict[str, dict[str, Any]]:
        """Each call's latest entry from the earlier tries of this batch (none on a first try).

        Raises :class:`SignzyOutcomeUnknownError`, before anything is sent, when a window of an earlier try
        cannot be read: which items it covered is then unknown, and none may be sent blindly.
        """
        latest: dict[str, dict[str, Any]] = {}
        for try_number in range(1, self.scope.try_number):
            window = 0
            while True:
                key = self.key(window, try_number)
                try:
                    record = self.records.read(key, WINDOW)
                    if record is None and self.records.read(self.key(window + 1, try_number), WINDOW) is not None:
                        raise UnreadableRecord(f"it is missing, but window {window + 1} of that try is there")
                except UnreadableRecord as why:
                    raise SignzyOutcomeUnknownError(
                        f"Signzy batch ledger entry {key!r} (try {try_number}, window {window}) cannot be read "
                        f"({why}). Which items it covers is unknown, and some may have been charged, so this "
                        "try sends nothing. Restore the Fernet key it was written with, or run the items you "
                        "need in a new batch (another task or run)"
                    ) from None
                if record is None:
                    break
                latest.update(record["content"])
                window += 1
        return latest

    def write(self, window: int, calls: dict[str, dict[str, Any]]) -> int:
        """Store a window's entries (answers only when they can be encrypted); returns the bytes stored."""
        if not self.keeps_answers:
            calls = {identity: {**entry, "answer": None} for identity, entry in calls.items()}
        clear = {"try": self.scope.try_number, "items": len(calls)}
        return self.records.write(self.key(window), WINDOW, clear, calls)
