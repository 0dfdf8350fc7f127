"""Find personal data in the clear: in every table of Airflow's metadata DB, in log files, in console text.

Each value is looked for raw, JSON-escaped, URL-quoted (both ways) and base64-encoded (at each of the
three byte alignments, so it is found inside a longer base64 text too). Used by the privacy tests and by
``make demo``; the values are synthetic (never a real PAN or Aadhaar number).
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

#: Where Airflow keeps what the DAG's author wrote or passed in, not what the provider stored: the DAG
#: file's source, the DAG as parsed (literal arguments included), and the conf a run was triggered with.
#: Scanned separately (``authored_text``) and reported, never counted as the provider's leak.
AUTHORED_COLUMNS = {
    "dag_code": None,  # every column
    "serialized_dag": None,
    "dag_version": None,
    "dag_run": {"conf"},
    "log": {"extra"},  # the audit log of a trigger with conf
}


def forms(value: str) -> set[str]:
    """The ways ``value`` can appear in stored or printed text."""
    found = {value, json.dumps(value)[1:-1], quote(value, safe=""), quote_plus(value)}
    data = value.encode()
    for shift in range(3):
        padded = b"\0" * shift + data
        whole = padded[: len(padded) // 3 * 3]
        encoded = base64.b64encode(whole).decode()
        stable = encoded[4:] if shift else encoded  # the first group mixes in the padding
        if len(stable) >= 8:
            found.add(stable)
            found.add(stable.replace("+", "-").replace("/", "_"))  # urlsafe
    return {f for f in found if f}


@dataclass(frozen=True)
class Finding:
    value: str
    where: str
    #: The text around the first occurrence, with the value itself replaced: enough to see what wrote it.
    context: str = ""

    def __str__(self) -> str:
        return f"{self.value!r} in {self.where}" + (f": ...{self.context}..." if self.context else "")


def _context(text: str, shape: str, value: str) -> str:
    at = text.find(shape)
    if at < 0:
        return ""
    return text[max(0, at - 120) : at + len(shape) + 60].replace(shape, "<VALUE>").replace(value, "<VALUE>")


def find(values: Iterable[str], texts: Iterable[tuple[str, str]]) -> list[Finding]:
    """Every (value, place) where a form of a value occurs in a ``(place, text)``; whitespace is ignored."""
    wanted = {value: forms(value) for value in values}
    findings = []
    for where, text in texts:
        squeezed = re.sub(r"\s+", "", text)
        for value, shapes in wanted.items():
            hits = [shape for shape in shapes if shape in text or re.sub(r"\s+", "", shape) in squeezed]
            if hits:
                findings.append(Finding(value, where, _context(text, hits[0], value)))
    return findings


def _cell(value: Any) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return value if isinstance(value, str) else json.dumps(value, default=str)


def db_texts(*, authored: bool = False) -> Iterator[tuple[str, str]]:
    """``(table.column, text)`` of every column of every table; ``authored`` gives the AUTHORED_COLUMNS only."""
    from airflow.settings import engine
    from sqlalchemy import MetaData, select

    metadata = MetaData()
    metadata.reflect(bind=engine)
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            skipped = AUTHORED_COLUMNS.get(table.name, set())
            for column in table.columns:
                is_authored = table.name in AUTHORED_COLUMNS and (skipped is None or column.name in skipped)
                if is_authored != authored:
                    continue
                cells = connection.execute(select(column).where(column.is_not(None))).scalars().all()
                if cells:
                    yield f"{table.name}.{column.name}", "\n".join(_cell(c) for c in cells)


def log_texts(root: str | os.PathLike[str] | None = None) -> Iterator[tuple[str, str]]:
    """``(path, text)`` of every file under Airflow's log folder."""
    base = Path(root or os.environ["AIRFLOW__LOGGING__BASE_LOG_FOLDER"])
    for path in sorted(base.rglob("*")):
        if path.is_file():
            yield str(path), path.read_text(errors="replace")


def scan(values: Iterable[str], *, console: str = "", log_root: str | None = None) -> list[Finding]:
    """Personal data in the clear in the metadata DB (all but what the DAG's author wrote), logs and ``console``."""
    values = list(values)
    texts: list[tuple[str, str]] = [*db_texts(), *log_texts(log_root)]
    if console:
        texts.append(("console", console))
    return find(values, texts)
