"""The README's Python examples are real: they compile, and the DAG example builds the DAG it describes."""

from __future__ import annotations

import re
from pathlib import Path

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.DOTALL)


def test_every_python_block_compiles() -> None:
    assert len(BLOCKS) >= 2
    for block in BLOCKS:
        compile(block, "README.md", "exec")


def test_the_dag_example_builds_its_lifecycle() -> None:
    (dag_block,) = [b for b in BLOCKS if "with DAG(" in b]
    namespace: dict[str, object] = {}
    exec(dag_block, namespace)  # noqa: S102 - our own README
    dag = namespace["login"].dag  # type: ignore[attr-defined]  # `with DAG(...)` binds no name
    assert {t.task_id for t in dag.tasks} == {"signzy_login", "create_identity", "list", "signzy_logout"}
    assert dag.get_task("signzy_logout").is_teardown
    assert dag.on_failure_callback is not None
