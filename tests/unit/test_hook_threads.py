"""One SignzyHook shared by many threads: a session each, one re-login for all, over real HTTP."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from airflow_provider_signzy.emulator import SignzyEmulator
from airflow_provider_signzy.hooks.signzy import SignzyHook

IDENTITIES = "/api/v2/patrons/patron-demo-0001/identities"


def test_threads_share_one_hook_with_a_session_each(make_conn: Callable[..., str], emulator: SignzyEmulator) -> None:
    make_conn()
    with SignzyHook() as hook:
        token = hook.login(ttl=600)
        all_at_once = threading.Barrier(8, timeout=10)

        def session_of_a_thread(_: int) -> int:
            all_at_once.wait()  # eight threads for sure, not one thread doing all eight
            return id(hook.session)

        with ThreadPoolExecutor(8) as pool:
            sessions = list(pool.map(session_of_a_thread, range(8)))
            statuses = list(pool.map(lambda _: hook.call("GET", IDENTITIES, token=token).status_code, range(80)))
        hook.logout(token)
    assert statuses == [200] * 80
    assert len(set(sessions)) == 8  # a requests.Session per thread, not one shared
    assert emulator.state.snapshot()["live_tokens"] == 0


def test_threads_refused_at_once_log_in_again_once(make_conn: Callable[..., str], emulator: SignzyEmulator) -> None:
    make_conn()
    with SignzyHook() as hook:
        token = hook.login(ttl=60)
        emulator.state.advance_clock(61)  # the run's token expires while 8 threads are about to use it
        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda _: hook.call("GET", IDENTITIES, token=token).status_code, range(16)))
    assert statuses == [200] * 16
    state = emulator.state.snapshot()
    assert state["logins"] == 2  # the run's token, then one replacement shared by every thread
    assert state["live_tokens"] == 0  # the hook revoked its replacement on close
