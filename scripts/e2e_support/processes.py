"""Processes and sockets, read from /proc; waiting until something holds."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def with_suppressed(action: Any) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        action()


def process_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, process group) of every live process (zombies are dead already)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2 :].split()  # the command name may hold spaces
            if fields[0] not in ("Z", "X"):
                table[int(entry.name)] = (int(fields[1]), int(fields[2]))
    return table


def process_tree(root: int, table: dict[int, tuple[int, int]]) -> set[int]:
    """``root`` and every live process below it."""
    tree, frontier = set(), {root} & set(table)
    while frontier:
        tree |= frontier
        frontier = {pid for pid, (parent, _) in table.items() if parent in frontier} - tree
    return tree


def command_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()[:90]
    except OSError:
        return "?"


def pids_holding(client_port: int, server_port: int) -> set[int]:
    """The processes that hold the TCP connection from 127.0.0.1:client_port to server_port."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, inode = (
                int(fields[1].rsplit(":", 1)[1], 16),
                int(fields[2].rsplit(":", 1)[1], 16),
                fields[9],
            )
            if (local, remote) == (client_port, server_port) and inode != "0":  # 0: TIME_WAIT, no owner
                inodes.add(f"socket:[{inode}]")
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if any(os.readlink(fd) in inodes for fd in (entry / "fd").iterdir()):
                    pids.add(int(entry.name))
    return pids


def poll_until(check: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return True
        except Exception:  # noqa: S110 - not up yet: ask again
            pass
        time.sleep(0.5)
    return False


def wait_for(check: Any, what: str, seconds: float) -> None:
    if not poll_until(check, seconds):
        raise SystemExit(f"{what} was not ready within {seconds:.0f} s: see .e2e/logs/")
