"""2. Per-call overhead: authenticated GETs through SignzyHook.request vs. a bare requests.Session with the
header set by hand vs. HttpHook.run, against one emulator process, in interleaved rounds.

The ratio is the median of per-round ratios (rounds of 100 calls, order rotated), which holds on a shared
machine where the totals drift by 10% from run to run."""

from __future__ import annotations

import statistics
import time

from common import PATRON_ID, Row, airflow_home, set_connections

from airflow_provider_signzy.emulator.process import emulator_process

CALLS = 2000
ROUNDS = 20


def emulator_capacity(url: str, path: str, token: str) -> float:
    """Authenticated calls per second the emulator serves to one lean keep-alive client (http.client):
    the emulator must never be what limits a benchmark."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port)
    started = time.perf_counter()
    for _ in range(CALLS):
        connection.request("GET", path, headers={"Authorization": token})
        answer = connection.getresponse()
        answer.read()
        assert answer.status == 200
    seconds = time.perf_counter() - started
    connection.close()
    return CALLS / seconds


def main() -> None:
    airflow_home()
    with emulator_process() as emulator:
        url = emulator.url
        set_connections(url)
        import requests
        from airflow.providers.http.hooks.http import HttpHook

        from airflow_provider_signzy.hooks.signzy import SignzyHook

        signzy = SignzyHook()
        token = signzy.login()
        path = f"/api/v2/patrons/{PATRON_ID}/identities"
        bare = requests.Session()
        headers = {"Authorization": token.id}
        http_hook = HttpHook(method="GET", http_conn_id="signzy_http_plain")

        def via_hook(n: int) -> None:
            for _ in range(n):
                signzy.request("GET", path, token=token)

        def via_bare(n: int) -> None:
            for _ in range(n):
                bare.get(url + path, headers=headers, timeout=30).raise_for_status()

        def via_http_hook(n: int) -> None:
            for _ in range(n):
                http_hook.run(path, headers=headers)

        contenders = {"hook": via_hook, "bare": via_bare, "http": via_http_hook}
        for run in contenders.values():  # warm up connections and code paths
            run(20)
        wall: dict[str, list[float]] = {name: [] for name in contenders}
        cpu = dict.fromkeys(contenders, 0.0)
        names = list(contenders)
        for round_number in range(ROUNDS):
            for name in names[round_number % 3 :] + names[: round_number % 3]:  # rotate the order
                started, cpu_started = time.perf_counter(), time.process_time()
                contenders[name](CALLS // ROUNDS)
                wall[name].append(time.perf_counter() - started)
                cpu[name] += time.process_time() - cpu_started
        emulator_rate = emulator_capacity(url, path, token.id)
        signzy.logout(token)
    rate = {name: CALLS / sum(seconds) for name, seconds in wall.items()}
    # Rounds run back to back, so each round's ratio compares like with like on a noisy machine.
    vs_bare = statistics.median(b / h for h, b in zip(wall["hook"], wall["bare"], strict=True))
    vs_http = statistics.median(t / h for h, t in zip(wall["hook"], wall["http"], strict=True))
    Row(
        "emulator: authenticated calls/s to one keep-alive client",
        f"{emulator_rate:.0f}/s",
        "-",
        "-",
        ">= 1000",
        emulator_rate >= 1000,
    ).emit()
    cpu_us = {name: seconds / CALLS * 1e6 for name, seconds in cpu.items()}
    Row(
        f"calls/s, {CALLS} GETs: hook vs bare requests",
        f"{rate['hook']:.0f}/s",
        f"{rate['bare']:.0f}/s",
        f"{vs_bare:.2f}",
        ">= 0.90",
        vs_bare >= 0.90,
    ).emit()
    Row(
        f"calls/s, {CALLS} GETs: hook vs HttpHook.run",
        f"{rate['hook']:.0f}/s",
        f"{rate['http']:.0f}/s",
        f"{vs_http:.2f}",
        "> 1.00",
        vs_http > 1.0,
    ).emit()
    Row(
        "client CPU per call: hook vs bare requests",
        f"{cpu_us['hook']:.0f} us",
        f"{cpu_us['bare']:.0f} us",
        f"{cpu_us['hook'] / cpu_us['bare']:.2f}",
        "-",
        None,
    ).emit()


if __name__ == "__main__":
    main()
