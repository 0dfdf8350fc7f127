"""SignzyBatch outside a task (no call ledger): how it stops, and what it counts (issue 16, cases 5 and 6)."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_provider_signzy.batch import SignzyBatch, SignzyBatchInterruptedError, SignzyBatchStoppedError
from airflow_provider_signzy.emulator import SignzyEmulator
from airflow_provider_signzy.hooks.signzy import SignzyHook
from airflow_provider_signzy.utils.call_pacing import CallPacer, CallsStopped

IDENTITIES = "/api/v2/patrons/{patron_id}/identities"
POSTS = "POST /api/v2/patrons/{userId}/identities"


class Lines:
    """A logger that keeps what it was given, formatted."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def _keep(self, message: str, *args: Any) -> None:
        self.lines.append(message % args if args else message)

    info = warning = debug = error = _keep


def bodies(n: int) -> list[dict[str, Any]]:
    return [{"type": "individualPan", "email": f"stop{i}@kyc.in"} for i in range(n)]


@pytest.fixture
def sigterm_kept(emulator: SignzyEmulator) -> Iterator[list[int]]:
    """A SIGTERM handler of the test's own (Airflow's stand-in) that only notes the POSTs Signzy had seen by
    then: the process stays up."""
    seen: list[int] = []

    def note(signum: int, frame: Any) -> None:
        seen.append(emulator.state.snapshot()["requests"].get(POSTS, 0))

    previous = signal.signal(signal.SIGTERM, note)
    try:
        yield seen
    finally:
        signal.signal(signal.SIGTERM, previous)


def sigterm_after(seconds: float) -> None:
    threading.Timer(seconds, os.kill, args=(os.getpid(), signal.SIGTERM)).start()


@pytest.mark.parametrize("waiting_in", ["pacer", "back-off"])
def test_threads_waiting_in_the_pacer_or_a_back_off_send_nothing_after_sigterm(
    make_conn: Callable[..., str], emulator: SignzyEmulator, sigterm_kept: list[int], waiting_in: str
) -> None:
    """Case 6: threads waiting for their turn (a rate cap) or sleeping in the shared back-off (a 429 with
    Retry-After: 3) still sent after SIGTERM. Now SIGTERM closes the batch's gate: they wake and send nothing."""
    make_conn(backoff_initial=0.01, backoff_max=5)
    if waiting_in == "pacer":
        batch_kwargs: dict[str, Any] = {"max_calls_per_second": 4}
    else:
        emulator.faults.add({"path": "/api/v2/patrons/*/identities", "faults": [{"status": 429, "retry_after": 3}]})
        batch_kwargs = {}
    with SignzyHook() as hook:
        hook.get_token()
        batch = SignzyBatch(hook, endpoint=IDENTITIES, max_concurrency=4, **batch_kwargs)
        sigterm_after(0.6)
        started = time.monotonic()
        with pytest.raises(SignzyBatchStoppedError) as raised:
            batch.run(bodies(30))
        elapsed = time.monotonic() - started
    [sent_by_sigterm] = sigterm_kept  # the handler that was there still ran, once
    assert elapsed < 2.5
    sent = emulator.state.snapshot()["requests"].get(POSTS, 0)
    assert sent <= 8  # not 30
    # Nothing left after SIGTERM but a call already on the wire then (the pacer lets one out every 0.25 s).
    assert sent - sent_by_sigterm <= (1 if waiting_in == "pacer" else 0)
    assert "asked to stop (SIGTERM)" in str(raised.value)
    not_sent = [r for r in raised.value.results if (r["error"] or "").startswith("not sent")]
    assert len(not_sent) >= 30 - sent
    assert all(r["outcome"] == "refused" for r in not_sent)
    acted_on = [r for r in raised.value.results if r["outcome"] in ("succeeded", "unknown")]
    if acted_on:  # no ledger outside a task: a retry would pay again for what Signzy acted on
        assert isinstance(raised.value, SignzyBatchInterruptedError)
        assert "does not retry" in str(raised.value)
    else:  # a 429 was all Signzy saw: nothing acted on, so Airflow's retries may run
        assert not isinstance(raised.value, SignzyBatchInterruptedError)


def test_the_batch_does_not_count_its_own_login_as_a_retry(
    make_conn: Callable[..., str], emulator: SignzyEmulator
) -> None:
    """Case 6: the progress line counted the batch's own login as a retry ("1 retries")."""
    make_conn()
    log = Lines()
    with SignzyHook() as hook:
        results = SignzyBatch(hook, endpoint=IDENTITIES, log=log).run(bodies(3))
    assert [r["outcome"] for r in results] == ["succeeded"] * 3
    [final] = [line for line in log.lines if line.startswith("Signzy batch finished")]
    assert " 0 retries" in final


def test_the_circuit_breaker_closes_the_gate_after_calls_in_a_row_that_could_not_reach_signzy() -> None:
    pacer = CallPacer(breaker=3)
    pacer.call_done(unreachable=True)
    pacer.call_done(unreachable=True)
    pacer.call_done(unreachable=False)  # Signzy answered: the count starts again
    pacer.call_done(unreachable=True)
    pacer.call_done(unreachable=True)
    assert not pacer.closed
    pacer.call_done(unreachable=True)
    assert pacer.closed
    assert "Signzy was unreachable" in (pacer.stopped or "")
    with pytest.raises(CallsStopped):
        pacer.before_call()
    with pytest.raises(CallsStopped):
        pacer.sleep(5)


def test_closing_the_gate_wakes_a_thread_in_a_back_off() -> None:
    pacer = CallPacer()
    woke: list[float] = []

    def back_off() -> None:
        started = time.monotonic()
        try:
            pacer.sleep(10)
        except CallsStopped:
            woke.append(time.monotonic() - started)

    thread = threading.Thread(target=back_off)
    thread.start()
    time.sleep(0.2)
    pacer.close("stop")
    thread.join(2)
    assert woke
    assert woke[0] < 1
