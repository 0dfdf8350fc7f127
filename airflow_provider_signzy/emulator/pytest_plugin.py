"""Pytest fixtures for DAG tests against a local Signzy; opt in from your ``conftest.py``::

    pytest_plugins = ["airflow_provider_signzy.emulator.pytest_plugin"]

(Not registered for every pytest run of every environment the provider is installed in.)

``signzy_emulator`` starts one emulator per test on a free 127.0.0.1 port, with the default patron
``demo`` / ``demo-api-key-0123456789``; ``signzy_connection_env`` also points ``signzy_default`` at it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from airflow_provider_signzy.emulator.server import DEFAULT_PATRONS, SignzyEmulator


def connection_json(url: str, *, login: str | None = None, password: str | None = None, **extra: object) -> str:
    """An ``AIRFLOW_CONN_...`` value for a ``signzy`` connection to ``url``."""
    patron = DEFAULT_PATRONS[0]
    return json.dumps(
        {
            "conn_type": "signzy",
            "host": url,
            "login": patron.username if login is None else login,
            "password": patron.api_key if password is None else password,
            "extra": extra,
        }
    )


@pytest.fixture
def signzy_emulator() -> Iterator[SignzyEmulator]:
    with SignzyEmulator() as emulator:
        yield emulator


@pytest.fixture
def signzy_connection_env(signzy_emulator: SignzyEmulator) -> Iterator[SignzyEmulator]:
    name = "AIRFLOW_CONN_SIGNZY_DEFAULT"
    before = os.environ.get(name)
    os.environ[name] = connection_json(signzy_emulator.url)
    try:
        yield signzy_emulator
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before
