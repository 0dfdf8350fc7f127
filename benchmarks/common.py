"""Shared parts of the benchmarks: a throw-away Airflow home, the connections, result rows."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

PATRON, API_KEY, PATRON_ID = "demo", "demo-api-key-0123456789", "patron-demo-0001"


@dataclass
class Row:
    """One line of the results table; ``met`` is None for figures that have no goal."""

    measure: str
    ours: str
    alternative: str
    ratio: str
    goal: str
    met: bool | None

    def emit(self) -> None:
        print("ROW " + json.dumps(asdict(self)), flush=True)


def airflow_home() -> Path:
    """Point Airflow at a throw-away home; call before importing airflow."""
    home = Path(tempfile.mkdtemp(prefix="signzy-bench-"))
    os.environ.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__FERNET_KEY": "8J3GfFkzrV7wP0Qh6h2y4dNwU9h2nE1x3c7qQm5a1sA=",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        }
    )
    return home


def set_connections(url: str, **extra: object) -> None:
    os.environ["AIRFLOW_CONN_SIGNZY_DEFAULT"] = json.dumps(
        {"conn_type": "signzy", "host": url, "login": PATRON, "password": API_KEY, "extra": extra}
    )
    os.environ["AIRFLOW_CONN_SIGNZY_HTTP"] = json.dumps(
        {"conn_type": "http", "host": url, "login": PATRON, "password": API_KEY}
    )
    # No login: HttpHook would otherwise replace a hand-set Authorization header with basic auth.
    os.environ["AIRFLOW_CONN_SIGNZY_HTTP_PLAIN"] = json.dumps({"conn_type": "http", "host": url})


def fresh_metadata_db() -> None:
    """An empty metadata DB with the DAG bundle that serialized DAGs refer to (after :func:`airflow_home`)."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.utils import db

    db.resetdb()
    DagBundlesManager().sync_bundles_to_db()


def run_dag(dag: object) -> object:
    """Serialize ``dag`` and run it with ``dag.test()``; it must succeed."""
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    bag = DagBag(dag_folder=os.devnull)
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)
    dag_run = dag.test()  # type: ignore[attr-defined]
    assert str(dag_run.state) == "success", dag_run.state
    return dag_run
