"""`make constraints`: re-resolve every supported Airflow line from scratch, test it, and freeze it.

For each Airflow version and Python (``--versions``, ``--pythons``; default: every supported pair):

1. A new virtualenv in ``.constraints/airflow-V-python-P``: pip's newest versions of everything that
   ``apache-airflow==V`` and the provider's extras (``test,docs,e2e``) allow, held back only by the line's
   holds (``constraints/holds/airflow-X.Y.in``: the packages known to break that line, each with its
   reason) and by any ``--hold SPEC`` given for this run.
2. That line's checks: the matrix's whole-DAG set (``tests/dags tests/security`` and provider
   registration) on every line; on the default version also ruff, mypy and the whole suite.
3. Passed: ``constraints/airflow-V-python-P.txt`` becomes the freeze of that virtualenv (every package,
   the provider itself left out), with a header that says how and when it was made. Failed: the freeze
   is left as it was, and the script says which packages moved since it and which move breaks the line:
   it reverts the moves in the new virtualenv by halves (``pip install --no-deps old``) and re-runs only
   the failed tests, then confirms the culprit by reverting it alone.

CI and ``make`` install from the committed freezes only (``pip install -c``), so a green commit stays
green; this script is how a new upstream release reaches them, on our schedule. Exit 1 if any pair
failed. Each pair's output goes to ``.constraints/airflow-V-python-P.log``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".constraints"
CONSTRAINTS = ROOT / "constraints"
#: The newest patch of each supported line, newest first; the first is the default (`make test`).
VERSIONS = ("3.3.2", "3.2.2", "3.1.8", "3.0.6")
DEFAULT_VERSION = VERSIONS[0]
PYTHONS = ("3.11", "3.12")
EXTRAS = "test,docs,e2e"
PROVIDER = "airflow-provider-signzy"
MATRIX_TESTS = ["tests/dags", "tests/security", "tests/packaging/test_provider_registration.py"]
REQUIREMENT = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;#]+)")


def freeze_path(version: str, python: str) -> Path:
    return CONSTRAINTS / f"airflow-{version}-python-{python}.txt"


def holds_path(version: str) -> Path:
    return CONSTRAINTS / "holds" / f"airflow-{'.'.join(version.split('.')[:2])}.in"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(text: str) -> dict[str, str]:
    """``name==version`` lines of a freeze, by canonical name."""
    pins = {}
    for line in text.splitlines():
        match = REQUIREMENT.match(line.strip())
        if match:
            pins[canonical(match["name"])] = match["version"]
    return pins


def find_python(python: str) -> str:
    """The interpreter for ``python`` (``3.12``): ``$PYTHON_3_12``, ``python3.12`` on PATH, or pyenv's."""
    candidates = [os.environ.get(f"PYTHON_{python.replace('.', '_')}", ""), f"python{python}"]
    candidates += sorted(str(p) for p in Path.home().glob(f".pyenv/versions/{python}.*/bin/python{python}"))
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == python:
            return candidate
    raise SystemExit(f"No Python {python} found: put python{python} on PATH or set PYTHON_{python.replace('.', '_')}")


@dataclass
class Pair:
    version: str
    python: str
    venv: Path = field(init=False)
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.venv = WORK / f"airflow-{self.version}-python-{self.python}"
        self.log_path = WORK / f"airflow-{self.version}-python-{self.python}.log"

    @property
    def name(self) -> str:
        return f"Airflow {self.version} on Python {self.python}"

    def bin(self, tool: str) -> str:
        return str(self.venv / "bin" / tool)

    def run(self, argv: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        with self.log_path.open("a") as log:
            log.write(f"\n$ {' '.join(argv)}\n")
            log.flush()
            proc = subprocess.run(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True, check=False)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{argv[0]} exited {proc.returncode}; see {self.log_path.relative_to(ROOT)}")
        return proc

    def pip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run([self.bin("python"), "-m", "pip", *args], check=check)


def resolve(pair: Pair, holds: list[str]) -> None:
    """A fresh virtualenv with the newest versions the holds allow."""
    shutil.rmtree(pair.venv, ignore_errors=True)
    pair.log_path.write_text("")
    pair.run([find_python(pair.python), "-m", "venv", str(pair.venv)])
    pair.pip("install", "-q", "--upgrade", "pip")
    held = WORK / f"holds-{pair.version}-python-{pair.python}.txt"
    held.write_text("\n".join(holds) + "\n")
    shutil.rmtree(ROOT / "build", ignore_errors=True)  # setuptools would reuse a stale build/
    pair.pip("install", "-q", "-c", str(held), f"apache-airflow=={pair.version}", f".[{EXTRAS}]")


def freeze(pair: Pair) -> str:
    out = subprocess.run(
        [pair.bin("python"), "-m", "pip", "freeze", "--all", "--exclude", PROVIDER, "--exclude", "pip"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return "".join(line + "\n" for line in sorted(out.splitlines(), key=str.lower) if REQUIREMENT.match(line))


def check_commands(pair: Pair) -> list[list[str]]:
    """The line's checks: what CI runs on it."""
    if pair.version == DEFAULT_VERSION:
        return [
            [pair.bin("ruff"), "check", "."],
            [pair.bin("ruff"), "format", "--check", "."],
            [pair.bin("mypy")],
            [pair.bin("pytest"), "-q"],
        ]
    return [[pair.bin("pytest"), "-q", *MATRIX_TESTS]]


def failed_tests(pair: Pair, argv: list[str]) -> tuple[bool, list[str], str]:
    """Runs one check; returns (passed, the failed test ids, pytest's closing line or the tool's exit)."""
    offset = pair.log_path.stat().st_size
    cache = WORK / f"pytest-cache-{pair.version}-python-{pair.python}"
    if Path(argv[0]).name == "pytest":
        # pytest's own record of what failed (node ids may hold spaces: its summary lines cannot be split).
        shutil.rmtree(cache, ignore_errors=True)
        argv = [*argv, "-o", f"cache_dir={cache}"]
    proc = pair.run(argv, check=False)
    with pair.log_path.open() as log:
        log.seek(offset)
        output = log.read().splitlines()
    if Path(argv[0]).name != "pytest":
        return proc.returncode == 0, [], f"{Path(argv[0]).name} exit {proc.returncode}"
    # pytest -ra's short summary: "FAILED tests/x.py::test_y - reason" / "ERROR tests/x.py::test_z".
    lastfailed = cache / "v" / "cache" / "lastfailed"
    failed = list(json.loads(lastfailed.read_text())) if lastfailed.exists() else []
    closing = next((line.strip("= ") for line in reversed(output) if line.strip()), f"exit {proc.returncode}")
    return proc.returncode == 0, sorted(set(failed)), closing


def moves(old: dict[str, str], new: dict[str, str]) -> list[tuple[str, str | None, str | None]]:
    names = sorted(set(old) | set(new))
    return [(n, old.get(n), new.get(n)) for n in names if old.get(n) != new.get(n)]


def set_versions(pair: Pair, specs: list[str]) -> None:
    if specs:
        pair.pip("install", "-q", "--no-deps", *specs)


def tests_pass(pair: Pair, tests: list[str]) -> bool:
    return pair.run([pair.bin("pytest"), "-q", "-p", "no:cacheprovider", *tests], check=False).returncode == 0


def find_breaking_move(pair: Pair, old: dict[str, str], new: dict[str, str], tests: list[str]) -> list[str]:
    """Which moved package breaks the failed tests: revert by halves in the new virtualenv."""
    revertible = [(n, o, w) for n, o, w in moves(old, new) if o and w]
    if not revertible or not tests:
        return []

    def revert(chosen: list[tuple[str, str | None, str | None]]) -> bool:
        set_versions(pair, [f"{n}=={w}" for n, _, w in revertible])
        set_versions(pair, [f"{n}=={o}" for n, o, _ in chosen])
        return tests_pass(pair, tests)

    if not revert(revertible):
        return [f"reverting every move ({len(revertible)}) does not make the failed tests pass"]
    candidates = revertible
    while len(candidates) > 1:
        half = candidates[: len(candidates) // 2]
        candidates = half if revert(half) else candidates[len(half) :]
    name, old_version, new_version = candidates[0]
    confirmed = True if len(revertible) == 1 else revert(candidates)  # one move: the first revert was it alone
    set_versions(pair, [f"{n}=={w}" for n, _, w in revertible])
    verdict = "reverting it alone makes the failed tests pass" if confirmed else "not confirmed alone"
    return [f"{name} {old_version} -> {new_version} ({verdict})"]


def header(pair: Pair, extra_holds: list[str], results: list[str]) -> str:
    def ask(code: str) -> str:
        return subprocess.run([pair.bin("python"), "-c", code], capture_output=True, text=True).stdout.strip()

    python_full = ask("import sys; print(sys.version.split()[0])")
    pip_version = ask("import pip; print(pip.__version__)")
    held = str(holds_path(pair.version).relative_to(ROOT)) + "".join(f", {h}" for h in extra_holds)
    lines = [
        f"Full constraints for Airflow {pair.version} on Python {pair.python}: every package of a tested",
        f"resolution, pinned. Made by `make constraints` on {dt.date.today().isoformat()} with Python"
        f" {python_full} and pip {pip_version}:",
        f"a fresh virtualenv with apache-airflow=={pair.version} and {PROVIDER}[{EXTRAS}] at the newest",
        f"versions allowed by {held}; then the line's checks, which passed:",
        *[f"  {r}" for r in results],
        f'Install: pip install -c <this file> "apache-airflow=={pair.version}" <the provider\'s checkout or wheel>',
        "The provider itself is left out. Regenerate with `make constraints` (docs/compatibility.md).",
    ]
    return "".join(f"# {line}\n" for line in lines)


def run_pair(pair: Pair, extra_holds: list[str]) -> bool:
    start = time.monotonic()
    holds = [f"-c {holds_path(pair.version)}", *extra_holds]
    print(f">> {pair.name}: resolving from scratch (log: {pair.log_path.relative_to(ROOT)})", flush=True)
    WORK.mkdir(exist_ok=True)
    try:
        resolve(pair, holds)
    except RuntimeError as exc:
        print(f"   FAILED to install: {exc}; the freeze is left as it was", flush=True)
        return False
    new_text = freeze(pair)
    old_file = freeze_path(pair.version, pair.python)
    old = read_pins(old_file.read_text()) if old_file.exists() else {}
    new = read_pins(new_text)
    moved = moves(old, new)
    results, failures, passed = [], [], True
    for argv in check_commands(pair):
        ok, failed, closing = failed_tests(pair, argv)
        results.append(f"{' '.join(Path(a).name if i == 0 else a for i, a in enumerate(argv))}: {closing}")
        print(f"   {results[-1]}", flush=True)
        passed &= ok
        failures += failed
    minutes = (time.monotonic() - start) / 60
    if passed:
        old_file.write_text(header(pair, extra_holds, results) + new_text)
        changed = f"{len(moved)} package(s) moved" if old else "new file"
        print(f"   PASSED in {minutes:.0f} min: wrote {old_file.relative_to(ROOT)} ({changed})", flush=True)
        for name, was, now in moved if old else []:
            print(f"     {name}: {was or '-'} -> {now or '-'}")
        return True
    print(f"   FAILED in {minutes:.0f} min: {old_file.relative_to(ROOT)} left as it was", flush=True)
    if failures:
        print(f"   failed tests ({len(failures)}): " + ", ".join(failures[:8]) + (" ..." if len(failures) > 8 else ""))
    if not old:
        print("   (no earlier freeze to compare with)")
        return False
    print(
        f"   moved since the freeze ({len(moved)}): " + ", ".join(f"{n} {o or '-'} -> {w or '-'}" for n, o, w in moved)
    )
    if failures:
        print("   looking for the breaking move (reverting by halves, re-running the failed tests)...", flush=True)
        for line in find_breaking_move(pair, old, new, failures):
            print(f"   breaking move: {line}", flush=True)
            print(
                f"   to hold it on this line, add a cap with its reason to {holds_path(pair.version).relative_to(ROOT)}"
            )
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--versions", nargs="+", default=list(VERSIONS))
    parser.add_argument("--pythons", nargs="+", default=list(PYTHONS))
    parser.add_argument("--hold", action="append", default=[], help="an extra requirement for this run")
    args = parser.parse_args()
    outcomes = {}
    for version in args.versions:
        for python in args.pythons:
            outcomes[(version, python)] = run_pair(Pair(version, python), args.hold)
    print("\n>> make constraints")
    for (version, python), ok in outcomes.items():
        print(f"Airflow {version} on Python {python}: {'refreshed' if ok else 'FAILED, freeze kept'}")
    summary = {f"{v}-python-{p}": ok for (v, p), ok in outcomes.items()}
    (WORK / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if all(outcomes.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
