"""Running whole DAGs in tests with ``dag.test()``: real Airflow, SQLite metadata DB."""

from __future__ import annotations

import os
from typing import Any


def run_dag(dag: Any) -> Any:
    """Serialize ``dag`` (``dag.test()`` needs it in the DB) and run it; returns the DagRun."""
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    bag = DagBag(dag_folder=os.devnull)
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)
    return dag.test()


def task_states(dag_run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
