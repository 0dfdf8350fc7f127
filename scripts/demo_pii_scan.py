"""`make demo`'s scan for personal data in the clear, run with the demo's Airflow environment.

Reads ``{"values": [...], "console_file": "...", "log_root": "..."}`` as JSON on stdin, runs
``tests/pii_scan.py``'s :func:`scan` (every metadata-DB table but what the DAG's author wrote, every log
file, the console text) and prints the findings as a JSON list of ``{"value": ..., "where": ...}``.
A subprocess: the scanner reads the DB of ``airflow.settings``, which must be the demo's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from pii_scan import scan  # found through the path set above


def main() -> int:
    request = json.load(sys.stdin)
    console_file = request.get("console_file")
    console = Path(console_file).read_text(errors="replace") if console_file else ""
    findings = scan(request["values"], console=console, log_root=request["log_root"])
    print(json.dumps([{"value": f.value, "where": f.where} for f in findings]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
