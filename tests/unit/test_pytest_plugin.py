"""The emulator's pytest fixtures, opted in the way the README says (tests/conftest.py's pytest_plugins)."""

from __future__ import annotations

from importlib.metadata import distribution

from airflow_provider_signzy.emulator import SignzyEmulator
from airflow_provider_signzy.hooks.signzy import SignzyHook


def test_signzy_connection_env_points_the_default_connection_at_a_fresh_emulator(
    signzy_connection_env: SignzyEmulator,
) -> None:
    with SignzyHook() as hook:
        assert hook.get_token().user_id == "patron-demo-0001"
    state = signzy_connection_env.state.snapshot()
    assert (state["logins"], state["live_tokens"]) == (1, 0)


def test_installing_the_provider_registers_no_pytest_plugin() -> None:
    groups = {ep.group for ep in distribution("airflow-provider-signzy").entry_points}
    assert "pytest11" not in groups  # opt-in only: no fixtures pushed into every environment
