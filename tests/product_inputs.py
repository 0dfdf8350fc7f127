"""Valid synthetic inputs for every catalog product, built from the catalog's own field formats.

Synthetic values only (a PAN of the documented shape that belongs to nobody); no identifier contains
``0000``, the emulator's "not found" input.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_signzy.products.catalog import Product

DOC_URL = "https://persist.example.com/api/files/1/download/doc.jpg"
BY_NAME = {"name": "RAVI KUMAR", "beneficiaryName": "RAVI KUMAR", "state": "Maharashtra", "email": "ops@example.com"}
BY_FORMAT: dict[str, Any] = {
    "text": "SYN123456789",
    "pan": "ABCDE1234F",
    "date": "15/08/1990",
    "flag": "true",
    "yesno": "no",
    "url": DOC_URL,
    "urls": [DOC_URL],
    "year": "2017-18",
    "number": "1.00",
    "object": {"vehicleNumber": "SYN12AB3456", "vehicleType": "car"},
}


def valid_essentials(product: Product, *, optional: bool = False) -> dict[str, Any]:
    """A value for every required field (and the optional ones too with ``optional``)."""
    return {
        f.name: BY_NAME.get(f.name, BY_FORMAT[f.format]) if f.format == "text" else BY_FORMAT[f.format]
        for f in product.essentials
        if f.required or optional
    }


def valid_images(product: Product) -> list[str] | None:
    return [DOC_URL.replace("doc", f"side{n}") for n in range(product.min_images)] or None


def product_kwargs(product: Product) -> dict[str, Any]:
    """What run_product needs beyond the essentials: images, an identity type the docs leave open, email."""
    kwargs: dict[str, Any] = {"images": valid_images(product)}
    if product.flow == "identity" and product.identity_type is None:
        kwargs["identity_type"] = "individualPan"
    if product.needs_email:
        kwargs["email"] = "ops@example.com"
    return kwargs
