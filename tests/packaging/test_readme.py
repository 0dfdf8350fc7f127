"""The README's Python example is real: it compiles and builds the DAG it describes (the docs' code is
whole files, tested by tests/packaging/test_docs.py)."""

from __future__ import annotations

import re
from pathlib import Path

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.DOTALL)


def test_every_python_block_compiles() -> None:
    assert BLOCKS, "the README has no Python example: the checks below would prove nothing"
    for block in BLOCKS:
        compile(block, "README.md", "exec")


def test_the_dag_example_builds_its_lifecycle() -> None:
    (dag_block,) = [b for b in BLOCKS if "with DAG(" in b]
    namespace: dict[str, object] = {}
    exec(dag_block, namespace)  # noqa: S102 - our own README
    dag = namespace["login"].dag  # type: ignore[attr-defined]  # `with DAG(...)` binds no name
    assert {t.task_id for t in dag.tasks} == {"signzy_login", "verify_pan", "signzy_logout"}
    assert dag.get_task("verify_pan").product == "pan.verification"
    assert dag.get_task("signzy_logout").is_teardown
    assert dag.on_failure_callback is not None


def test_every_relative_link_points_at_a_file() -> None:
    root = Path(__file__).resolve().parents[2]
    targets = re.findall(r"\]\(((?!https?://|#)[^)#]+)(?:#[^)]*)?\)", README)
    assert targets, "no relative link found: the check would prove nothing"
    missing = [t for t in targets if not (root / t).exists()]
    assert not missing, f"README links to files that do not exist: {missing}"


def test_the_readme_is_a_landing_page() -> None:
    assert len(README.splitlines()) <= 160  # the details live in docs/
