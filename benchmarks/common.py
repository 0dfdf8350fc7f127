"""Shared parts of the benchmarks: a throw-away Airflow home, an emulator process, result rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

BIN = Path(sys.executable).parent
PATRON, API_KEY, PATRON_ID = "demo", "demo-api-key-0123456789", "patron-demo-0001"


@dataclass
class Row:
    """One line of the results table; ``met`` is None for figures that have no goal."""

    measure: str
    ours: str
    alternative: str
    ratio: str
    goal: str
    met: bool | None

    def emit(self) -> None:
        print("ROW " + json.dumps(asdict(self)), flush=True)


def airflow_home() -> Path:
    """Point Airflow at a throw-away home; call before importing airflow."""
    home = Path(tempfile.mkdtemp(prefix="signzy-bench-"))
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__FERNET_KEY": "8J3GfFkzrV7wP0Qh6h2y4dNwU9h2nE1x3c7qQm5a1sA=",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        }
    )
    return home


def set_connections(url: str, **extra: object) -> None:
    os.environ["AIRFLOW_CONN_SIGNZY_DEFAULT"] = json.dumps(
        {"conn_type": "signzy", "host": url, "login": PATRON, "password": API_KEY, "extra": extra}
    )
    os.environ["AIRFLOW_CONN_SIGNZY_HTTP"] = json.dumps(
        {"conn_type": "http", "host": url, "login": PATRON, "password": API_KEY}
    )
    # No login: HttpHook would otherwise replace a hand-set Authorization header with basic auth.
    os.environ["AIRFLOW_CONN_SIGNZY_HTTP_PLAIN"] = json.dumps({"conn_type": "http", "host": url})


@contextmanager
def emulator_process() -> Iterator[str]:
    """The emulator in its own process (its own core), as in a real deployment; yields its URL."""
    port_file = Path(tempfile.mkdtemp()) / "port"
    process = subprocess.Popen(
        [str(BIN / "signzy-emulator"), "--port", "0", "--port-file", str(port_file)], stdout=subprocess.DEVNULL
    )
    try:
        for _ in range(100):
            if port_file.exists() and port_file.read_text():
                break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port_file.read_text()}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def emulator(url: str, path: str, body: dict | None = None, method: str | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url + path, data=data, method=method or ("POST" if data is not None else "GET"))
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read() or b"{}")
