"""Which failures the retry policy resends, decided from the failure alone."""

from __future__ import annotations

import pytest

from airflow_provider_signzy.exceptions import (
    SignzyAuthError,
    SignzyClientError,
    SignzyConnectionError,
    SignzyPermissionError,
    SignzyRateLimitError,
    SignzyServerError,
)
from airflow_provider_signzy.utils.retry_policy import is_transient, planned_wait_bounds, safe_to_resend


def connection_error(reached: bool) -> SignzyConnectionError:
    return SignzyConnectionError("x", reached_server=reached)


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (SignzyServerError("x", status=500), True),
        (SignzyServerError("x", status=503), True),
        (SignzyServerError("x", status=501), False),
        (SignzyRateLimitError("x", status=429), True),
        (SignzyRateLimitError("x", status=403), True),
        (SignzyPermissionError("x", status=403, code="ACCESS_DENIED"), False),
        (SignzyAuthError("x", status=401), False),
        (SignzyClientError("x", status=400), False),
        (SignzyClientError("x", status=404), False),
        (SignzyClientError("x", status=422), False),
        (connection_error(True), True),
        (connection_error(False), True),
    ],
)
def test_transient_failures(exc: Exception, transient: bool) -> None:
    assert is_transient(exc) is transient


def test_non_idempotent_requests_are_resent_only_when_signzy_did_not_act() -> None:
    assert safe_to_resend(connection_error(False), idempotent=False)
    assert not safe_to_resend(connection_error(True), idempotent=False)
    assert not safe_to_resend(SignzyServerError("x", status=502), idempotent=False)
    assert safe_to_resend(SignzyRateLimitError("x", status=429), idempotent=False)
    assert safe_to_resend(SignzyServerError("x", status=502), idempotent=True)


def test_planned_wait_bounds() -> None:
    assert planned_wait_bounds(initial=1, maximum=30, retries=3) == (7, 10)
    assert planned_wait_bounds(initial=1, maximum=3, retries=4) == (1 + 2 + 3 + 3, 2 + 3 + 3 + 3)
