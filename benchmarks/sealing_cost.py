"""7. What sealing costs a call: sealing and opening a typical identity answer, and a paid POST with and without it.

A typical answer is the emulator's identity for a ~1 KB body of synthetic personal data (name, PAN, date
of birth, address, phone, Aadhaar, image URLs). ``ResultSealer.seal`` uses Airflow's ``[core] fernet_key``
as the operators do; ``unseal`` is the public function (it looks the connection's keys up each time).
Then, against one emulator process, rounds alternate between authenticated POSTs through ``SignzyHook``
(outside a task: no call ledger) whose answers are parsed, and the same POSTs whose answers are also
sealed, as ``SignzyOperator`` does before returning them to XCom (a seal there costs more than in a tight
loop: the caches are cold after the call). The ratio is the median of per-round
ratios, which holds on a shared machine where the totals drift from run to run.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from common import PATRON_ID, Row, airflow_home, set_connections

from airflow_provider_signzy.emulator.process import emulator_process

SEALS = 2000
ROUNDS, PER_ROUND = 40, 50


def identity_body(n: int) -> dict[str, Any]:
    """A synthetic customer (never a real PAN or Aadhaar number): about 1 KB of JSON."""
    return {
        "type": "individualPan",
        "email": f"bench.customer.{n:06d}@example.com",
        "callbackUrl": "https://example.com/signzy/callback?source=nightly-kyc-batch",
        "name": f"Benchmark Customer Number {n:06d} Kumar-Sharma",
        "pan": f"ABCPK{n % 10000:04d}Z",
        "dob": "1987-04-23",
        "phone": f"+91 98{n % 100000000:08d}",
        "aadhaar": f"9999 {n % 10000:04d} {(n * 7) % 10000:04d}",
        "address": (
            f"Flat {n % 900 + 100}, Tower B, Synthetic Residency, 14th Cross Road, Indiranagar 2nd Stage, "
            "Bengaluru, Karnataka 560038, India"
        ),
        "images": [
            f"https://storage.example.com/kyc/{n:06d}/pan-card-front-{i}.jpg?sig=0123456789abcdef0123456789abcdef"
            for i in range(4)
        ],
    }


def median_us(timings_ns: list[int]) -> float:
    return statistics.median(timings_ns) / 1000


def main() -> None:
    airflow_home()
    with emulator_process() as emulator:
        set_connections(emulator.url)
        import json

        from airflow_provider_signzy.hooks.signzy import SignzyHook
        from airflow_provider_signzy.privacy.sealing import ResultSealer, unseal

        sealer = ResultSealer.for_connection("signzy_default", {})
        assert sealer.seals
        path = f"/api/v2/patrons/{PATRON_ID}/identities"
        with SignzyHook() as hook:
            answer = hook.request("POST", path, json=identity_body(0)).json()
            size = len(json.dumps(answer, separators=(",", ":")))
            assert answer.get("pan"), "the emulator must echo the personal fields, as Signzy does"
            assert 800 <= size <= 1400, size

            # (1) seal and unseal one answer, timed one by one.
            seal_ns, unseal_ns = [], []
            sealed = sealer.seal(answer)
            assert unseal(sealed) == answer
            for _ in range(SEALS):
                started = time.perf_counter_ns()
                sealed = sealer.seal(answer)
                seal_ns.append(time.perf_counter_ns() - started)
                started = time.perf_counter_ns()
                unseal(sealed)
                unseal_ns.append(time.perf_counter_ns() - started)
            sealed_size = len(json.dumps(sealed, separators=(",", ":")))

            # (2) authenticated paid POSTs, answers parsed; the same with the answers sealed too.
            counter = iter(range(1, 10**9))

            in_loop_ns: list[int] = []

            def calls(n: int, *, seal: bool) -> None:
                for _ in range(n):
                    value = hook.request("POST", path, json=identity_body(next(counter))).json()
                    if seal:
                        started = time.perf_counter_ns()
                        sealer.seal(value)
                        in_loop_ns.append(time.perf_counter_ns() - started)

            calls(20, seal=False)  # warm up the session and code paths
            calls(20, seal=True)
            plain: list[float] = []
            with_seal: list[float] = []
            in_loop_ns.clear()
            for round_number in range(ROUNDS):
                for seal in (round_number % 2 == 0, round_number % 2 == 1):  # alternate which goes first
                    started = time.perf_counter()
                    calls(PER_ROUND, seal=seal)
                    (with_seal if seal else plain).append((time.perf_counter() - started) / PER_ROUND)
        state = emulator.state()
    assert state["identities_created"] == 1 + 40 + 2 * ROUNDS * PER_ROUND, state["identities_created"]
    seal_us, unseal_us = median_us(seal_ns), median_us(unseal_ns)
    call_ms, sealed_call_ms = statistics.median(plain) * 1000, statistics.median(with_seal) * 1000
    ratio = statistics.median(s / p for p, s in zip(plain, with_seal, strict=True))
    Row(
        f"seal one identity answer ({size} B JSON -> {sealed_size} B sealed; median of {SEALS})",
        f"{seal_us:.0f} us",
        "-",
        "-",
        "-",
        None,
    ).emit()
    Row(f"unseal() it again (median of {SEALS})", f"{unseal_us:.0f} us", "-", "-", "-", None).emit()
    Row(
        f"seal one answer between POSTs (caches cold; median of {len(in_loop_ns)})",
        f"{median_us(in_loop_ns):.0f} us",
        "-",
        "-",
        "-",
        None,
    ).emit()
    # The emulator answers in well under a millisecond: the worst case for a ratio. Signzy's own KYC calls
    # take 100 ms and more, where the same seal is a thousandth of the call.
    Row(
        f"paid POST to the local emulator through SignzyHook + seal vs without (median of {ROUNDS} rounds x "
        f"{PER_ROUND})",
        f"{sealed_call_ms:.2f} ms",
        f"{call_ms:.2f} ms",
        f"{ratio:.3f}",
        "<= 1.20",
        ratio <= 1.20,
    ).emit()
    seal_ms = median_us(in_loop_ns) / 1000
    Row(
        "the same seal on a 100 ms Signzy call (the fastest KYC calls; computed)",
        f"{100 + seal_ms:.3f} ms",
        "100 ms",
        f"{(100 + seal_ms) / 100:.4f}",
        "<= 1.01",
        (100 + seal_ms) / 100 <= 1.01,
    ).emit()


if __name__ == "__main__":
    main()
