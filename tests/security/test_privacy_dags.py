"""Customers' personal data never lands in the clear: whole DAG runs, then every table, log file and console.

Like the secret tests, with synthetic KYC data (never a real PAN or Aadhaar number) in every way a body
reaches the provider: literal in the DAG, templated from the run's conf, the whole body from conf, batch
items from an upstream task's XCom (sealed there with ``seal()``), a body opened with the ``signzy``
macro, Signzy's answers (the emulator keeps and returns each customer's fields), a sensor's answer (its
trigger event and its XCom) and Signzy's error that echoes an input value, as LoopBack does. Each value is
looked for raw, JSON-escaped, URL-quoted and base64-encoded (tests/pii_scan.py).

What the DAG's author wrote or passed in (the DAG file and its parsed form, the run's conf) is stored by
Airflow as given: those columns are scanned apart, and the test checks that the literal values *are* found
there, which proves the scanner finds what it looks for.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dagrun import console_text, run_dag, task_states
from pii_scan import db_texts, find, scan

from airflow_provider_signzy.emulator import SignzyEmulator
from airflow_provider_signzy.emulator.pytest_plugin import connection_json
from airflow_provider_signzy.privacy import is_sealed, seal, unseal

pytestmark = pytest.mark.dagrun
IDENTITIES = "/api/v2/patrons/{patron_id}/identities"
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def customer(tag: str, pan: str) -> dict[str, Any]:
    """A synthetic customer: every value is made up and carries ``tag``, so a finding says where it came from."""
    return {
        "type": "individualPan",
        "name": f"Testcase {tag}-Person",
        "pan": pan,
        "dob": f"19{ord(tag[0]) % 90 + 10}-02-2{len(tag)}",
        "address": f"{ord(tag[0])} Sample Road {tag}, Testnagar",
        "phone": f"+91 9{ord(tag[0]):03d}0 1{len(tag)}{ord(tag[-1]) % 100:02d}4",
        "email": f"customer.{tag.lower()}@example.com",
    }


LITERAL = customer("LIT", "AAAAA1111A")
TEMPLATED = customer("TPL", "BBBBB2222B")
FROM_CONF = customer("CONF", "CCCCC3333C")
BATCH = [customer("BAT1", "DDDDD4444D"), customer("BAT2", "EEEEE5555E")]
#: Not a list: Signzy (LoopBack) answers 400 and quotes this value in its message.
ECHOED = "https://cdn.example.test/FFFFF6666F/front.jpg"
BATCH_ECHOED = "https://cdn.example.test/GGGGG7777G/back.jpg"


def personal_values(*customers: dict[str, Any]) -> list[str]:
    return [str(v) for c in customers for k, v in c.items() if k != "type"]


ALL_VALUES = [*personal_values(LITERAL, TEMPLATED, FROM_CONF, *BATCH), ECHOED, BATCH_ECHOED]


@pytest.fixture
def kyc_emulator(monkeypatch: pytest.MonkeyPatch, airflow_db: None) -> Iterator[SignzyEmulator]:
    """Identities move to 'verified' a moment after they are created, as a person's review would."""
    with SignzyEmulator(auto_status=("verified", 0.3)) as emu:
        monkeypatch.setenv("AIRFLOW_CONN_SIGNZY_DEFAULT", connection_json(emu.url, backoff_initial=0.01))
        yield emu


def privacy_dag() -> Any:
    from airflow.sdk import DAG, task

    from airflow_provider_signzy.operators.batch import SignzyBatchOperator
    from airflow_provider_signzy.operators.signzy import SignzyLoginOperator, SignzyLogoutOperator, SignzyOperator
    from airflow_provider_signzy.sensors.signzy import SignzySensor

    literal_id = "{{ ti.xcom_pull(task_ids='literal')['id'] }}"
    with DAG("privacy_everywhere", schedule=None, start_date=START, render_template_as_native_obj=True) as dag:
        login = SignzyLoginOperator(token_ttl=600)
        literal = SignzyOperator(task_id="literal", method="POST", endpoint=IDENTITIES, json=LITERAL)
        templated = SignzyOperator(
            task_id="templated",
            method="POST",
            endpoint=IDENTITIES,
            json={key: f"{{{{ dag_run.conf['templated']['{key}'] }}}}" for key in TEMPLATED},
        )
        from_conf = SignzyOperator(
            task_id="from_conf", method="POST", endpoint=IDENTITIES, json="{{ dag_run.conf['customer'] }}"
        )

        @task
        def new_customers() -> Any:
            """What a user's query task returns: bodies sealed before they reach XCom."""
            return seal([*BATCH, {"type": "individualPan", "images": BATCH_ECHOED}])

        batch = SignzyBatchOperator(task_id="batch", endpoint=IDENTITIES, items=new_customers(), max_concurrency=2)
        echoed = SignzyOperator(
            task_id="echoed", method="POST", endpoint=IDENTITIES, json={"type": "individualPan", "images": ECHOED}
        )
        # The sealed answer's id still works in a template; its answer is read back sealed.
        read_back = SignzyOperator(task_id="read_back", endpoint=f"{IDENTITIES}/{literal_id}")
        wait = SignzySensor(
            task_id="wait",
            endpoint=f"{IDENTITIES}/{literal_id}",
            query_params={"ref": "{{ dag_run.conf['templated']['pan'] }}"},  # into the trigger's kwargs too
            success_when={"status": "verified"},
            poke_interval=0.2,
            timeout=60,
            deferrable=True,
        )
        poke = SignzySensor(
            task_id="poke",
            endpoint=f"{IDENTITIES}/{literal_id}",
            success_when={"status": "verified"},
            poke_interval=0.2,
            timeout=60,
            deferrable=False,
        )
        # The template macro opens a sealed answer inside a body field (which stores only its shape).
        from_macro = SignzyOperator(
            task_id="from_macro",
            method="POST",
            endpoint=IDENTITIES,
            json="{{ macros.signzy.unseal(ti.xcom_pull(task_ids='templated')) }}",
        )

        @task
        def check(created: Any, results: Any, waited: Any, poked: Any, copied: Any) -> dict[str, int]:
            """A downstream task opens sealed results in one call each; it returns no personal data."""
            assert all(is_sealed(v) for v in (created, waited, poked, copied))
            assert unseal(created)["pan"] == LITERAL["pan"]
            assert unseal(waited)["pan"] == LITERAL["pan"]
            assert waited["status"] == "verified"
            assert unseal(poked)["name"] == LITERAL["name"]
            assert unseal(copied)["pan"] == TEMPLATED["pan"]
            opened = unseal(results)
            assert [r["response"]["pan"] for r in opened[:2]] == [c["pan"] for c in BATCH]
            return {"customers": len(opened)}

        logout = SignzyLogoutOperator()
        checked = check(literal.output, batch.output, wait.output, poke.output, from_macro.output)
        login >> [literal, templated, from_conf, batch, echoed]
        literal >> [read_back, wait, poke]
        templated >> from_macro
        [checked, read_back, from_conf, echoed] >> logout.as_teardown(setups=login)
    return dag


def test_no_personal_data_in_the_clear_anywhere(kyc_emulator: SignzyEmulator, capfd: Any) -> None:
    run = run_dag(privacy_dag(), run_conf={"templated": TEMPLATED, "customer": FROM_CONF})
    states = task_states(run)
    expected = dict.fromkeys(states, "success") | {"echoed": "failed"}
    assert states == expected
    console = console_text(capfd)

    # The data did reach Signzy (so its answers carried it back), and Signzy's echo was seen, scrubbed.
    held = json.dumps(list(kyc_emulator.state.identities.values()))
    for person in (LITERAL, TEMPLATED, FROM_CONF, *BATCH):
        assert person["pan"] in held
        assert person["name"] in held
    assert "could not create List" in console
    [ti] = [t for t in run.get_task_instances() if t.task_id == "batch"]
    [echo_item] = [r for r in ti.xcom_pull(task_ids="batch") if not r["ok"]]
    assert "could not create List" in echo_item["error"]

    findings = scan(ALL_VALUES, console=console, log_root=os.environ["AIRFLOW__LOGGING__BASE_LOG_FOLDER"])
    assert not findings, "\n".join(map(str, findings))

    # The scanner finds what the DAG's author wrote: the literal body in the parsed DAG, the conf as given.
    authored = find(ALL_VALUES, db_texts(authored=True))
    assert {f.value for f in authored if f.where.startswith("serialized_dag")} >= set(personal_values(LITERAL))
    assert {f.value for f in authored if f.where == "dag_run.conf"} >= set(personal_values(TEMPLATED, FROM_CONF))
    assert kyc_emulator.state.snapshot()["live_tokens"] == 0


def test_rendered_fields_show_the_shape_of_bodies(kyc_emulator: SignzyEmulator) -> None:
    from airflow.models.renderedtifields import RenderedTaskInstanceFields as Rtif
    from airflow.sdk import DAG
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from airflow_provider_signzy.operators.batch import SignzyBatchOperator
    from airflow_provider_signzy.operators.signzy import SignzyOperator

    with DAG("privacy_rendered", schedule=None, start_date=START) as dag:
        SignzyOperator(
            task_id="one",
            method="POST",
            endpoint=IDENTITIES,
            json={"type": "individualPan", "pan": "{{ dag_run.conf['pan'] }}", "images": []},
            query_params={"ref": "{{ dag_run.conf['pan'] }}"},
            result_privacy="plain",  # this test reads the rendered fields only
        )
        SignzyBatchOperator(task_id="many", endpoint=IDENTITIES, items=[LITERAL, TEMPLATED], result_privacy="plain")
    run = run_dag(dag, run_conf={"pan": "HHHHH8888H"})
    assert str(run.state) == "success", task_states(run)
    with create_session() as session:
        rows = dict(session.execute(select(Rtif.task_id, Rtif.rendered_fields).where(Rtif.dag_id == dag.dag_id)).all())
    assert rows["one"]["json"] == {"type": "<str, 13 chars>", "pan": "<str, 10 chars>", "images": ["<list, 0 items>"]}
    assert rows["one"]["query_params"] == {"ref": "<str, 10 chars>"}
    assert rows["many"]["items"][0] == "<list, 2 items>"
    assert rows["many"]["items"][1]["pan"] == "<str, 10 chars>"
    assert rows["one"]["endpoint"] == IDENTITIES  # other fields render as before
    assert "HHHHH8888H" in json.dumps(list(kyc_emulator.state.identities.values()))  # the real body was sent


def test_plain_results_for_endpoints_without_personal_data(kyc_emulator: SignzyEmulator) -> None:
    from airflow.sdk import DAG

    from airflow_provider_signzy.operators.signzy import SignzyOperator

    with DAG("privacy_plain", schedule=None, start_date=START) as dag:
        SignzyOperator(task_id="patron", endpoint="/api/v2/patrons/{patron_id}", result_privacy="plain")
    run = run_dag(dag)
    [ti] = run.get_task_instances()
    assert ti.xcom_pull(task_ids="patron")["id"] == "patron-demo-0001"


def test_log_files_are_scanned(tmp_path: Path) -> None:
    # The scanner itself: a value in any of its forms is found, in a file as on the console.
    import base64
    from urllib.parse import quote

    from pii_scan import log_texts

    pan = LITERAL["pan"]
    (tmp_path / "a.log").write_text(f"x {base64.b64encode(('pan=' + pan).encode()).decode()} y")
    (tmp_path / "b.log").write_text(quote(LITERAL["address"]))
    found = find([pan, LITERAL["address"], "not-there-123"], log_texts(tmp_path))
    assert {(f.value, Path(f.where).name) for f in found} == {(pan, "a.log"), (LITERAL["address"], "b.log")}
