"""Product answers for the emulator's snoops and one-step resources: which catalog product a call selects, the
checks of its essentials as Signzy documents them, and the outcome its test inputs ask for (docs/emulator.md).

Errors use Signzy's v2 product envelope (``{"error": {"name", "status", "message"}}``) and, as Signzy's own
messages do, quote the offending input. Results are synthetic: fixed lists below, picked by a hash of the
input (the same input always gets the same result), and the input itself.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_signzy.emulator.api_error import ApiError
from airflow_provider_signzy.emulator.results import (
    BUILDERS,
    KEY_FIELDS,
    NOT_FOUND_MARK,
    UNREADABLE_MARK,
    Call,
    Synth,
    shown,
)
from airflow_provider_signzy.products.catalog import IDENTITY, PRODUCTS, Product
from airflow_provider_signzy.products.fields import FORMATS

_DOCUMENT_NAMES = {
    "pan": "PAN",
    "aadhaar": "Aadhaar",
    "drivinglicence": "Driving licence",
    "voterid": "Voter ID",
    "passport": "Passport",
}
_EXPECTED = {
    "text": "a non-empty string",
    "date": "dd/mm/yyyy",
    "flag": '"true" or "false"',
    "yesno": '"yes" or "no"',
    "url": "a URL",
    "urls": "a list of URLs",
    "year": "yyyy-yy",
    "number": "a number",
    "object": "an object",
}

_BY_IDENTITY = {
    (p.identity_type.lower(), p.task): p for p in PRODUCTS.values() if p.flow == IDENTITY and p.identity_type
}
_BY_IDENTITY[("businesspan", "autoRecognition")] = PRODUCTS["pan.extraction"]
_ANY_TYPE = {p.task: p for p in PRODUCTS.values() if p.flow == IDENTITY and not p.identity_type}
_BY_RESOURCE = {(p.resource, p.task): p for p in PRODUCTS.values() if p.flow != IDENTITY}
_RESOURCES = frozenset(resource for resource, _ in _BY_RESOURCE)


def _error(status: int, message: str) -> ApiError:
    return ApiError(status, message, v2=True)


# -- which product --


def knows_resource(resource: str) -> bool:
    return resource in _RESOURCES


def identity_product(identity_type: str, task: Any) -> Product:
    """The product of an identity's ``type`` (any case: open question 6) and a snoop's ``task``; else 422."""
    product = None
    if isinstance(task, str):
        product = _ANY_TYPE.get(task) or _BY_IDENTITY.get((str(identity_type).lower(), task))
    if product is None:
        raise _error(422, f"Task {shown(task)} is not available for an identity of type {identity_type}")
    return product


def resource_product(resource: str, task: Any) -> Product:
    """The product of a patron resource and its ``task`` (ignored where the catalog's task is None); else 422."""
    product = _BY_RESOURCE.get((resource, None))
    if product is None and isinstance(task, str):
        product = _BY_RESOURCE.get((resource, task))
    if product is None:
        raise _error(422, f"Task {shown(task)} is not available on {resource}")
    return product


# -- checks --


def check(product: Product, essentials: Any, images: list[Any]) -> dict[str, Any]:
    """The essentials, checked: required fields present, given fields in format, enough images; else 422."""
    if essentials is None:
        essentials = {}
    if not isinstance(essentials, dict):
        raise _error(422, f"essentials must be an object, got {shown(essentials)}")
    for field in product.essentials:
        value = essentials.get(field.name)
        if value is None or value == "":
            if field.required:
                raise _error(422, f"essentials.{field.name} is required")
            continue
        if not _fits(field.format, value):
            if field.format == "pan":
                raise _error(422, f"Invalid PAN number {shown(value)}")
            raise _error(422, f"essentials.{field.name} must be {_EXPECTED[field.format]}, got {shown(value)}")
    url = FORMATS["url"].pattern
    assert url is not None
    for image in images:
        if not isinstance(image, str) or not url.match(image):
            raise _error(422, f"images must be URLs, got {shown(image)}")
    if len(images) < product.min_images:
        raise _error(422, f"{product.title} needs {product.min_images} image URL(s) in images, got {len(images)}")
    return essentials


def _fits(format_name: str, value: Any) -> bool:
    spec = FORMATS[format_name]
    if isinstance(value, bool) or not isinstance(value, spec.kind):
        return False
    url = FORMATS["url"].pattern
    assert url is not None
    if spec.kind is list:
        return isinstance(value, list) and bool(value) and all(isinstance(i, str) and url.match(i) for i in value)
    if isinstance(value, str) and not value.strip():
        return False
    return spec.pattern is None or bool(spec.pattern.match(str(value)))


# -- outcomes --


def answer(
    product: Product, essentials: dict[str, Any], images: list[Any], *, base_url: str, identity_type: str | None
) -> dict[str, Any]:
    """The product's ``result`` for these checked inputs; a 404 (v2 envelope) for unreadable or unknown ones."""
    call = Call(product, essentials, images, identity_type, base_url)
    if any(UNREADABLE_MARK in url.lower() for url in call.documents()):
        raise _error(404, "invalid data")
    key = KEY_FIELDS.get(product.name)
    if key and NOT_FOUND_MARK in shown(essentials.get(key, "")):
        if "verified" not in product.result_fields:
            raise _error(404, f"No record found for {key} {shown(essentials[key])}")
        document = _DOCUMENT_NAMES.get(product.name.split(".")[0], "Record")
        found: dict[str, Any] = {"verified": "false" if product.name == "aadhaar.verification" else False}
        if product.name == "voterid.verification":
            found["verification"] = False
        return {**found, "message": f"{document} not found"}
    return BUILDERS[product.name](Synth(call), call)


def echoed(product: Product, essentials: dict[str, Any], images: list[Any]) -> dict[str, Any]:
    """What a snoop's ``response`` repeats of the input: the files for image products, else the essentials."""
    return {"files": list(images)} if product.min_images else dict(essentials)
