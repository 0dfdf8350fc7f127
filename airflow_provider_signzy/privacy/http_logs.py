"""httpx's request log lines without their query string.

httpx logs every request at INFO as ``HTTP Request: GET https://host/path?query "HTTP/1.1 200 OK"``, and
Airflow 3.0 shows that logger's INFO lines. A query string may hold a customer's data (a sensor's
``query_params``) or the token (``token_in: query``): the filter keeps the line and drops the query.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit, urlunsplit

HTTPX_LOGGER = "httpx"


class QueryStringFilter(logging.Filter):
    """Rewrites httpx's ``HTTP Request`` records so their URL has no query string; passes every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args and str(record.msg).startswith("HTTP Request"):
            record.args = tuple(_without_query(arg) for arg in record.args)
        return True


def _without_query(value: object) -> object:
    text = str(value)
    if "?" not in text or "://" not in text:
        return value
    parts = urlsplit(text)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def strip_httpx_query_strings() -> None:
    """Install the filter on httpx's logger once per process."""
    logger = logging.getLogger(HTTPX_LOGGER)
    if not any(isinstance(f, QueryStringFilter) for f in logger.filters):
        logger.addFilter(QueryStringFilter())
