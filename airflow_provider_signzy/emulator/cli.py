"""``signzy-emulator``: run the local Signzy from a shell."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from airflow_provider_signzy.emulator.server import DEFAULT_PATRONS, SignzyEmulator
from airflow_provider_signzy.emulator.state import Patron


def _patron(spec: str) -> Patron:
    """``username:api_key[:user_id[:email]]``."""
    parts = spec.split(":")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise argparse.ArgumentTypeError(f"expected username:api_key[:user_id[:email]], got {spec!r}")
    user_id = parts[2] if len(parts) > 2 and parts[2] else f"patron-{parts[0]}"
    email = parts[3] if len(parts) > 3 and parts[3] else None
    return Patron(parts[0], parts[1], user_id, email)


def _auto_status(spec: str) -> tuple[str, float]:
    """``status:seconds``."""
    status, _, seconds = spec.rpartition(":")
    try:
        after = float(seconds)
    except ValueError:
        after = -1.0
    if not status or after < 0:
        raise argparse.ArgumentTypeError(f"expected status:seconds (e.g. verified:2), got {spec!r}")
    return status, after


def _latency(spec: str) -> tuple[str, float]:
    """``seconds`` (every product and upload) or ``name=seconds`` (a product name, ``persist`` or ``*``)."""
    key, _, seconds = spec.rpartition("=")
    try:
        value = float(seconds)
    except ValueError:
        value = -1.0
    if value < 0 or (spec.count("=") and not key):
        raise argparse.ArgumentTypeError(
            f"expected seconds or product=seconds (e.g. pan.verification=0.3), got {spec!r}"
        )
    return key or "*", value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="signzy-emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8089, help="port; 0 picks a free one (default 8089)")
    parser.add_argument(
        "--patron",
        type=_patron,
        action="append",
        help="username:api_key[:user_id[:email]], repeatable (default: demo:demo-api-key-0123456789)",
    )
    parser.add_argument("--max-ttl", type=int, help="cap on the ttl a login may ask for (seconds)")
    parser.add_argument("--acl-error-status", type=int, choices=(401, 403), default=401)
    parser.add_argument("--ttl-as-string", action="store_true", help='answer "ttl" as a string')
    parser.add_argument("--loopback2", action="store_true", help='error envelopes with "status" (LoopBack 2)')
    parser.add_argument("--port-file", help="write the bound port here once listening")
    parser.add_argument("--token-log", help="append every issued token to this file (leak scans only)")
    parser.add_argument(
        "--auto-status",
        type=_auto_status,
        help="status:seconds: each new identity moves to that status that long after creation (e.g. verified:2)",
    )
    parser.add_argument(
        "--latency",
        type=_latency,
        action="append",
        help="seconds before answering snoops, product resources and uploads: 0.2 for all, or "
        "pan.verification=0.3 (a product; 'persist' for uploads), repeatable",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    emulator = SignzyEmulator(
        args.patron or DEFAULT_PATRONS,
        host=args.host,
        port=args.port,
        max_ttl=args.max_ttl,
        acl_error_status=args.acl_error_status,
        ttl_as_string=args.ttl_as_string,
        loopback2=args.loopback2,
        token_log=args.token_log,
        auto_status=args.auto_status,
        latency=dict(args.latency or ()),
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    emulator.start()
    if args.port_file:
        with open(args.port_file, "w", encoding="utf-8") as handle:
            handle.write(str(emulator.httpd.server_address[1]))
    print(f"signzy-emulator listening on {emulator.url}", flush=True)
    stop.wait()
    emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
