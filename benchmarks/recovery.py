"""4. Token refresh and retry costs: an expired token to a successful call (one re-login), and the total
wait of the standard retry plan against the configured backoff."""

from __future__ import annotations

import statistics
import time

from common import PATRON_ID, Row, airflow_home, set_connections

from airflow_provider_signzy.emulator.process import emulator_process

REPEATS = 15
INITIAL, MAXIMUM, ATTEMPTS = 0.2, 5.0, 4


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def main() -> None:
    airflow_home()
    with emulator_process() as emulator:
        set_connections(emulator.url, backoff_initial=INITIAL, backoff_max=MAXIMUM, max_attempts=ATTEMPTS)
        from airflow_provider_signzy.hooks.signzy import SignzyHook
        from airflow_provider_signzy.utils.retry_policy import planned_wait_bounds

        path = f"/api/v2/patrons/{PATRON_ID}/identities"
        fresh_costs, recoveries, relogins = [], [], []
        for _ in range(REPEATS):
            with SignzyHook() as hook:
                fresh_costs.append(timed(lambda hook=hook: hook.request("GET", path, token=hook.login(ttl=60))))
                token = hook.login(ttl=60)
                emulator.advance_clock(61)  # every token so far is now expired
                before = emulator.state()["logins"]
                recoveries.append(timed(lambda hook=hook, token=token: hook.request("GET", path, token=token)))
                relogins.append(emulator.state()["logins"] - before)
        recovery, fresh = statistics.median(recoveries), statistics.median(fresh_costs)
        Row(
            "expired token -> successful call (median)",
            f"{recovery * 1000:.1f} ms",
            f"{fresh * 1000:.1f} ms (a login + a call)",
            f"{recovery / fresh:.2f}",
            "exactly 1 re-login",
            set(relogins) == {1},
        ).emit()

        low, high = planned_wait_bounds(initial=INITIAL, maximum=MAXIMUM, retries=ATTEMPTS - 1)
        waits = []
        with SignzyHook() as hook:
            token = hook.login()
            baseline = statistics.median(timed(lambda: hook.request("GET", path, token=token)) for _ in range(20))
            for _ in range(5):
                emulator.add_faults({"path": path, "faults": [{"status": 503}] * (ATTEMPTS - 1)})
                waits.append(timed(lambda: hook.request("GET", path, token=token)) - ATTEMPTS * baseline)
            retry_after = []
            for _ in range(3):
                emulator.add_faults({"path": path, "faults": [{"status": 429, "retry_after": 1}]})
                retry_after.append(timed(lambda: hook.request("GET", path, token=token)) - 2 * baseline)
        wait = max(waits)
        Row(
            f"retry wait, {ATTEMPTS - 1} x 503 (worst of 5)",
            f"{wait:.2f} s",
            f"plan {low:.2f}-{high:.2f} s",
            f"{wait / high:.2f}",
            "<= 1.10 x plan",
            low * 0.99 <= wait <= high * 1.10,
        ).emit()
        worst = max(retry_after)
        Row(
            "retry wait, 429 with Retry-After: 1 (worst of 3)",
            f"{worst:.2f} s",
            "plan 1.00 s",
            f"{worst / 1.0:.2f}",
            "1.00-1.10",
            1.0 * 0.99 <= worst <= 1.10,
        ).emit()


if __name__ == "__main__":
    main()
