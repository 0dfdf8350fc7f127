"""The call ledger: a paid Signzy call is sent at most once per task, across Airflow's own retries.

This module owns the paid-call policy end to end, for single calls (:func:`request`, which
``SignzyHook.request`` is) and batches (:class:`BatchLedger`); the hook is the transport.

Before a non-idempotent call leaves, an entry saying "sending" is written to Airflow's task state store;
once the answer is in, the outcome replaces it. The store is scoped to (DAG run, task, map index) and
survives retries, heartbeat-timeout retries and ``airflow tasks clear`` (Airflow 3.3+), so a later try
of the same call finds the entry and:

- ``succeeded``: does not send; the stored answer is replayed as the response;
- ``not-acted`` (refused before Signzy acted: a 4xx answer, a rate limit, a connection never made, a login
  that failed before or after a 401): sends;
- ``sending`` (the try died mid-call), ``unknown`` (lost answer, read timeout, 5xx), or an entry that
  cannot be read: does not send and fails the task without retries
  (:class:`~airflow_provider_signzy.exceptions.SignzyOutcomeUnknownError`).

What is acted on: the token is obtained (login, renewal) *before* "sending" is written, and the one
re-login after a 401 happens after the entry says "not acted"; so only the paid request itself can make
an outcome unknown. The answer in hand is never dropped: when the outcome cannot be recorded (after the
store-write retries of :func:`~airflow_provider_signzy.utils.retry_policy.build_store_retrying`), the call still
returns it, and the log says (without the answer) that the ledger could not record it.

**One record format** (version :data:`LEDGER_VERSION`), for single calls and batch windows alike::

    {"v": 2, "kind": "call" | "window", "state": ..., "try": n, "enc": "fernet" | "zlib", "data": "..."}

``data`` is the record's content as compressed JSON, Fernet-encrypted with the token's key (``enc:
fernet``); without any key it is only compressed and holds no answers (``enc: zlib``). In the clear: the
kind, a single call's state, the try, a window's item count: nothing about a customer. Paths are kept as a
digest. A record bigger than the store's ``[state_store] max_value_storage_bytes`` is split: its data goes
to ``<key>:p1``, ``<key>:p2``, ... (written first) and the record names how many parts and their digest.
On read, the version is checked; a record that is not a dict, has another version, misses a part or
cannot be decrypted is *unreadable*, and an unreadable record counts as unknown, never as "never sent".

A different body (or ``call_key``) is a different call. The n-th identical call of a try matches the n-th
of the next try, so a task that sends the same call twice on purpose keeps both; likewise the n-th batch
on an endpoint (or with a ``ledger_key``) of a try is its own scope. Before Airflow 3.3 there is no store:
an unknown outcome still fails the task without retries, but a worker killed mid-call is retried by
Airflow and the call is sent again (the README's table says what holds where).
"""

from __future__ import annotations

from airflow_provider_signzy.ledger.calls import (
    LedgerEntry,
    answer_of,
    failure_fields,
    open_entry,
    outcome_unknown,
    replayed_response,
    request,
)
from airflow_provider_signzy.ledger.records import (
    BATCH_KEY_PREFIX,
    CALL,
    DEFAULT_STORE_LIMIT,
    LEDGER_KEY_PREFIX,
    LEDGER_VERSION,
    NOT_ACTED,
    PART,
    REPLAYED_REASON,
    SENDING,
    SUCCEEDED,
    UNKNOWN,
    WINDOW,
    Records,
    SignzyNotSentError,
    TaskScope,
    UnreadableRecord,
    body_digest,
    not_sent,
    ranges,
    signzy_acted,
    store_limit,
    unreachable,
)
from airflow_provider_signzy.ledger.windows import KEEP_UNKNOWN, REPLAY, SEND, BatchLedger, earlier_outcome

__all__ = [
    "BATCH_KEY_PREFIX",
    "CALL",
    "DEFAULT_STORE_LIMIT",
    "KEEP_UNKNOWN",
    "LEDGER_KEY_PREFIX",
    "LEDGER_VERSION",
    "NOT_ACTED",
    "PART",
    "REPLAY",
    "REPLAYED_REASON",
    "SEND",
    "SENDING",
    "SUCCEEDED",
    "UNKNOWN",
    "WINDOW",
    "BatchLedger",
    "LedgerEntry",
    "Records",
    "SignzyNotSentError",
    "TaskScope",
    "UnreadableRecord",
    "answer_of",
    "body_digest",
    "earlier_outcome",
    "failure_fields",
    "not_sent",
    "open_entry",
    "outcome_unknown",
    "ranges",
    "replayed_response",
    "request",
    "signzy_acted",
    "store_limit",
    "unreachable",
]
