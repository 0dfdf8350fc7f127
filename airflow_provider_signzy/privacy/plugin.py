"""The ``signzy`` Airflow plugin: template macros that open sealed results.

``{{ macros.signzy.unseal(ti.xcom_pull(task_ids='create_identity')) }}`` opens a sealed result inside a
template. Whatever a template renders is stored as a rendered field of *that* task: open values only in
the provider's own body fields (``json``, ``items``, ``query_params``, ``headers``), which store the shape,
or in fields of your own that Airflow does not store. Registered through the ``airflow.plugins`` entry
point (always loaded) and the provider info's ``plugins`` (loaded when providers are discovered eagerly).
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin


def unseal(value: Any, signzy_conn_id: str | None = None) -> Any:
    """Open every sealed value in ``value`` (see :func:`airflow_provider_signzy.privacy.unseal`)."""
    from airflow_provider_signzy.privacy.sealing import unseal as _unseal

    return _unseal(value, signzy_conn_id=signzy_conn_id)


class SignzyPlugin(AirflowPlugin):
    name = "signzy"
    macros = [unseal]
