"""A known dependency break is named where Airflow would say "Connection not found".

The real break (Airflow 3.0.x with cryptography 51+) cannot be installed in the suite's virtualenvs: the
freezes pin cryptography 50.0.2 on 3.0. So the installed versions are what is substituted here, only
them; the hook, Airflow's connection lookup and the error path are real. docs/compatibility.md shows the
same message from a real 3.0.6 install with cryptography 51.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from airflow_provider_signzy.exceptions import SignzyConfigError
from airflow_provider_signzy.hooks.signzy import SignzyHook
from airflow_provider_signzy.utils import dependency_guard

MakeConn = Callable[..., str]


def installed(versions: dict[str, str]) -> Callable[[str], str]:
    return lambda distribution: versions[distribution]


@pytest.mark.parametrize("airflow", ["3.0.6", "3.1.8"])
def test_airflow_3_0_or_3_1_with_cryptography_51_is_named_instead_of_a_missing_connection(
    monkeypatch: pytest.MonkeyPatch, airflow: str
) -> None:
    monkeypatch.setattr(dependency_guard, "version", installed({"apache-airflow": airflow, "cryptography": "51.0.1"}))
    with pytest.raises(SignzyConfigError) as raised:
        SignzyHook("signzy_not_defined_anywhere").login()
    message = str(raised.value)
    assert f"Airflow {airflow} cannot decrypt connections with cryptography 51.0.1" in message
    assert "pip install 'cryptography<51'" in message
    assert "upgrade Airflow to 3.2" in message
    assert "signzy_not_defined_anywhere" in message


@pytest.mark.parametrize(
    ("airflow", "cryptography"),
    [("3.0.6", "50.0.2"), ("3.1.8", "50.0.2"), ("3.2.2", "51.0.1"), ("3.3.2", "51.0.1")],
)
def test_pairs_that_work_keep_the_missing_connection_message(
    monkeypatch: pytest.MonkeyPatch, airflow: str, cryptography: str
) -> None:
    monkeypatch.setattr(
        dependency_guard, "version", installed({"apache-airflow": airflow, "cryptography": cryptography})
    )
    with pytest.raises(SignzyConfigError) as raised:
        SignzyHook("signzy_not_defined_anywhere").login()
    assert "There is no Airflow connection 'signzy_not_defined_anywhere'" in str(raised.value)
    assert "cryptography" not in str(raised.value)


def test_the_installed_pair_is_not_a_known_break() -> None:
    # Every freeze in constraints/ must install a working pair: this fails on one that does not.
    assert dependency_guard.known_dependency_break() is None


def test_a_defined_connection_is_read_whatever_the_versions_say(
    monkeypatch: pytest.MonkeyPatch, make_conn: MakeConn
) -> None:
    # The guard speaks only when Airflow reported the connection missing: it never blocks a working install.
    monkeypatch.setattr(dependency_guard, "version", installed({"apache-airflow": "3.0.6", "cryptography": "51.0.1"}))
    hook = SignzyHook(make_conn("signzy_guarded"))
    hook.logout(hook.login())
