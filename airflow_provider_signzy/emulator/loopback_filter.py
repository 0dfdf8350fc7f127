"""LoopBack 3's ``filter`` query parameter, for the emulator's list routes: where, order, limit, skip.

Signzy's v2 API is LoopBack 3, whose list routes take ``?filter={"where": {...}, "order": "createdAt ASC",
"limit": 100, "skip": 200}`` (JSON), or the same in brackets (``?filter[where][status]=verified&filter[limit]=10``).
Supported here: equality, ``inq``, ``nin``, ``neq``, ``gt``, ``gte``, ``lt``, ``lte``, ``and`` / ``or`` lists,
and dotted property names for nested values, as LoopBack's memory connector does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_OPERATORS = {"inq", "nin", "neq", "gt", "gte", "lt", "lte"}
_MISSING = object()


class FilterError(ValueError):
    """The filter is malformed; LoopBack answers 400 for these."""


@dataclass(frozen=True)
class ListFilter:
    where: Mapping[str, Any] | None = None
    order: tuple[tuple[str, bool], ...] = ()  # (property, descending)
    limit: int | None = None
    skip: int = 0

    @classmethod
    def from_query(cls, query: Mapping[str, list[str]]) -> ListFilter:
        """The filter of a request's query string (``parse_qs`` form); no filter: everything."""
        raw: Any = None
        if query.get("filter"):
            try:
                raw = json.loads(query["filter"][0])
            except json.JSONDecodeError as exc:
                raise FilterError(f"The filter is not valid JSON: {exc.msg} at position {exc.pos}") from None
        else:
            raw = _from_brackets(query)
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise FilterError("The filter must be an object")
        where = raw.get("where")
        if where is not None and not isinstance(where, Mapping):
            raise FilterError("filter.where must be an object")
        return cls(
            where=where,
            order=_order(raw.get("order")),
            limit=_count(raw.get("limit"), "limit"),
            skip=_count(raw.get("skip", raw.get("offset")), "skip") or 0,
        )

    def apply(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        selected = [item for item in items if self.where is None or matches(item, self.where)]
        for prop, descending in reversed(self.order):  # stable sorts, last key first

            def key(item: dict[str, Any], prop: str = prop) -> tuple[int, Any]:
                return _sort_key(_value(item, prop))

            selected.sort(key=key, reverse=descending)
        end = None if self.limit is None else self.skip + self.limit
        return selected[self.skip : end]


def matches(item: Mapping[str, Any], where: Mapping[str, Any]) -> bool:
    for key, condition in where.items():
        if key in ("and", "or"):
            if not isinstance(condition, list) or not all(isinstance(c, Mapping) for c in condition):
                raise FilterError(f"filter.where.{key} must be a list of objects")
            results = [matches(item, c) for c in condition]
            if not (all(results) if key == "and" else any(results)):
                return False
            continue
        value = _value(item, key)
        if isinstance(condition, Mapping) and condition and set(condition) <= _OPERATORS:
            if not all(_holds(value, op, operand) for op, operand in condition.items()):
                return False
        elif value is _MISSING or value != condition:
            return False
    return True


def _holds(value: Any, op: str, operand: Any) -> bool:
    if op in ("inq", "nin"):
        if not isinstance(operand, list):
            raise FilterError(f"{op} needs a list")
        return (value in operand) == (op == "inq")
    if op == "neq":
        return value != operand
    if value is _MISSING or value is None:
        return False
    try:
        return bool(
            {"gt": value > operand, "gte": value >= operand, "lt": value < operand, "lte": value <= operand}[op]
        )
    except TypeError:
        return False


def _value(item: Any, path: str) -> Any:
    value = item
    for part in path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        else:
            return _MISSING
    return value


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is _MISSING or value is None:
        return (0, "")
    return (1, value if isinstance(value, int | float) else str(value))


def _order(raw: Any) -> tuple[tuple[str, bool], ...]:
    if raw is None:
        return ()
    entries = [raw] if isinstance(raw, str) else raw
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        raise FilterError("filter.order must be a string such as 'createdAt DESC', or a list of them")
    order = []
    for entry in entries:
        parts = entry.split()
        if not parts or len(parts) > 2 or (len(parts) == 2 and parts[1].upper() not in ("ASC", "DESC")):
            raise FilterError(f"filter.order: {entry!r} is not 'property [ASC|DESC]'")
        order.append((parts[0], len(parts) == 2 and parts[1].upper() == "DESC"))
    return tuple(order)


def _count(raw: Any, name: str) -> int | None:
    if raw is None:
        return None
    try:
        number = int(raw)
    except (TypeError, ValueError):
        raise FilterError(f"filter.{name} must be a number") from None
    if number < 0:
        raise FilterError(f"filter.{name} must not be negative")
    return number


def _from_brackets(query: Mapping[str, list[str]]) -> dict[str, Any] | None:
    """``filter[where][status]=verified&filter[limit]=10`` as the JSON form (strings for where values)."""
    raw: dict[str, Any] = {}
    for key, values in query.items():
        if not key.startswith("filter["):
            continue
        path = [p.rstrip("]") for p in key[len("filter[") :].split("[")]
        node = raw
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise FilterError(f"{key} conflicts with another filter parameter")
        node[path[-1]] = values[0] if len(values) == 1 else values
    return raw or None
