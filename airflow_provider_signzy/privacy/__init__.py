"""Customers' personal data: sealed in XCom, shown as its shape in rendered fields.

Signzy's answers and request bodies are KYC data (names, PAN and Aadhaar numbers, dates of birth,
addresses, phone numbers). What the provider stores in Airflow is sealed with the same Fernet keys as
the token, except a small allow-list of fields downstream templates need (``id``, ``status``).

- :func:`seal` / :func:`unseal`: the one way to seal and open a value (TaskFlow: ``unseal(result)``;
  templates: ``{{ macros.signzy.unseal(ti.xcom_pull(task_ids='create')) }}``).
- :func:`shape_of`: what a rendered body shows instead of its values (keys, types, lengths).
"""

from __future__ import annotations

from airflow_provider_signzy.privacy.sealing import (
    DEFAULT_CLEAR_FIELDS,
    PLAIN,
    RESULT_PRIVACY,
    SEALED,
    ResultSealer,
    is_sealed,
    seal,
    unseal,
)
from airflow_provider_signzy.privacy.shape import shape_of

__all__ = [
    "DEFAULT_CLEAR_FIELDS",
    "PLAIN",
    "RESULT_PRIVACY",
    "SEALED",
    "ResultSealer",
    "is_sealed",
    "seal",
    "shape_of",
    "unseal",
]
