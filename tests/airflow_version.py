"""The installed Airflow's version, and one way to skip a test that cannot apply to it.

Use it for every version-dependent skip, so the reason always names the version::

    from airflow_version import requires_airflow

    @requires_airflow("3.3", why="the task state store (AIP-103) is new in 3.3")
    def test_ledger_survives_a_retry() -> None: ...

Module-wide: ``pytestmark = requires_airflow("3.3", why=...)``. Code that branches instead of skipping
compares with ``AIRFLOW_VERSION`` / ``airflow_at_least("3.1")``.
"""

from __future__ import annotations

from importlib.metadata import version

import pytest
from packaging.version import Version

#: The installed apache-airflow, as a comparable version (read from the distribution: importing
#: airflow here would be too early for conftest's environment).
AIRFLOW_VERSION = Version(version("apache-airflow"))
#: "3.0", "3.3": the line of the installed Airflow.
AIRFLOW_LINE = f"{AIRFLOW_VERSION.major}.{AIRFLOW_VERSION.minor}"


def airflow_at_least(minimum: str) -> bool:
    return Version(minimum) <= AIRFLOW_VERSION


def requires_airflow(minimum: str, *, why: str) -> pytest.MarkDecorator:
    """Skip unless the installed Airflow is ``minimum`` or newer; the reason names both versions."""
    return pytest.mark.skipif(
        not airflow_at_least(minimum),
        reason=f"needs Airflow {minimum}+, installed {AIRFLOW_VERSION}: {why}",
    )


def requires_airflow_below(limit: str, *, why: str) -> pytest.MarkDecorator:
    """Skip on ``limit`` and newer: for checks of behaviour that only older versions have."""
    return pytest.mark.skipif(
        airflow_at_least(limit),
        reason=f"applies before Airflow {limit} only, installed {AIRFLOW_VERSION}: {why}",
    )
