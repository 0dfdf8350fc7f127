"""Running whole DAGs in tests with ``dag.test()``: real Airflow, SQLite metadata DB."""

from __future__ import annotations

import os
from typing import Any


def run_dag(dag: Any, **test_kwargs: Any) -> Any:
    """Serialize ``dag`` (``dag.test()`` needs it in the DB) and run it; returns the DagRun.

    ``dag.test(logical_date=d)`` for a date that already has a run clears that run's tasks and runs them
    again: what ``airflow tasks clear`` does.
    """
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    bag = DagBag(dag_folder=os.devnull)
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)
    return dag.test(**test_kwargs)


def task_states(dag_run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


def clear_and_rerun(dag: Any, dag_run: Any, task_id: str) -> str:
    """A user's "Clear" of one task of a finished run, then that task run again; returns its new state.

    The clear is Airflow's own ``clear_task_instances`` (what ``airflow tasks clear`` and the UI call),
    which keeps the run and so its task state store; the task then runs as ``dag.test()`` runs tasks.
    """
    from airflow.models.taskinstance import TaskInstance, clear_task_instances
    from airflow.sdk.definitions.dag import _run_task
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState
    from sqlalchemy import select

    def task_instance(session: Any) -> Any:
        query = select(TaskInstance).where(
            TaskInstance.dag_id == dag_run.dag_id,
            TaskInstance.run_id == dag_run.run_id,
            TaskInstance.task_id == task_id,
        )
        return session.scalars(query).one()

    with create_session() as session:
        clear_task_instances([task_instance(session)], session, dag_run_state=DagRunState.RUNNING)
    with create_session() as session:
        ti = task_instance(session)
        ti.try_number += 1
        ti.state = TaskInstanceState.SCHEDULED
        session.commit()
        _run_task(ti=ti, task=dag.task_dict[task_id])
    with create_session() as session:
        return str(task_instance(session).state)
