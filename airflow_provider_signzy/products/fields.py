"""A product's ``essentials`` fields and their documented formats, checked before anything is sent.

Only formats that Signzy's v2 docs state (``../reference/signzy-v2-products.md``): a PAN ``AAAAA9999A``,
dates ``dd/mm/yyyy``, string flags ``"true"``/``"false"`` and ``"yes"``/``"no"``, URLs, a financial year
``2017-18``. Anything else is checked only for being present and a non-empty string (or an object).
Errors name the product, the field and the expected format, never the value: it is a customer's data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = ["FORMATS", "Field"]


@dataclass(frozen=True)
class Format:
    pattern: re.Pattern[str] | None
    described: str
    kind: type | tuple[type, ...] = str


FORMATS: dict[str, Format] = {
    "text": Format(None, "a non-empty string"),
    "pan": Format(re.compile(r"^[A-Za-z]{5}[0-9]{4}[A-Za-z]$"), "a PAN: 5 letters, 4 digits, 1 letter (AAAAA9999A)"),
    "date": Format(re.compile(r"^(0[1-9]|[12][0-9]|3[01])/(0[1-9]|1[0-2])/[0-9]{4}$"), "a date as dd/mm/yyyy"),
    "flag": Format(re.compile(r"^(true|false)$"), 'the string "true" or "false" (not a boolean)'),
    "yesno": Format(re.compile(r"^(yes|no)$"), 'the string "yes" or "no"'),
    "url": Format(re.compile(r"^https?://[^\s]+$"), "a URL (http:// or https://), e.g. a persist upload's directURL"),
    "urls": Format(None, "a list of URLs", list),
    "year": Format(re.compile(r"^[0-9]{4}-[0-9]{2}$"), "a financial year as yyyy-yy (2017-18)"),
    "number": Format(re.compile(r"^[0-9]+(\.[0-9]+)?$"), "a number, as a string or a number", (str, int, float)),
    "object": Format(None, "an object", dict),
}


@dataclass(frozen=True)
class Field:
    """One ``essentials`` field: its name, whether Signzy's docs mark it required, and its format."""

    name: str
    format: str = "text"
    required: bool = True

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"field {self.name!r}: unknown format {self.format!r}")

    @property
    def described(self) -> str:
        return FORMATS[self.format].described

    def check(self, product: str, value: Any) -> None:
        """Raise :class:`SignzyInputError` when ``value`` does not fit; the message never quotes it."""
        from airflow_provider_signzy.exceptions import SignzyInputError  # here: the catalog needs no Airflow

        spec = FORMATS[self.format]
        where = f"Product {product!r}: essentials field {self.name!r}"
        if isinstance(value, bool) or not isinstance(value, spec.kind):
            raise SignzyInputError(
                f"{where} must be {spec.described}, got a {type(value).__name__}", product=product, field=self.name
            )
        if spec.kind is list:
            url = FORMATS["url"].pattern
            assert url is not None
            assert isinstance(value, list)
            if not value or any(not isinstance(item, str) or not url.match(item) for item in value):
                raise SignzyInputError(f"{where} must be {spec.described}", product=product, field=self.name)
            return
        if isinstance(value, str) and not value.strip():
            raise SignzyInputError(f"{where} is empty; it must be {spec.described}", product=product, field=self.name)
        if spec.pattern is not None and not spec.pattern.match(str(value)):
            raise SignzyInputError(
                f"{where} must be {spec.described}; the value given does not match (not shown: it is a "
                "customer's data)",
                product=product,
                field=self.name,
            )
