"""`make bench`: every benchmark in its own fresh interpreter, then one markdown table.

This machine is shared and noisy: absolute times vary from run to run, ratios hold.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PARTS = [
    "dag_round_trips.py",
    "per_call.py",
    "import_cost.py",
    "recovery.py",
    "ledger_cost.py",
    "batch.py",
    "sealing_cost.py",
    "products.py",
]


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from importlib.metadata import version

    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"Airflow {version('apache-airflow')}, requests {version('requests')}"
    )


def main() -> int:
    rows = []
    started = time.monotonic()
    for part in PARTS:
        print(f">> {part}", file=sys.stderr, flush=True)
        result = subprocess.run([sys.executable, str(HERE / part)], capture_output=True, text=True, cwd=HERE)
        if result.returncode != 0:
            print(result.stdout[-3000:], result.stderr[-3000:], file=sys.stderr)
            return 2
        rows += [json.loads(line[4:]) for line in result.stdout.splitlines() if line.startswith("ROW ")]
    lines = [
        f"Machine: {machine()}. Run: `make bench` ({time.monotonic() - started:.0f} s).",
        "",
        "| measure | this provider | alternative | ratio | goal | met |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        met = {True: "yes", False: "**no**", None: "-"}[row["met"]]
        lines.append(
            f"| {row['measure']} | {row['ours']} | {row['alternative']} | {row['ratio']} | {row['goal']} | {met} |"
        )
    table = "\n".join(lines)
    print(table)
    out = HERE.parent / ".bench"
    out.mkdir(exist_ok=True)
    (out / "results.md").write_text(table + "\n")
    return 0 if all(row["met"] is not False for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
