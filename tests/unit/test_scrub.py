"""scrub(): Signzy's messages lose the personal data they echo and keep what helps a user act.

Every value here is synthetic (a made-up PAN, an Aadhaar-shaped 1234 5678 9012, example.com addresses).
"""

from __future__ import annotations

import json

import pytest
import requests

from airflow_provider_signzy.privacy.scrub import scrub
from airflow_provider_signzy.utils.error_envelope import error_from_response, read_envelope


def answer(status: int, body: str, content_type: str = "application/json; charset=utf-8") -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body.encode()
    response.headers["Content-Type"] = content_type
    return response


def envelope(message: str, status: int = 422) -> requests.Response:
    return answer(status, json.dumps({"error": {"statusCode": status, "name": "ValidationError", "message": message}}))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # LoopBack's echoes of a value that is not a list
        (
            'could not create List from JSON string: "https://cdn.example/ABCDE1234F/front.jpg"',
            'could not create List from JSON string: "<redacted>"',
        ),
        (
            'could not create List from JSON string: "Asha \\"Verma\\""',
            'could not create List from JSON string: "<redacted>"',
        ),
        ('Items must be an array: {"name":"Asha Verma"}', 'Items must be an array: {"<redacted>":"<redacted>"}'),
        ('`name` is invalid (value: "Asha Verma").', '`name` is invalid (value: "<redacted>").'),
        # double quotes: always a value, even a short one; an unclosed one hides the rest
        ('Unknown "identity" id "a1".', 'Unknown "<redacted>" id "<redacted>".'),
        ('cut short: "Asha Verma, 12 Exam', 'cut short: "<redacted>"'),
        ('empty "" stays', 'empty "" stays'),
        # single quotes and backquotes: field names stay, values go
        ("`callbackUrl` must be a URL", "`callbackUrl` must be a URL"),
        ("`address.city` can't be blank", "`address.city` can't be blank"),
        ("'pan' is invalid: 'Asha Verma'", "'pan' is invalid: '<redacted>'"),
        ("name is 'Asha'", "name is '<redacted>'"),
        ("name is `Asha Verma`", "name is `<redacted>`"),
        ("value `asha.verma@example.com`", "value `<redacted>`"),
        # shapes outside quotes
        ("document at https://cdn.example/ABCDE1234F/front.jpg.", "document at <url>."),
        ("see www.example.com/asha", "see <url>"),
        ("mail asha.verma@example.com now", "mail <email> now"),
        ("PAN ABCDE1234F is invalid", "PAN <pan> is invalid"),
        ("pan abcde1234f", "pan <pan>"),
        ("POST /api/v2/patrons/p1/identities/ABCDE1234F", "POST /api/v2/patrons/p1/identities/<pan>"),
        ("aadhaar 1234 5678 9012 given", "aadhaar <aadhaar> given"),
        ("aadhaar 1234-5678-9012", "aadhaar <aadhaar>"),
        ("aadhaar 123456789012", "aadhaar <aadhaar>"),
        ("call +91 98765 43210", "call <phone>"),
        ("call +91-98765-43210 or 9876543210", "call <phone> or <phone>"),
        ("call +919876543210", "call <phone>"),
        ("call 098765 43210", "call <phone>"),
        ("ref 4012345 and 1234567890123", "ref <number> and <number>"),
    ],
)
def test_each_shape_is_replaced(text: str, expected: str) -> None:
    assert scrub(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "The `identity` instance is not valid. Details: `type` can't be blank (value: undefined).",
        "login failed",
        "Authorization Required",
        "Rate limit exceeded",
        "accessToken is required to logout",
        "Unexpected token in JSON at position 12",
        "502 Bad Gateway",
        "There is no method to handle GET /api/v2/patrons/patron-demo-0001/identities",
        "ttl must be a number of seconds",
        "Invalid Access Token, retry at 2023-03-02T15:21:31.457Z",
    ],
)
def test_useful_text_survives(text: str) -> None:
    assert scrub(text) == text


def test_scrubbing_twice_changes_nothing_more() -> None:
    once = scrub(
        "`name` 'Asha Verma' \"x\" https://cdn.example/a asha.verma@example.com ABCDE1234F "
        "1234 5678 9012 +91 98765 43210 12345678"
    )
    assert scrub(once) == once


def test_known_values_go_whole_word_and_percent_encoded() -> None:
    text = "There is no method to handle POST /identities/Asha%20Verma (Asha Verma; Ashanti stays)"
    assert scrub(text, values=["Asha Verma", "Asha"]) == (
        "There is no method to handle POST /identities/<redacted> (<redacted>; Ashanti stays)"
    )


# -- in the envelope: SignzyError text, signzy_message, HTML titles ---------------------------------


def test_read_envelope_scrubs_the_message() -> None:
    status, code, message = read_envelope(envelope('`images` could not create List from JSON string: "Asha Verma"'))
    assert (status, code) == (422, None)
    assert message == '`images` could not create List from JSON string: "<redacted>"'


def test_the_error_and_its_signzy_message_are_scrubbed() -> None:
    response = envelope("The `identity` instance is not valid. Details: `phone` is invalid (value: +91 98765 43210).")
    error = error_from_response(response, method="POST", path="/api/v2/patrons/p1/identities", conn_id="signzy_x")
    for shown in (str(error), error.signzy_message or ""):
        assert "98765" not in shown
        assert "`phone` is invalid (value: <phone>)" in shown
    assert "Signzy answered 422 to POST /api/v2/patrons/p1/identities" in str(error)


def test_a_long_message_is_scrubbed_before_it_is_cut() -> None:
    """Cut first, the phone number at the cut would leave its first digits behind."""
    _, _, message = read_envelope(envelope("x" * 295 + " 9876543210 more"))
    assert "9876" not in message
    assert len(message) == 300


def test_sent_path_values_are_scrubbed_from_the_message() -> None:
    response = envelope("There is no method to handle POST /identities/Asha%20Verma", status=404)
    error = error_from_response(
        response,
        method="POST",
        path="/api/v2/patrons/p1/identities/{name}",
        conn_id=None,
        sent_path="/api/v2/patrons/p1/identities/Asha%20Verma",
    )
    assert "Asha" not in str(error)
    assert "POST /api/v2/patrons/p1/identities/{name}" in str(error)


def test_html_titles_are_scrubbed() -> None:
    page = "<html><head><title>502 upstream asha.verma@example.com failed</title></head></html>"
    _, _, message = read_envelope(answer(502, page, "text/html"))
    assert message == "an HTML page '502 upstream <email> failed' instead of JSON (likely a proxy)"
