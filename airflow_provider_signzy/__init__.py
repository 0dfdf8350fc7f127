"""Apache Airflow provider for Signzy: hook, operators, token revocation and a local Signzy emulator."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

PACKAGE_NAME = "airflow-provider-signzy"


def get_provider_info() -> dict[str, Any]:
    """Provider metadata for Airflow's ProvidersManager (the ``apache_airflow_provider`` entry point)."""
    from airflow_provider_signzy.utils.connection_form import CONN_FIELDS, CONN_TYPE, UI_FIELD_BEHAVIOUR

    return {
        "package-name": PACKAGE_NAME,
        "name": "Signzy",
        "description": (
            "Signzy KYC and identity-verification API: hook, operators, a deferrable sensor and token revocation."
        ),
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Signzy",
                "external-doc-url": "https://docs.signzy.com/",
                "tags": ["service"],
            }
        ],
        "hooks": [{"integration-name": "Signzy", "python-modules": ["airflow_provider_signzy.hooks.signzy"]}],
        "operators": [
            {
                "integration-name": "Signzy",
                "python-modules": [
                    "airflow_provider_signzy.operators.signzy",
                    "airflow_provider_signzy.operators.batch",
                    "airflow_provider_signzy.operators.product",
                ],
            }
        ],
        "sensors": [{"integration-name": "Signzy", "python-modules": ["airflow_provider_signzy.sensors.signzy"]}],
        "triggers": [
            {
                "integration-name": "Signzy",
                "python-modules": [
                    "airflow_provider_signzy.triggers.signzy",
                    "airflow_provider_signzy.triggers.events",
                ],
            }
        ],
        # Also registered through the `airflow.plugins` entry point: Airflow loads provider plugins only when
        # providers are discovered eagerly ([core] lazy_discover_providers = False).
        "plugins": [{"name": "signzy", "plugin-class": "airflow_provider_signzy.privacy.plugin.SignzyPlugin"}],
        "connection-types": [
            {
                "hook-class-name": "airflow_provider_signzy.hooks.signzy.SignzyHook",
                "hook-name": "Signzy",
                "connection-type": CONN_TYPE,
                "conn-fields": CONN_FIELDS,
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
            }
        ],
    }
