"""The call ledger's rules, and the hook's paid-call path outside a task (no task state store there)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_signzy.emulator import SignzyEmulator
from airflow_provider_signzy.exceptions import (
    SignzyAuthError,
    SignzyClientError,
    SignzyConnectionError,
    SignzyOutcomeUnknownError,
    SignzyRateLimitError,
    SignzyServerError,
)
from airflow_provider_signzy.hooks.signzy import SignzyHook
from airflow_provider_signzy.ledger import TaskScope, body_digest, signzy_acted
from airflow_provider_signzy.utils.error_envelope import error_from_exception

IDENTITIES = "/api/v2/patrons/patron-demo-0001/identities"


def test_digest_ignores_key_order_and_tells_bodies_apart() -> None:
    assert body_digest({"a": 1, "b": [1, 2]}, None, None) == body_digest({"b": [1, 2], "a": 1}, None, None)
    assert body_digest({"a": 1}, None, None) != body_digest({"a": 2}, None, None)
    assert body_digest({"a": 1}, {"q": 1}, None) != body_digest({"a": 1}, None, None)
    assert body_digest({"a": 1}, None, "verify-42") == body_digest({"a": 2}, None, "verify-42")


@pytest.mark.parametrize(
    ("error", "acted"),
    [
        (SignzyConnectionError("x", reached_server=False), False),
        (SignzyConnectionError("x", reached_server=True), None),
        (SignzyServerError("x", status=502), None),
        (SignzyClientError("x", status=422), False),
        (SignzyRateLimitError("x", status=429), False),
        (SignzyAuthError("x", status=401), False),
        (RuntimeError("the try was interrupted"), None),
    ],
)
def test_what_counts_as_acted_on(error: BaseException, acted: bool | None) -> None:
    assert signzy_acted(error) is acted


def test_a_request_that_cannot_be_built_never_reached_signzy() -> None:
    error = error_from_exception(
        requests.exceptions.InvalidJSONError("not JSON"), method="POST", path="/p", conn_id="c", timeout=1
    )
    assert error.reached_server is False
    assert signzy_acted(error) is False


def test_outside_a_task_there_is_no_ledger_scope() -> None:
    assert TaskScope.current() is None


def test_lost_answer_outside_a_task_fails_without_retries_and_says_a_clear_resends(
    make_conn: Callable[..., str], emulator: SignzyEmulator
) -> None:
    make_conn()
    emulator.faults.add({"path": IDENTITIES, "method": "POST", "faults": [{"drop": "after"}]})
    with SignzyHook() as hook, pytest.raises(SignzyOutcomeUnknownError) as raised:
        hook.request("POST", IDENTITIES, json={"type": "individualPan"})
    assert isinstance(raised.value, AirflowFailException)
    assert "There is no call ledger here" in str(raised.value)
    assert emulator.state.snapshot()["requests"]["POST /api/v2/patrons/{userId}/identities"] == 1


def test_refused_post_keeps_its_own_error(make_conn: Callable[..., str], emulator: SignzyEmulator) -> None:
    make_conn()
    emulator.faults.add({"path": IDENTITIES, "method": "POST", "faults": [{"status": 422, "code": "INVALID"}]})
    with SignzyHook() as hook, pytest.raises(SignzyClientError) as raised:
        hook.request("POST", IDENTITIES, json={"type": "individualPan"})
    assert not isinstance(raised.value, AirflowFailException)  # Airflow may retry it: Signzy did not act


def test_default_token_lifetime_is_an_hour(make_conn: Callable[..., str], emulator: SignzyEmulator) -> None:
    make_conn()
    hook = SignzyHook()
    token = hook.login()
    assert token.ttl == 3600
    assert emulator.state.live_tokens()[0].ttl == 3600  # asked for at login, not just assumed
    assert hook.logout(token)


# -- issue 16: one record format, fail closed ----------------------------------------------------------


class MemoryStore:
    """An in-memory stand-in for the task state store's accessor (get/set/delete), for reads only."""

    def __init__(self, preset: object = None) -> None:
        self.values: dict[str, object] = {}
        self.preset = preset

    def get(self, key: str, default: object = None) -> object:
        return self.values.get(key, self.preset if self.preset is not None else default)

    def set(self, key: str, value: object, **kwargs: object) -> None:
        self.values[key] = value

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


def later_try_scope(monkeypatch: pytest.MonkeyPatch, store: MemoryStore) -> None:
    """Make the hook see a running task's second try whose state store is ``store``."""
    scope = TaskScope(store=store, dag_id="d", run_id="r", task_id="t", map_index=-1, try_number=2)
    monkeypatch.setattr(TaskScope, "current", classmethod(lambda cls: scope))


@pytest.mark.parametrize(
    "found",
    [
        pytest.param("a string, not a record", id="not-a-dict"),
        pytest.param(["sending"], id="a-list"),
        pytest.param({"v": 99, "kind": "call", "state": "not-acted", "try": 1}, id="unknown-version"),
        pytest.param({"v": 1, "state": "not-acted", "try": 1}, id="old-format"),
        pytest.param(
            {"v": 2, "kind": "call", "state": "not-acted", "try": 1, "enc": "fernet", "data": "x"}, id="damaged"
        ),
    ],
)
def test_an_unreadable_ledger_entry_counts_as_unknown_not_as_never_sent(
    make_conn: Callable[..., str], emulator: SignzyEmulator, monkeypatch: pytest.MonkeyPatch, found: object
) -> None:
    """Issue 16, case 6: a record that is not a dict counted as "never sent" (fail open), and the record's
    version was written but never checked. Now either is unknown: nothing is sent, the task fails."""
    make_conn()
    later_try_scope(monkeypatch, MemoryStore(preset=found))
    with SignzyHook() as hook, pytest.raises(SignzyOutcomeUnknownError) as raised:
        hook.request("POST", IDENTITIES, json={"type": "individualPan"})
    assert "cannot be read" in str(raised.value)
    assert emulator.state.snapshot()["requests"].get("POST /api/v2/patrons/{userId}/identities", 0) == 0


def _records(
    store: MemoryStore, *, key: str | None = "8J3GfFkzrV7wP0Qh6h2y4dNwU9h2nE1x3c7qQm5a1sA=", limit: int = 4000
):
    import logging

    from airflow_provider_signzy.ledger import Records
    from airflow_provider_signzy.utils.fernet_cipher import SignzyCipher

    scope = TaskScope(store=store, dag_id="d", run_id="r", task_id="t", map_index=-1, try_number=1)
    cipher = (
        SignzyCipher.for_connection({"xcom_fernet_key": key} if key else {}, "c")
        if key
        else SignzyCipher(None, key_source="none")
    )
    return Records(scope, cipher, logging.getLogger("test"), limit=limit)


def test_a_record_over_the_store_limit_is_split_into_parts_and_read_back_whole() -> None:
    import json
    import os

    store = MemoryStore()
    records = _records(store, limit=4000)
    content = {"answer": {"body": os.urandom(6000).hex()}, "status": 200}
    records.write("signzy-call:k", "call", {"state": "succeeded", "try": 1}, content)
    assert len(store.values) > 2  # the record and its parts
    assert all(len(json.dumps(v)) <= 4000 for v in store.values.values())
    assert store.values["signzy-call:k"]["parts"] == len(store.values) - 1  # type: ignore[index]
    read = records.read("signzy-call:k", "call")
    assert read is not None
    assert read["content"] == content
    assert read["state"] == "succeeded"


def test_a_part_that_does_not_match_its_record_makes_it_unreadable() -> None:
    import os

    from airflow_provider_signzy.ledger import UnreadableRecord

    store = MemoryStore()
    records = _records(store, limit=4000)
    records.write("signzy-call:k", "call", {"state": "succeeded", "try": 1}, {"answer": os.urandom(6000).hex()})
    first_parts = {k: v for k, v in store.values.items() if ":p" in k}
    records.write("signzy-call:k", "call", {"state": "succeeded", "try": 2}, {"answer": os.urandom(6000).hex()})
    store.values.update(first_parts)  # a try that died after writing the parts of another record
    with pytest.raises(UnreadableRecord, match="parts do not match"):
        records.read("signzy-call:k", "call")
    del store.values["signzy-call:k:p1"]
    with pytest.raises(UnreadableRecord, match="part 1 is missing"):
        records.read("signzy-call:k", "call")


def test_records_are_compressed_and_encrypted_and_without_a_key_hold_no_answer() -> None:
    store = MemoryStore()
    records = _records(store)
    records.write("signzy-call:k", "call", {"state": "succeeded", "try": 1}, {"answer": {"body": "pii.person@x.in"}})
    assert store.values["signzy-call:k"]["enc"] == "fernet"  # type: ignore[index]
    assert "pii.person" not in str(store.values)
    plain = MemoryStore()
    from airflow_provider_signzy.ledger import BatchLedger

    batch = BatchLedger(_records(plain, key=None), "scope", None)
    batch.write(0, {"item:1": {"state": "succeeded", "answer": {"body": "pii.person@x.in"}}})
    [(key, value)] = plain.values.items()
    assert (value["enc"], value["kind"], value["items"]) == ("zlib", "window", 1)  # type: ignore[index]
    assert "pii.person" not in str(value)
    assert batch.records.read(key, "window")["content"] == {"item:1": {"state": "succeeded", "answer": None}}  # type: ignore[index]
