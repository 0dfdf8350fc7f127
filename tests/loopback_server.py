"""A stock LoopBack 3 server (Node.js, ``tests/loopback/server.js``) for the interop tests, started per use.

``make test`` installs LoopBack (``npm ci`` in tests/loopback); a module that needs it calls
:func:`require_loopback` at import: it skips where Node.js or LoopBack is missing on a developer's machine,
and fails instead under ``SIGNZY_REQUIRE_LOOPBACK`` (CI), so CI never skips them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SERVER_JS = Path(__file__).resolve().parent / "loopback" / "server.js"


def require_loopback() -> None:
    if shutil.which("node") is None or not (SERVER_JS.parent / "node_modules" / "loopback").is_dir():
        reason = "LoopBack interop needs Node.js and `npm ci` in tests/loopback (make test does both)"
        if os.environ.get("SIGNZY_REQUIRE_LOOPBACK"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason, allow_module_level=True)


@contextlib.contextmanager
def loopback_server(patrons: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, str]]]:
    """``(base URL, {username: patron id})`` of a LoopBack server with these patrons; stopped on exit."""
    process = subprocess.Popen(
        ["node", str(SERVER_JS), "0"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "LOOPBACK_PATRONS": json.dumps(patrons)},
    )
    try:
        assert process.stdout is not None
        ready = json.loads(process.stdout.readline())
        yield f"http://127.0.0.1:{ready['port']}", ready["ids"]
    finally:
        process.terminate()
        process.wait(timeout=10)
