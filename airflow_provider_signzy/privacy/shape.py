"""A body's shape (keys, types, lengths) without its values: what rendered template fields show."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Nesting shown before the rest is summarized; list items shown before the rest are counted.
MAX_DEPTH = 6
SHOWN_ITEMS = 1


def shape_of(value: Any, *, depth: int = 0) -> Any:
    """The shape of a JSON-like value, e.g. ``{"pan": "<str, 10 chars>", "images": ["<list, 2 items>", ...]}``.

    Keys are kept (they name fields, not people); every value becomes its type and size. Booleans and
    None are kept as they are: they say nothing about a person and help debugging.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return f"<str, {len(value)} chars>"
    if isinstance(value, int | float):
        return f"<{type(value).__name__}>"
    if isinstance(value, Mapping):
        if depth >= MAX_DEPTH:
            return f"<object, {len(value)} keys>"
        return {str(key): shape_of(item, depth=depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple):
        head = f"<list, {len(value)} items>"
        if depth >= MAX_DEPTH or not value:
            return [head]
        return [head, *(shape_of(item, depth=depth + 1) for item in value[:SHOWN_ITEMS])]
    return f"<{type(value).__name__}>"
