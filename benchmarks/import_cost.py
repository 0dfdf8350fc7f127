"""3. Import cost at DAG parse time: importing the operators module in a fresh interpreter that has already
imported airflow.sdk, vs. importing airflow.providers.http.operators.http the same way."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

from common import Row, airflow_home

RUNS = 9
PROBE = """
import json, os, time, resource
import airflow.sdk
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
before_rss = rss(); started = time.perf_counter()
import {module}
print(json.dumps({{"seconds": time.perf_counter() - started, "rss": rss() - before_rss}}))
"""
HEAVY_PROBE = """
import sys, airflow.sdk
before = set(sys.modules)
import airflow_provider_signzy.operators.signzy
new = set(sys.modules) - before
print(sorted(m for m in new if m.startswith("cryptography") or m.startswith("airflow_provider_signzy.emulator")))
"""
MODULES = {
    "ours": "airflow_provider_signzy.operators.signzy",
    "http": "airflow.providers.http.operators.http",
}


def probe(module: str) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module)],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    airflow_home()
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in MODULES}
    for _ in range(RUNS):
        for name, module in MODULES.items():  # interleaved: noise hits both alike
            samples[name].append(probe(module))
    seconds = {n: statistics.median(s["seconds"] for s in samples[n]) for n in MODULES}
    memory = {n: statistics.median(s["rss"] for s in samples[n]) for n in MODULES}
    Row(
        f"import time of the operators module (median of {RUNS})",
        f"{seconds['ours'] * 1000:.0f} ms",
        f"{seconds['http'] * 1000:.0f} ms (HttpOperator)",
        f"{seconds['ours'] / seconds['http']:.2f}",
        "<= 1.0",
        seconds["ours"] <= seconds["http"],
    ).emit()
    Row(
        f"memory added by that import (median of {RUNS})",
        f"{memory['ours'] / 2**20:.1f} MiB",
        f"{memory['http'] / 2**20:.1f} MiB (HttpOperator)",
        f"{memory['ours'] / max(memory['http'], 1):.2f}",
        "<= 1.0",
        memory["ours"] <= memory["http"],
    ).emit()
    heavy = subprocess.run(
        [sys.executable, "-c", HEAVY_PROBE], capture_output=True, text=True, env=os.environ.copy(), check=True
    ).stdout.strip()
    Row("cryptography or the emulator imported at parse time", heavy or "[]", "-", "-", "none", heavy == "[]").emit()


if __name__ == "__main__":
    main()
