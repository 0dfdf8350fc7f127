"""Declarative conditions on a JSON answer: ``{"status": ["verified", "completed"]}``.

Keys are dotted paths into the JSON (``result.checks.0.status``: a number indexes a list); a value is
the accepted value or a list of accepted values. Plain data, so a trigger can carry them to the
triggerer. ``success_when`` holds when every path matches; ``failure_when`` when any path matches.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_MISSING = object()


def normalize(conditions: Mapping[str, Any] | None, *, name: str) -> dict[str, list[Any]]:
    """``{path: [accepted, ...]}``; raises ValueError naming the argument when it is malformed."""
    if conditions is None:
        return {}
    if not isinstance(conditions, Mapping):
        raise ValueError(f"{name} must be a dict of dotted path -> accepted value(s), got {type(conditions).__name__}")
    result: dict[str, list[Any]] = {}
    for path, accepted in conditions.items():
        if not isinstance(path, str) or not path or any(not part for part in path.split(".")):
            raise ValueError(f"{name}: {path!r} is not a dotted path such as 'status' or 'result.status'")
        values = list(accepted) if isinstance(accepted, list | tuple | set | frozenset) else [accepted]
        for value in values:
            if not isinstance(value, str | int | float | bool) and value is not None:
                raise ValueError(f"{name}[{path!r}]: accepted values must be JSON scalars, got {value!r}")
        result[path] = values
    return result


def lookup(body: Any, path: str) -> Any:
    """The value at ``path`` in ``body``, or a sentinel that equals nothing when it is absent."""
    value = body
    for part in path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.lstrip("-").isdigit() and -len(value) <= int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def _accepts(value: Any, accepted: list[Any]) -> bool:
    # ``True == 1`` in Python: compare booleans only with booleans.
    return any(value == a and isinstance(value, bool) == isinstance(a, bool) for a in accepted)


def all_match(body: Any, conditions: Mapping[str, list[Any]]) -> bool:
    """True when there are conditions and every one holds."""
    return bool(conditions) and all(_accepts(lookup(body, p), accepted) for p, accepted in conditions.items())


def first_match(body: Any, conditions: Mapping[str, list[Any]]) -> tuple[str, Any] | None:
    """(path, value) of the first condition that holds, or None."""
    for path, accepted in conditions.items():
        value = lookup(body, path)
        if _accepts(value, accepted):
            return path, value
    return None
