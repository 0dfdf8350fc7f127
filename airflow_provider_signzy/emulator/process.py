"""The emulator in its own process (as a deployment runs it), and a client for its control endpoints.

Standard library only: scripts and users' tests can drive an emulator without the provider's hook.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


class EmulatorControl:
    """Calls ``/_emulator/...`` on a running emulator."""

    def __init__(self, url: str) -> None:
        self.url = url

    def call(self, path: str, body: Any = None, *, method: str | None = None) -> Any:
        """GET ``path``, or POST ``body`` as JSON to it (or ``method``); returns the parsed answer."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - the emulator's own http:// URL
            self.url + path,
            data=data,
            method=method or ("GET" if data is None else "POST"),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - as above
            return json.loads(answer.read() or b"{}")

    def state(self) -> dict[str, Any]:
        return dict(self.call("/_emulator/state"))

    def reset(self) -> None:
        self.call("/_emulator/reset", {})

    def add_faults(self, spec: dict[str, Any] | list[dict[str, Any]]) -> None:
        self.call("/_emulator/faults", spec)

    def clear_faults(self) -> None:
        """Drop every fault rule; the state (tokens, identities, counters) stays."""
        self.call("/_emulator/faults", method="DELETE")

    def advance_clock(self, seconds: float) -> None:
        self.call("/_emulator/clock", {"advance": seconds})

    def rate_limit(self, per_second: float, *, burst: float | None = None, status: int = 429) -> None:
        """Limit each patron to ``per_second`` calls (see :mod:`airflow_provider_signzy.emulator.rate_limit`)."""
        self.call("/_emulator/rate_limit", {"per_second": per_second, "burst": burst, "status": status})

    def set_identity_status(self, identity_id: str, status: str) -> dict[str, Any]:
        """Move an identity's status now, as a person's action would (``*``: every identity)."""
        return dict(self.call(f"/_emulator/identities/{identity_id}/status", {"status": status}))

    def identities(self) -> list[dict[str, Any]]:
        """Every identity the emulator holds (since its start or last reset), personal fields included."""
        return list(self.call("/_emulator/identities")["identities"])

    def set_latency(self, latency: dict[str, float] | float) -> None:
        """Seconds before answering snoops, product resources and uploads: by product name (``persist``: uploads,
        ``*``: the rest), or one number for all."""
        self.call("/_emulator/latency", latency)

    def clear_latency(self) -> None:
        self.call("/_emulator/latency", method="DELETE")

    def snoops(self) -> list[dict[str, Any]]:
        """The latest snoops (product, itemId, time), oldest first."""
        return list(self.call("/_emulator/snoops")["snoops"])

    def auto_status(self, status: str | None, after: float = 0.0) -> None:
        """Identities created from now on move to ``status`` ``after`` seconds later (None: off)."""
        self.call("/_emulator/auto-status", {"status": status, "after": after} if status else {})


@contextmanager
def emulator_process(*args: str, stderr: IO[bytes] | None = None) -> Iterator[EmulatorControl]:
    """Start ``signzy-emulator --port 0 *args`` and yield a control client; stop it on exit."""
    port_file = Path(tempfile.mkdtemp(prefix="signzy-emulator-")) / "port"
    process = subprocess.Popen(  # noqa: S603 - a fixed argv of our own CLI, no shell
        [
            sys.executable,
            "-m",
            "airflow_provider_signzy.emulator.cli",
            "--port",
            "0",
            "--port-file",
            str(port_file),
            *args,
        ],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )
    try:
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text()):
            if process.poll() is not None:
                raise RuntimeError(f"signzy-emulator exited with code {process.returncode} before listening")
            if time.monotonic() > deadline:
                raise RuntimeError("signzy-emulator did not report its port within 30 s")
            time.sleep(0.05)
        yield EmulatorControl(f"http://127.0.0.1:{port_file.read_text()}")
    finally:
        process.terminate()
        process.wait(timeout=10)
        port_file.unlink(missing_ok=True)
        port_file.parent.rmdir()
