"""The load: lifecycle and timeout runs at once under injected faults, and the figures once every run is over."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from airflow_provider_signzy.emulator.process import EmulatorControl

from . import common
from .api import Api, posts_by_run
from .common import API_KEY, LIFECYCLE, POSTS, TERMINAL, TIMEOUT, say, yes
from .processes import poll_until


def fault_plan(runs: int) -> list[dict[str, Any]]:
    identities = "/api/v2/patrons/*/identities"
    drops = max(1, runs // 6)
    return [
        {"path": "/api/v2/patrons/login", "every": 5, "fault": {"status": 502}},
        {"path": "/api/v2/patrons/login", "every": 7, "fault": {"status": 503}},
        {"path": identities, "method": "GET", "every": 4, "fault": {"status": 429, "retry_after": 1}},
        {"path": identities, "method": "GET", "every": 6, "fault": {"status": 403, "message": "rate limit"}},
        {"path": "/api/v2/patrons/*/identities/*", "every": 5, "times": 3, "fault": {"delay": 3}},
        {"path": identities, "method": "POST", "every": 4, "times": drops, "fault": {"drop": "after"}},
    ]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


def scan_for_secrets(tokens: list[str]) -> tuple[int, int]:
    """(files scanned, occurrences of any issued token or the API key) in every task and service log."""
    files = [p for p in (common.WORK / "airflow-home" / "logs").rglob("*") if p.is_file()]
    files += [p for p in (common.WORK / "logs").glob("*.log")]
    needles = [t.encode() for t in tokens] + [API_KEY.encode()]
    hits = 0
    for path in files:
        data = path.read_bytes()
        hits += sum(data.count(needle) for needle in needles)
    return len(files), hits


def run_load(api: Api, emulator_url: str, runs: int) -> list[list[str]]:
    timeouts = max(1, runs // 10)
    failing = set(range(0, runs, 5))  # every 5th lifecycle run fails on purpose
    for dag_id in (LIFECYCLE, TIMEOUT):
        api.call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
    emulator = EmulatorControl(emulator_url)
    emulator.add_faults(fault_plan(runs))
    say(f"Triggering {runs} lifecycle runs ({len(failing)} fail on purpose) and {timeouts} timeout runs at once")
    started = time.monotonic()
    triggered: list[tuple[str, str, bool]] = []
    # The timeout runs first: on a busy machine their login must not wait behind every lifecycle run's
    # for a worker slot until their 25 s dagrun_timeout has passed (then nothing logs in to revoke).
    for n in range(timeouts):
        run = api.call(
            "POST", f"/dags/{TIMEOUT}/dagRuns", json={"dag_run_id": f"timeout-{n:03d}", "logical_date": None}
        )
        triggered.append((TIMEOUT, run["dag_run_id"], True))
    for n in range(runs):
        run = api.call(
            "POST",
            f"/dags/{LIFECYCLE}/dagRuns",
            json={"dag_run_id": f"load-{n:03d}", "logical_date": None, "conf": {"fail": n in failing}},
        )
        triggered.append((LIFECYCLE, run["dag_run_id"], n in failing))
    results: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 1500
    while len(results) < len(triggered) and time.monotonic() < deadline:
        for dag_id, run_id, _ in triggered:
            if run_id not in results:
                run = api.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
                if run["state"] in TERMINAL:
                    results[run_id] = run
        print(f"   {len(results)}/{len(triggered)} runs finished after {time.monotonic() - started:.0f} s", flush=True)
        time.sleep(5)
    wall = time.monotonic() - started
    if len(results) < len(triggered):
        raise SystemExit(f"only {len(results)} of {len(triggered)} runs finished within the time limit")

    # Every lifecycle run's outcome must be explained by the plan: asked to fail, or its paid POST was
    # cut off after Signzy acted (a dropped connection; a POST is never resent).
    unexplained, dropped_posts, expected_failed = [], 0, 0
    for dag_id, run_id, asked_to_fail in triggered:
        if dag_id == TIMEOUT:
            expected_failed += 1
            if results[run_id]["state"] != "failed":
                unexplained.append(f"{run_id}: {results[run_id]['state']} although it outlived its timeout")
            continue
        tis = api.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances")["task_instances"]
        states = {ti["task_id"]: ti["state"] for ti in tis}
        post_cut = states.get("create_identity") == "failed"
        dropped_posts += post_cut
        expected = "failed" if asked_to_fail or post_cut else "success"
        expected_failed += expected == "failed"
        if results[run_id]["state"] != expected or states.get("signzy_logout") != "success":
            unexplained.append(f"{run_id}: {results[run_id]['state']}, tasks {states}")
    durations = [
        (datetime.fromisoformat(r["end_date"]) - datetime.fromisoformat(r["start_date"])).total_seconds()
        for r in results.values()
        if r.get("start_date") and r.get("end_date")
    ]

    # The DAG processor runs DAG-level callbacks (the timeout runs' only revocation) a little later.
    poll_until(lambda: emulator.state()["live_tokens"] == 0, 120)
    state = emulator.state()
    succeeded = sum(1 for r in results.values() if r["state"] == "success")
    served = state["faults_by_kind"]
    posts = state["requests"].get(POSTS, 0)
    created = state["identities_created"]
    rows = [
        ["runs triggered (lifecycle + timeout)", f"{runs} + {timeouts}", "-", "-"],
        [
            "runs succeeded / failed",
            f"{succeeded} / {len(results) - succeeded}",
            f"{len(triggered) - expected_failed} / {expected_failed} by the plan",
            yes(not unexplained),
        ],
        [
            "faults served",
            ", ".join(f"{k} x{v}" for k, v in sorted(served.items())),
            "each kind at least once",
            yes({"status-502", "status-503", "status-429", "status-403", "delay", "drop-after"} <= set(served)),
        ],
        [
            "dropped paid POSTs -> failed create tasks",
            f"{served.get('drop-after', 0)} -> {dropped_posts}",
            "equal",
            yes(served.get("drop-after", 0) == dropped_posts),
        ],
        ["logins per run", f"{state['logins'] / len(triggered):.2f}", "1.00", yes(state["logins"] == len(triggered))],
        [
            "POSTs received per created identity",
            f"{posts / max(created, 1):.2f} ({posts}/{created})",
            "1.00",
            yes(posts == created and created == runs),
        ],
        ["wall time for the whole load", f"{wall:.0f} s", "-", "-"],
        [
            "run duration p50 / p95",
            f"{percentile(durations, 0.5):.0f} s / {percentile(durations, 0.95):.0f} s",
            "-",
            "-",
        ],
    ]
    for line in unexplained:
        print(f"   unexplained: {line}")
    return rows


def final_figures(emulator_url: str, paying_runs: list[str], batch_identities: int = 0) -> list[list[str]]:
    """Paid calls per run (each intends one), live tokens and the secret scan, once every run is over.
    ``batch_identities``: those the batch run created (its own figures account for them)."""
    emulator = EmulatorControl(emulator_url)
    sent = posts_by_run(emulator_url)
    twice = {run_id: sent[run_id] for run_id in paying_runs if sent[run_id] > 1}
    for run_id, count in sorted(twice.items()):
        print(f"   sent twice: {run_id} sent its paid POST {count} times")
    total = sum(sent[run_id] for run_id in paying_runs)
    created = emulator.state()["identities_created"] - batch_identities
    poll_until(lambda: emulator.state()["live_tokens"] == 0, 60)
    live = emulator.state()["live_tokens"]
    tokens = (common.WORK / "issued-tokens").read_text().split()
    files, leaks = scan_for_secrets(tokens)
    return [
        [
            "paid calls intended / sent (all runs)",
            f"{len(paying_runs)} / {total}",
            "equal",
            yes(total == len(paying_runs) == created),
        ],
        ["paid POSTs sent twice (runs)", str(len(twice)), "0", yes(not twice)],
        ["live tokens at the end", str(live), "0", yes(live == 0)],
        [f"token or API key in {files} log files", str(leaks), "0", yes(leaks == 0 and files > 0 and bool(tokens))],
    ]
