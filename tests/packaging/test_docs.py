"""The docs site's code cannot drift from the code: every block is a whole file that something runs.

Pages (``docs/*.md``) hold no Python of their own: Python comes in through ``literalinclude`` of a whole
file, either an example DAG (``dags_examples/``, parsed and run by ``tests/dags/test_examples.py``) or a
script in ``docs/snippets/``, compiled and run here against the emulator. ``make docs`` builds the pages
with warnings as errors (a missing include or a broken link fails there); these checks need no Sphinx.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from airflow_provider_signzy.emulator import SignzyEmulator
from airflow_provider_signzy.emulator.pytest_plugin import connection_json

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
SNIPPETS = DOCS / "snippets"
EXAMPLES = REPO / "dags_examples"
PAGES = sorted(DOCS.glob("*.md"))

# A fenced block: its fence (``` or ~~~, or MyST's :::), its info string, its body.
FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,}|:{3,})(?P<info>[^\n]*)\n(?P<body>.*?)^(?P=fence)[ \t]*$", re.M | re.S)
# What a page may fence: shell commands, plain text, and the directives that include or arrange files.
ALLOWED_BLOCKS = {"bash", "text", "{literalinclude}", "{include}", "{toctree}", "{eval-rst}"}
# The options a literalinclude may take: none that cut a file (lines, start-after, pyobject, ...).
WHOLE_FILE_OPTIONS = {"language", "caption"}


def blocks(page: Path) -> list[tuple[str, str, str]]:
    """(directive or language, argument, body) of each fenced block of ``page``."""
    found = []
    for match in FENCE.finditer(page.read_text()):
        kind, _, argument = match["info"].strip().partition(" ")
        found.append((kind, argument.strip(), match["body"]))
    return found


def includes() -> list[tuple[Path, str, Path, str]]:
    """(page, directive, included file, block body) for every literalinclude and include in docs/."""
    return [
        (page, kind, (page.parent / argument).resolve(), body)
        for page in PAGES
        for kind, argument, body in blocks(page)
        if kind in ("{literalinclude}", "{include}")
    ]


def test_the_site_has_its_pages() -> None:
    names = {page.stem for page in PAGES}
    assert {"index", "getting-started", "connection", "api", "changelog"} <= names
    assert "conf" not in names


def test_no_page_writes_python_of_its_own() -> None:
    for page in PAGES:
        for kind, _, body in blocks(page):
            assert kind in ALLOWED_BLOCKS, (
                f"{page.name}: a ```{kind} block; put the code in docs/snippets/ (or dags_examples/) and "
                "literalinclude it, so a test runs it"
            )
            if kind == "{eval-rst}":
                assert not re.search(r"::\s*(python|py|pycon)|\.\. (code|sourcecode|literalinclude)", body), page


def test_every_include_exists_and_is_whole() -> None:
    found = includes()
    assert found
    for page, kind, target, body in found:
        assert target.is_file(), f"{page.name}: {kind} of {target}, which does not exist"
        options = set(re.findall(r"^:([\w-]+):", body, re.M))
        if kind == "{literalinclude}":
            assert options <= WHOLE_FILE_OPTIONS, f"{page.name}: {target.name} is cut ({options}): include it whole"


def test_every_snippet_and_example_dag_is_in_the_docs() -> None:
    included = {target for _, _, target, _ in includes()}
    for path in [*SNIPPETS.glob("*.py"), *EXAMPLES.glob("*.py")]:
        assert path.resolve() in included, f"{path.relative_to(REPO)} is in no page of docs/"


def test_every_download_link_exists() -> None:
    for page in PAGES:
        for target in re.findall(r"\{download\}`[^`<]*<([^>]+)>`", page.read_text()):
            assert (page.parent / target).is_file(), f"{page.name}: download of {target}, which does not exist"


def test_package_metadata_points_at_the_docs_and_the_docs_extra_stays_apart() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    urls = project["urls"]
    assert set(urls) == {"Homepage", "Documentation", "Changelog", "Issues"}
    assert all(url.startswith(urls["Homepage"]) for url in urls.values())  # one address throughout
    extras = project["optional-dependencies"]
    assert {"sphinx", "furo", "myst-parser"} <= {re.split(r"[<>=!~ ]", dep)[0] for dep in extras["docs"]}
    assert not any("docs" in dep or "sphinx" in dep for dep in extras["test"])  # the suite needs no Sphinx


@pytest.mark.parametrize("snippet", sorted(SNIPPETS.glob("*.py")), ids=lambda p: p.name)
def test_every_snippet_compiles(snippet: Path) -> None:
    compile(snippet.read_text(), str(snippet), "exec")


def run_snippet(name: str, **env: str) -> str:
    result = subprocess.run(
        [sys.executable, str(SNIPPETS / name)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        cwd=REPO,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result.stdout


def test_snippet_hook_by_hand_revokes_its_token(emulator: SignzyEmulator) -> None:
    out = run_snippet("hook_by_hand.py", AIRFLOW_CONN_SIGNZY_DEFAULT=connection_json(emulator.url))
    assert "Created identity " in out
    assert "Token revoked: True" in out
    state = emulator.state.snapshot()
    assert (state["logins"], state["logouts"], state["live_tokens"], state["identities_created"]) == (1, 1, 0, 1)


def test_snippet_open_sealed_values_seals_and_opens(emulator: SignzyEmulator) -> None:
    out = run_snippet("open_sealed_values.py", AIRFLOW_CONN_SIGNZY_DEFAULT=connection_json(emulator.url))
    assert '"signzy_sealed"' in out
    assert "ABCDE1234F" not in out  # the script prints no personal value, sealed or opened
    assert emulator.state.snapshot()["total_requests"] == 0  # it sends nothing


def test_snippet_emulator_in_a_process_needs_nothing_running() -> None:
    out = run_snippet("emulator_in_a_process.py")
    assert "faults served: 1" in out


def test_snippet_products_by_hook_runs_one_product_of_each_family(emulator: SignzyEmulator) -> None:
    out = run_snippet("products_by_hook.py", AIRFLOW_CONN_SIGNZY_DEFAULT=connection_json(emulator.url))
    assert "pan.verification: verified=True" in out
    assert "bankaccount.transfer: active=" in out
    assert "pan.extraction: fields [" in out
    assert "refused before sending: Product 'pan.verification': essentials field 'number' must be a PAN" in out
    assert "ABCDE1234\n" not in out  # the malformed value is not quoted
    state = emulator.state.snapshot()
    assert (state["identities_created"], state["snoops"], state["resource_calls"], state["uploads"]) == (2, 2, 1, 1)
    assert (state["logins"], state["live_tokens"]) == (1, 0)
