"""The installed wheel registers with Airflow: provider, connection type and its form."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import distribution
from pathlib import Path

from airflow_version import requires_airflow

import airflow_provider_signzy
from airflow_provider_signzy.hooks.signzy import SignzyHook
from airflow_provider_signzy.utils.connection_form import CONN_FIELDS, UI_FIELD_BEHAVIOUR

REPO = Path(__file__).resolve().parents[2]


def test_tests_run_against_the_installed_wheel_not_the_source_tree() -> None:
    location = Path(airflow_provider_signzy.__file__).resolve()
    assert REPO / "airflow_provider_signzy" not in location.parents
    assert "site-packages" in location.parts
    dist = distribution("airflow-provider-signzy")
    files = {str(f) for f in dist.files or []}
    assert "airflow_provider_signzy/emulator/server.py" in files
    entry_points = {ep.group: ep.value for ep in dist.entry_points}
    assert entry_points["apache_airflow_provider"] == "airflow_provider_signzy:get_provider_info"


def test_providers_manager_lists_the_provider_and_its_hook() -> None:
    from airflow.providers_manager import ProvidersManager

    provider = ProvidersManager().providers["airflow-provider-signzy"]
    assert provider.version == airflow_provider_signzy.__version__
    try:  # 3.2+: tasks resolve hooks through the Task SDK's own manager
        from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

        hooks = ProvidersManagerTaskRuntime().hooks
    except ImportError:  # before 3.2: core's ProvidersManager serves tasks too
        hooks = ProvidersManager().hooks
    hook = hooks["signzy"]
    assert hook is not None
    assert hook.hook_class_name == "airflow_provider_signzy.hooks.signzy.SignzyHook"
    assert hook.connection_id_attribute_name == "signzy_conn_id"


def test_wtforms_is_a_dependency_of_a_plain_install() -> None:
    """Airflow 3.0/3.1 (and 2.11) build every hook's form from WTForms classes: without it, no form."""
    requires = distribution("airflow-provider-signzy").requires or []
    assert any(r.lower().startswith("wtforms") and "extra ==" not in r for r in requires), requires


# What the Connections page asks the API server for, in a fresh process as a newly started API server has:
# 3.1's HookMetaService swaps WTForms for stand-ins only while it first loads the hooks, so in a process
# where the hooks were loaded before (an earlier test here) it would see real fields and drop them.
HOOK_META = """
import json
from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService
(meta,) = [m for m in HookMetaService.hook_meta_data() if m.connection_type == "signzy"]
print(json.dumps(meta.model_dump(mode="json")))
"""


@requires_airflow("3.0", why="the React UI's hook metadata service is new in 3.0 (2.11 serves a FAB form)")
def test_connection_form_as_the_ui_serves_it() -> None:
    result = subprocess.run(
        [sys.executable, "-c", HOOK_META], capture_output=True, text=True, env=os.environ.copy(), timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    meta = json.loads(result.stdout.strip().splitlines()[-1])
    fields = meta["standard_fields"]
    assert fields is not None, "no labels: the form was not built (WTForms missing on 3.0?)"
    assert (fields["host"]["title"], fields["host"]["placeholder"]) == ("Base URL", "https://signzy.tech")
    assert fields["login"]["title"] == "Username"
    assert fields["password"]["title"] == "API key"
    assert fields["port"]["hidden"]
    assert fields["url_schema"]["hidden"]
    extras = meta["extra_fields"] or {}
    assert set(extras) == set(CONN_FIELDS)
    assert extras["xcom_fernet_key"]["schema"]["format"] == "password"
    assert extras["token_in"]["schema"]["enum"] == ["header", "query"]
    assert extras["token_ttl"]["schema"]["type"] == ["integer", "null"]
    assert extras["verify"]["schema"]["type"] == ["boolean", "null"]


def test_airflow_providers_cli_lists_it() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "list", "--output", "plain"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "airflow-provider-signzy" in result.stdout


def test_hook_methods_for_airflow_3_0_and_3_1_mirror_the_provider_info() -> None:
    from wtforms import BooleanField, IntegerField, PasswordField, StringField

    behaviour = SignzyHook.get_ui_field_behaviour()
    assert behaviour == {
        "hidden_fields": UI_FIELD_BEHAVIOUR["hidden-fields"],
        "relabeling": UI_FIELD_BEHAVIOUR["relabeling"],
        "placeholders": UI_FIELD_BEHAVIOUR["placeholders"],
    }
    widgets = SignzyHook.get_connection_form_widgets()
    assert set(widgets) == set(CONN_FIELDS)
    assert widgets["xcom_fernet_key"].field_class is PasswordField
    assert widgets["verify"].field_class is BooleanField
    assert widgets["max_attempts"].field_class is IntegerField
    assert widgets["timeout"].field_class is StringField  # Airflow's form has no float field
    for name, spec in CONN_FIELDS.items():
        assert widgets[name].args[0] == spec["label"]
