"""Running whole DAGs in tests with ``dag.test()``: real Airflow, SQLite metadata DB.

The DAG bag moved between versions: ``airflow.models.dagbag`` up to 3.1 (``DagBag.sync_to_db`` in 3.0,
a module-level ``sync_bag_to_db`` from 3.1), ``airflow.dag_processing.dagbag`` from 3.2.
"""

from __future__ import annotations

import os
import re
from typing import Any

from airflow_version import airflow_at_least

#: The bundle that serialized DAGs refer to (Airflow 3); conftest's ``airflow_db`` creates it.
BUNDLE = "dags-folder"


def dag_bag(dag_folder: str) -> Any:
    """A DagBag of ``dag_folder``, on any supported version (conftest turns Airflow's examples off)."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # before 3.2
        from airflow.models.dagbag import DagBag
    return DagBag(dag_folder=dag_folder)


def sync_to_db(bag: Any) -> None:
    """Serialize the bag's DAGs to the metadata DB, as the DAG processor would."""
    try:  # 3.2+
        from airflow.dag_processing.dagbag import sync_bag_to_db
    except ImportError:
        try:  # 3.1
            from airflow.models.dagbag import sync_bag_to_db
        except ImportError:  # 3.0 (and 2.11): a DagBag method
            if airflow_at_least("3.0"):
                bag.sync_to_db(BUNDLE, None)
            else:
                bag.sync_to_db()
            return
    sync_bag_to_db(bag, BUNDLE, None)


def run_dag(dag: Any, **test_kwargs: Any) -> Any:
    """Serialize ``dag`` (``dag.test()`` needs it in the DB) and run it; returns the DagRun."""
    if airflow_at_least("3.0") and getattr(dag, "relative_fileloc", None) is None:
        # 3.0's serializer needs it; a DagBag sets it for DAGs it parsed, not for one defined in a test.
        dag.relative_fileloc = os.path.basename(dag.fileloc)
    bag = dag_bag(os.devnull)
    bag.bag_dag(dag)
    sync_to_db(bag)
    return dag.test(**test_kwargs)


def task_states(dag_run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def console_text(capfd: Any) -> str:
    """What a task printed, as plain text: 3.0 renders a task's error through rich (colours, wrapped at the
    terminal width), later versions print it plain. Colours go, and line breaks and runs of spaces become
    one space, so a message reads the same on every version."""
    out, err = capfd.readouterr()
    return re.sub(r"\s+", " ", _ANSI.sub("", out + err))


#: Airflow 3.0, under ``dag.test()`` / ``airflow dags test`` only (the in-process supervisor,
#: ``InProcessSupervisorComms.send``), prints each message a task sends at debug level, ``MaskSecret`` too:
#: ``Sending request msg=MaskSecret(value='<the secret>', ...)``. Airflow's own connection masking sends
#: the API key that way, the provider's masking the token. A deployment's supervisor omits the body. 3.1+
#: keep the same debug call but do not print it (test_dag_secrets checks both sides of this line).
MASK_ECHO_FIXED_IN = "3.1"
_MASK_ECHO = re.compile(r"Sending request\s+msg=MaskSecret\(.*?type='MaskSecret'\)")


def unwrapped(text: str) -> str:
    """``text`` as the secret checks read it: no colours, no whitespace (a secret split by a line wrap is
    found too) and, on Airflow 3.0, without Airflow's own ``MaskSecret`` debug echo (``_MASK_ECHO``):
    everything else still counts, so a leak by the provider fails the check on every version."""
    text = _ANSI.sub("", text)
    if not airflow_at_least(MASK_ECHO_FIXED_IN):
        text = _MASK_ECHO.sub("Sending request msg=MaskSecret(<Airflow's own echo, see README>)", text)
    return re.sub(r"\s+", "", text)


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
