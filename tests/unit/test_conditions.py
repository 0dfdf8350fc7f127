"""success_when / failure_when: dotted paths into the JSON answer, checked as plain data."""

from __future__ import annotations

import pytest

from airflow_provider_signzy.utils.answer_conditions import all_match, first_match, normalize

BODY = {"status": "verified", "result": {"checks": [{"name": "pan", "ok": True}], "score": 0}}


def test_paths_reach_nested_values_and_list_items() -> None:
    assert all_match(BODY, normalize({"status": ["verified", "completed"]}, name="s"))
    assert all_match(BODY, normalize({"result.checks.0.name": "pan", "result.score": 0}, name="s"))
    assert not all_match(BODY, normalize({"result.checks.1.name": "pan"}, name="s"))  # no such item
    assert not all_match(BODY, normalize({"status": "verified", "result.score": 1}, name="s"))  # all must hold
    assert not all_match(BODY, {})  # no condition is not success


def test_failure_when_names_the_matching_path_and_value() -> None:
    conditions = normalize({"result.missing": "x", "status": ["rejected", "verified"]}, name="f")
    assert first_match(BODY, conditions) == ("status", "verified")
    assert first_match({"status": "pending"}, conditions) is None


def test_booleans_and_numbers_are_not_confused() -> None:
    assert not all_match({"ok": 1}, normalize({"ok": True}, name="s"))
    assert all_match({"ok": True}, normalize({"ok": True}, name="s"))
    assert not all_match({"n": True}, normalize({"n": 1}, name="s"))


@pytest.mark.parametrize("bad", [["status"], {"": "x"}, {"a..b": "x"}, {"status": {"nested": 1}}])
def test_malformed_conditions_are_refused_by_name(bad: object) -> None:
    with pytest.raises(ValueError, match="success_when"):
        normalize(bad, name="success_when")  # type: ignore[arg-type]


def test_sensor_needs_something_that_ends_the_wait() -> None:
    from airflow_provider_signzy.sensors.signzy import SignzySensor

    with pytest.raises(ValueError, match="needs success_when or response_check"):
        SignzySensor(task_id="wait", endpoint="/x")
    sensor = SignzySensor(task_id="wait", endpoint="/x", success_when={"status": "verified"})
    assert sensor.success_when == {"status": ["verified"]}
    assert sensor.deferrable is False  # Airflow's [operators] default_deferrable, off by default
