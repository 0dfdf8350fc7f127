"""docker-compose.yaml and the Dockerfile, checked without a Docker engine (none runs here)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
AIRFLOW_SERVICES = {
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-worker",
    "airflow-triggerer",
    "airflow-init",
}
LONG_RUNNING = {"postgres", "redis", "signzy-emulator"} | AIRFLOW_SERVICES - {"airflow-init"}
_VAR = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def with_defaults(value: str) -> str:
    """What docker compose would substitute with an empty environment."""
    return _VAR.sub(lambda m: m.group(2) or "", value)


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    compose = yaml.safe_load((REPO / "docker-compose.yaml").read_text())  # resolves the <<: merges
    return compose["services"]


def makefile_airflow_version() -> str:
    match = re.search(r"^DEFAULT_AIRFLOW_VERSION := (\S+)$", (REPO / "Makefile").read_text(), re.MULTILINE)
    assert match
    return match.group(1)


def test_celery_layout_and_emulator_are_present(services: dict[str, Any]) -> None:
    assert {"postgres", "redis", "signzy-emulator"} | AIRFLOW_SERVICES <= set(services)
    for name in AIRFLOW_SERVICES:
        assert services[name]["environment"]["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    commands = {name: services[name].get("command") for name in AIRFLOW_SERVICES - {"airflow-init"}}
    assert commands == {
        "airflow-apiserver": "api-server",
        "airflow-scheduler": "scheduler",
        "airflow-dag-processor": "dag-processor",
        "airflow-worker": "celery worker",
        "airflow-triggerer": "triggerer",
    }


def test_every_airflow_service_runs_the_image_with_the_provider(services: dict[str, Any]) -> None:
    images = {services[name]["image"] for name in AIRFLOW_SERVICES | {"signzy-emulator"}}
    assert len(images) == 1
    for name in AIRFLOW_SERVICES | {"signzy-emulator"}:
        assert services[name]["build"] == "."  # the Dockerfile next to it, which installs this package


def test_one_fernet_key_and_one_connection_everywhere(services: dict[str, Any]) -> None:
    keys = {with_defaults(services[n]["environment"]["AIRFLOW__CORE__FERNET_KEY"]) for n in AIRFLOW_SERVICES}
    assert len(keys) == 1
    (key,) = keys
    from cryptography.fernet import Fernet

    Fernet(key.encode())  # non-empty and valid: XCom tokens are really encrypted
    connections = {services[n]["environment"]["AIRFLOW_CONN_SIGNZY_DEFAULT"] for n in AIRFLOW_SERVICES}
    assert len(connections) == 1
    connection = json.loads(with_defaults(connections.pop()))
    assert connection["conn_type"] == "signzy"
    assert connection["host"] == "http://signzy-emulator:8089"
    secrets = {with_defaults(services[n]["environment"]["AIRFLOW__API_AUTH__JWT_SECRET"]) for n in AIRFLOW_SERVICES}
    assert len(secrets) == 1
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__TEST_CONNECTION"] == "Enabled"
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"


def test_emulator_patron_matches_the_connection(services: dict[str, Any]) -> None:
    connection = json.loads(with_defaults(services["airflow-worker"]["environment"]["AIRFLOW_CONN_SIGNZY_DEFAULT"]))
    patron = services["signzy-emulator"]["command"][services["signzy-emulator"]["command"].index("--patron") + 1]
    username, api_key = patron.split(":")[:2]
    assert (username, api_key) == (connection["login"], connection["password"])
    assert "8089" in services["signzy-emulator"]["command"]


def test_dags_examples_is_the_dags_folder(services: dict[str, Any]) -> None:
    for name in AIRFLOW_SERVICES:
        assert "./dags_examples:/opt/airflow/dags" in services[name]["volumes"]


def test_healthchecks_and_start_order(services: dict[str, Any]) -> None:
    for name in LONG_RUNNING:
        assert services[name]["healthcheck"]["test"], f"{name} has no healthcheck"
    for name in AIRFLOW_SERVICES:
        depends = services[name]["depends_on"]
        for backing in ("postgres", "redis", "signzy-emulator"):
            assert depends[backing]["condition"] == "service_healthy", (name, backing)
    for name in AIRFLOW_SERVICES - {"airflow-init"}:
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
    assert services["airflow-worker"]["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"
    assert services["airflow-init"]["environment"]["_AIRFLOW_DB_MIGRATE"] == "true"


def test_dockerfile_pins_the_airflow_it_extends() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    version = makefile_airflow_version()
    assert re.search(rf"^FROM apache/airflow:{re.escape(version)}$", dockerfile, re.MULTILINE)
    assert f"ARG AIRFLOW_VERSION={version}" in dockerfile
    assert '"apache-airflow==${AIRFLOW_VERSION}"' in dockerfile
    assert "airflow_provider_signzy" in dockerfile
    ignored = (REPO / ".dockerignore").read_text().split()
    assert ".venv" in ignored
