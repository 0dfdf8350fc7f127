"""Signzy's products by name (``pan.verification``, ``bankaccount.transfer``, ...): the catalog, the check of a
product's inputs before anything is sent, and the bodies Signzy's v2 API expects for each step.

The catalog (:mod:`.catalog`, :mod:`.fields`) is plain data on the standard library alone, so the emulator
reads it without Airflow; the calls (:mod:`.calls`) load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_signzy.products.catalog import IDENTITY, PRODUCTS, RESOURCE, Product
from airflow_provider_signzy.products.fields import FORMATS, Field

if TYPE_CHECKING:
    from airflow_provider_signzy.products.calls import (
        SNOOPS_ENDPOINT,
        ProductCall,
        ProductResult,
        get_product,
        result_of,
    )

__all__ = [
    "FORMATS",
    "IDENTITY",
    "PRODUCTS",
    "RESOURCE",
    "SNOOPS_ENDPOINT",
    "Field",
    "Product",
    "ProductCall",
    "ProductResult",
    "get_product",
    "result_of",
]
_CALLS = {"SNOOPS_ENDPOINT", "ProductCall", "ProductResult", "get_product", "result_of"}


def __getattr__(name: str) -> Any:
    if name in _CALLS:
        from airflow_provider_signzy.products import calls

        return getattr(calls, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
