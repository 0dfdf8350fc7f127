"""Runs the suite on each Airflow version and prints one line of counts per version.

Usage: ``python scripts/matrix.py 3.0.6 3.3.2`` (``make matrix`` passes MATRIX_VERSIONS). Each version is
``make suite AIRFLOW_VERSION=<v>`` (its own virtualenv, reused), with ``PYTEST_ARGS`` passed through.
Each version's full output goes to ``.matrix/airflow-<v>.log``; the lines are also written to
``.matrix/summary.txt``. Exits 1 if any version failed, errored, or ran no test at all (pytest's exit 5).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / ".matrix"
# pytest's closing line, e.g. "==== 80 passed, 3 skipped, 1 warning in 95.2s ====".
SUMMARY = re.compile(r"^=+ (?P<body>.*\d+ (?:passed|failed|skipped|error|errors|deselected).*) in [\d.]+s.* =+$")
COUNT = re.compile(r"(\d+) (passed|failed|skipped|errors?|deselected|xfailed|xpassed)")
INSTALL_DONE = ">> Installing airflow-provider-signzy from this tree"


@dataclass
class Result:
    version: str
    returncode: int
    counts: dict[str, int]
    install_seconds: float | None
    total_seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.counts.get("failed", 0) == 0 and self.counts.get("passed", 0) > 0

    def line(self) -> str:
        c = self.counts
        errors = c.get("error", 0) + c.get("errors", 0)
        text = f"airflow {self.version}: {c.get('passed', 0)} passed, {c.get('failed', 0) + errors} failed, "
        text += f"{c.get('skipped', 0)} skipped"
        if c.get("deselected"):
            text += f", {c['deselected']} deselected"
        timing = f"{self.total_seconds:.0f} s"
        if self.install_seconds is not None:
            timing += f", of which virtualenv {self.install_seconds:.0f} s"
        status = "" if self.ok else f"  FAILED (make exit {self.returncode}; see .matrix/airflow-{self.version}.log)"
        if self.returncode != 0 and not c:
            status = f"  FAILED before pytest reported (make exit {self.returncode}; see the log)"
        return f"{text} ({timing}){status}"


def run(version: str) -> Result:
    log_path = OUT / f"airflow-{version}.log"
    start = time.monotonic()
    install_seconds: float | None = None
    counts: dict[str, int] = {}
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            ["make", "--no-print-directory", "suite", f"AIRFLOW_VERSION={version}"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTEST_ARGS": os.environ.get("PYTEST_ARGS", "")},
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            if line.startswith(INSTALL_DONE) and install_seconds is None:
                install_seconds = time.monotonic() - start
            match = SUMMARY.match(line.strip())
            if match:
                counts = {kind: int(n) for n, kind in COUNT.findall(match["body"])}
        returncode = proc.wait()
    return Result(version, returncode, counts, install_seconds, time.monotonic() - start)


def main(versions: list[str]) -> int:
    if not versions:
        print("usage: matrix.py VERSION...", file=sys.stderr)
        return 2
    OUT.mkdir(exist_ok=True)
    pytest_args = os.environ.get("PYTEST_ARGS", "")
    print(f">> Matrix over Airflow {' '.join(versions)}" + (f" (pytest {pytest_args})" if pytest_args else ""))
    results = []
    for version in versions:
        print(f">> Airflow {version}: make suite (log: .matrix/airflow-{version}.log)", flush=True)
        result = run(version)
        results.append(result)
        print(result.line(), flush=True)
    lines = [r.line() for r in results]
    (OUT / "summary.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(["", ">> Matrix summary", *lines]))
    total = {k: sum(r.counts.get(k, 0) for r in results) for k in ("passed", "failed", "error", "errors", "skipped")}
    failed = total["failed"] + total["error"] + total["errors"]
    print(f"matrix: {total['passed']} passed, {failed} failed, {total['skipped']} skipped")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
