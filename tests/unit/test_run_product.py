"""Signzy's products by name through SignzyHook.run_product, against the emulator over real HTTP.

Every catalog product runs; bad inputs fail before anything is sent (no login, no request), naming the
product and the field, never the value; the identity's own token never reaches a log, an error or a result.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from product_inputs import product_kwargs, valid_essentials

from airflow_provider_signzy.emulator import SignzyEmulator
from airflow_provider_signzy.exceptions import SignzyInputError
from airflow_provider_signzy.hooks.signzy import SignzyHook
from airflow_provider_signzy.products import IDENTITY, PRODUCTS, ProductCall, get_product

MakeConn = Callable[..., str]
SECRET_PAN = "QWERT4321Y"  # synthetic, of the documented shape
DOC = "https://persist.example.com/b.jpg"


def sent(emulator: SignzyEmulator) -> int:
    return sum(emulator.state.snapshot()["requests"].values())


def identity_tokens(emulator: SignzyEmulator) -> list[str]:
    return [i["accessToken"] for i in emulator.state.identities.values() if i.get("accessToken")]


def test_catalog_names_are_document_dot_task() -> None:
    assert len(PRODUCTS) >= 30
    for name, product in PRODUCTS.items():
        assert re.fullmatch(r"[a-z]+(\.[a-z_]+)?", name), name
        assert product.flow in ("identity", "resource")
        assert product.source, f"{name} says where Signzy documents it"
        assert set(product.clear_fields) <= set(product.result_fields) | {"verification"}, name
    for required in ("pan.fetch", "pan.verification", "aadhaar.offline", "bankaccount.transfer", "facematch"):
        assert required in PRODUCTS


@pytest.mark.parametrize("name", sorted(PRODUCTS))
def test_every_product_runs_against_the_emulator(make_conn: MakeConn, emulator: SignzyEmulator, name: str) -> None:
    product = PRODUCTS[name]
    make_conn()
    with SignzyHook() as hook:
        result = hook.run_product(name, valid_essentials(product), **product_kwargs(product))
    assert result.product == name
    missing = [f for f in product.result_fields if f not in result and f not in ("ownerName",)]
    assert not missing, f"{name}: result lacks {missing}"
    state = emulator.state.snapshot()
    if product.flow == IDENTITY:
        assert result.identity_id in emulator.state.identities
        assert state["identities_created"] == 1
        assert state["snoops"] == 1
    assert "accessToken" not in result
    assert state["live_tokens"] == 0


def test_pan_verification_verdicts_follow_the_emulators_documented_inputs(make_conn: MakeConn) -> None:
    make_conn()
    with SignzyHook() as hook:
        positive = hook.run_product("pan.verification", {"number": SECRET_PAN, "name": "RAVI KUMAR"})
        negative = hook.run_product("pan.verification", {"number": SECRET_PAN, "name": "RAVI MISMATCH"})
        unknown = hook.run_product("pan.verification", {"number": "QWERT0000Y", "name": "RAVI KUMAR"})
    assert positive["verified"] is True
    assert negative["verified"] is False
    assert unknown["verified"] is False
    assert "not found" in unknown["message"].lower()


def test_a_fetch_of_an_unknown_pan_fails_without_quoting_it(make_conn: MakeConn) -> None:
    make_conn()
    with SignzyHook() as hook, pytest.raises(Exception) as raised:  # noqa: PT011 - the kind is Signzy's 404
        hook.run_product("pan.fetch", {"number": "QWERT0000Y"})
    assert "QWERT0000Y" not in str(raised.value)
    assert getattr(raised.value, "status", None) == 404


@pytest.mark.parametrize(
    ("product", "essentials", "images", "field", "words"),
    [
        ("pan.verfication", {}, None, None, "Did you mean 'pan.verification'"),
        ("pan.verification", {"number": SECRET_PAN}, None, "name", "is missing"),
        ("pan.verification", {"number": "QWERT4321", "name": "RAVI KUMAR"}, None, "number", "AAAAA9999A"),
        ("pan.verification", {"number": SECRET_PAN, "name": "R", "fuzzy": True}, None, "fuzzy", '"true" or "false"'),
        ("drivinglicence.fetch", {"number": "SYN123", "dob": "1990-08-15"}, None, "dob", "dd/mm/yyyy"),
        ("passport.extraction", {}, ["https://persist.example.com/front.jpg"], "images", "two images"),
        ("pan.extraction", {}, None, "images", "at least one image"),
        ("pan.fetch", {"number": SECRET_PAN}, ["https://persist.example.com/x.jpg"], "images", "takes no images"),
        ("aadhaar.offline", {"url": "https://persist.example.com/a.zip"}, None, "email", "email="),
        ("id.classification", {}, ["https://persist.example.com/x.jpg"], "identity_type", "identity_type="),
        (
            "facematch",
            {"firstImage": "file:///etc/passwd", "secondImage": "https://x.example/b.jpg"},
            None,
            "firstImage",
            "a URL",
        ),
    ],
)
def test_bad_inputs_fail_before_anything_is_sent(
    make_conn: MakeConn,
    emulator: SignzyEmulator,
    caplog: pytest.LogCaptureFixture,
    product: str,
    essentials: dict[str, object],
    images: list[str] | None,
    field: str | None,
    words: str,
) -> None:
    make_conn()
    with SignzyHook() as hook, pytest.raises(SignzyInputError) as raised:
        hook.run_product(product, essentials, images=images)
    message = str(raised.value)
    assert words in message
    assert raised.value.field == field
    if field is not None:
        assert repr(field) in message or f"{field}=" in message
    for value in ("QWERT4321", SECRET_PAN, "1990-08-15", "/etc/passwd"):
        assert value not in message
        assert value not in caplog.text
    assert sent(emulator) == 0  # not even a login: nothing paid, nothing sent


def test_an_input_error_fails_the_task_without_retries() -> None:
    from airflow.providers.common.compat.sdk import AirflowFailException

    with pytest.raises(AirflowFailException):
        ProductCall.prepare("pan.verification", {"number": "nope", "name": "X"})


def test_overrides_reach_signzy(make_conn: MakeConn, emulator: SignzyEmulator) -> None:
    make_conn()
    with SignzyHook() as hook:
        hook.run_product(
            "pan.extraction",
            {"extraField": "kept"},
            images=["https://persist.example.com/front.jpg"],
            identity_type="businessPan",
        )
    [identity] = emulator.state.identities.values()
    assert identity["type"] == "businessPan"


def test_the_identity_token_never_reaches_a_log_an_error_or_the_result(
    make_conn: MakeConn, emulator: SignzyEmulator, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    make_conn()
    with SignzyHook() as hook:
        result = hook.run_product("pan.verification", {"number": SECRET_PAN, "name": "RAVI KUMAR"})
        with pytest.raises(Exception) as raised:  # noqa: PT011 - any failure: its text is what is checked
            hook.run_product("pan.fetch", {"number": "QWERT0000Y"})
    [token, _] = identity_tokens(emulator)
    assert token
    out = capfd.readouterr()
    for text in (out.out, out.err, caplog.text, str(raised.value), repr(dict(result))):
        assert token not in text
        assert SECRET_PAN not in text
    assert result.answer["accessToken"] == token  # reachable on purpose in the task's own process only


def test_get_product_is_the_catalog() -> None:
    assert get_product("pan.fetch") is PRODUCTS["pan.fetch"]
    assert PRODUCTS["pan.verification"].clear_fields == ("verified",)
    assert PRODUCTS["pan.fetch"].clear_fields == ()
