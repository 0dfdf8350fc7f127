"""Turn a failed Signzy answer, or a failed request, into the right :class:`SignzyError`.

Signzy's errors use LoopBack's envelope ``{"error": {"statusCode", "name", "message", "code"}}``
(LoopBack 2 services say ``status``); proxies in front of it answer 502/504 with HTML pages. Signzy's
messages echo the input they reject, so what is kept of them is scrubbed (:func:`.privacy.scrub.scrub`) first.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from airflow_provider_signzy.exceptions import (
    SignzyAuthError,
    SignzyBlockedError,
    SignzyClientError,
    SignzyConnectionError,
    SignzyError,
    SignzyPermissionError,
    SignzyRateLimitError,
    SignzyServerError,
)
from airflow_provider_signzy.privacy.scrub import scrub

if TYPE_CHECKING:
    from collections.abc import Mapping

    import httpx

    #: The hook reads ``requests`` answers, the trigger ``httpx`` ones: the same envelope either way.
    AnyResponse = requests.Response | httpx.Response

#: The code of a 403 that is a permission answer (LoopBack with aclErrorStatus 403), not a rate limit.
ACCESS_DENIED = "ACCESS_DENIED"
_MAX_MESSAGE = 300
_HTML_TITLE = re.compile(r"<title>\s*(.*?)\s*</title>", re.IGNORECASE | re.DOTALL)
_HTML_TAG = re.compile(r"<[^>]*>")


def _where(conn_id: str | None) -> str:
    return f" (connection {conn_id!r})" if conn_id else ""


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), or None."""
    value = headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _reason(response: AnyResponse) -> str:
    """The reason phrase: ``reason`` in requests, ``reason_phrase`` in httpx."""
    return str(getattr(response, "reason", None) or getattr(response, "reason_phrase", None) or "")


def read_envelope(response: AnyResponse, *, sent: Iterable[str] = ()) -> tuple[int, str | None, str]:
    """(status, Signzy code, message) of an error answer, whatever its body looks like.

    The message is scrubbed of personal data (Signzy echoes input), and of ``sent``: values the request
    carried that the caller knows of (see :func:`.privacy.scrub.scrub`).
    """
    status = response.status_code
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        if not status:
            status = int(error.get("statusCode") or error.get("status") or 0)
        code = error.get("code") or None
        message = scrub(str(error.get("message") or error.get("name") or "no message"), values=sent)
        return status, (str(code) if code else None), message[:_MAX_MESSAGE]  # scrubbed whole, then cut
    text = response.text or ""
    if not text.strip():
        return status, None, f"an empty body ({_reason(response) or 'no reason given'})"
    content_type = response.headers.get("Content-Type", "unknown type").split(";")[0]
    title = _HTML_TITLE.search(text)
    if title:
        shown = scrub(title.group(1), values=sent)[:100]
        return status, None, f"an HTML page {shown!r} instead of JSON (likely a proxy)"
    return status, None, f"a {content_type} body of {len(text)} characters instead of the JSON error envelope"


def error_from_response(
    response: AnyResponse, *, method: str, path: str, conn_id: str | None, sent_path: str | None = None
) -> SignzyError:
    """The :class:`SignzyError` subclass that fits a non-2xx answer.

    ``path`` is what the error shows; ``sent_path``, the path really requested when it differs (a batch
    item's fields filled in): its segments that ``path`` does not have are scrubbed from Signzy's message.
    """
    status, code, message = read_envelope(response, sent=_filled_segments(sent_path, path))
    shown_code = f" {code}" if code else ""
    text = f"Signzy answered {status}{shown_code} to {method} {path}: {message}{_where(conn_id)}"
    kwargs: dict[str, Any] = {
        "status": status,
        "code": code,
        "signzy_message": message,
        "method": method,
        "path": path,
        "conn_id": conn_id,
        "retry_after": parse_retry_after(response.headers),
    }
    if status == 401:
        return SignzyAuthError(text, **kwargs)
    if status == 403:
        if code == ACCESS_DENIED:
            return SignzyPermissionError(text, **kwargs)
        if not has_envelope(response):
            return SignzyBlockedError(blocked_text(response, method, path, message, conn_id), **kwargs)
        return SignzyRateLimitError(text + " (a rate limit)", **kwargs)
    if status == 429:
        return SignzyRateLimitError(text, **kwargs)
    if status >= 500:
        return SignzyServerError(text, **kwargs)
    return SignzyClientError(text, **kwargs)


def has_envelope(response: AnyResponse) -> bool:
    """True when the body is Signzy's JSON error envelope (``{"error": {...}}``)."""
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and isinstance(body.get("error"), dict)


def blocked_text(response: AnyResponse, method: str, path: str, message: str, conn_id: str | None) -> str:
    """A 403 that is not Signzy's: who answered, and the first words of what it said (scrubbed)."""
    host = urlsplit(str(getattr(response, "url", "") or "")).hostname or "the Base URL's host"
    words = " ".join(scrub(_HTML_TAG.sub(" ", response.text or "")).split()[:12])
    return (
        f"{host} answered 403 to {method} {path} with {message}, not Signzy's JSON error: a firewall, a proxy "
        f"or an IP allow-list in front of Signzy refused the call (first words: {words!r}). This is not a rate "
        "limit, so it is not retried: check that Signzy (or your proxy) allows this worker's egress IP"
        f"{_where(conn_id)}"
    )


def _filled_segments(sent_path: str | None, shown_path: str) -> set[str]:
    """Segments of the requested path that the shown one (a template) does not have: an item's values."""
    if not sent_path:
        return set()
    shown = set(shown_path.split("?", 1)[0].split("/"))
    filled = {segment for segment in sent_path.split("?", 1)[0].split("/") if segment not in shown}
    return filled | {unquote(segment) for segment in filled}


#: Failures while preparing a request, before anything is sent.
_NEVER_SENT = (
    requests.exceptions.InvalidJSONError,
    requests.exceptions.InvalidURL,
    requests.exceptions.InvalidSchema,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidHeader,
)


def error_from_exception(
    exc: requests.RequestException, *, method: str, path: str, conn_id: str | None, timeout: float
) -> SignzyConnectionError:
    """A :class:`SignzyConnectionError` that says whether the request may have reached Signzy.

    The message is built from the failure's kind only: ``str(exc)`` repeats the URL, which may hold an
    ``access_token`` query parameter.
    """
    reached_server = True
    transient = True
    if isinstance(exc, _NEVER_SENT):
        what, reached_server, transient = f"the request could not be built ({type(exc).__name__})", False, False
    elif isinstance(exc, requests.exceptions.SSLError):
        what, reached_server, transient = "the TLS handshake failed (check 'verify' and the CA)", False, False
    elif isinstance(exc, requests.exceptions.ConnectTimeout):
        what, reached_server = "no connection within the connect timeout", False
    elif isinstance(exc, requests.exceptions.ReadTimeout):
        what = f"no answer within {timeout:g}s (read timeout)"
    elif isinstance(exc, requests.exceptions.ConnectionError):
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        if isinstance(reason, NewConnectionError | ConnectTimeoutError):
            what, reached_server = "the connection could not be opened (refused or unknown host)", False
        else:
            what = "the connection broke before the answer arrived"
    elif isinstance(exc, requests.exceptions.ChunkedEncodingError):
        what = "the answer was cut off"
    else:
        what, transient = f"the request failed ({type(exc).__name__})", False
    request = getattr(exc, "request", None)
    return connection_error(
        what,
        reached_server=reached_server,
        transient=transient,
        method=method,
        path=path,
        conn_id=conn_id,
        host=host_of(getattr(request, "url", None)),
    )


def host_of(url: object) -> str | None:
    """``host[:port]`` of a request URL: what a network error names (never the path or query, which may
    hold a token or a customer's data)."""
    if not isinstance(url, str) or not url:
        return None
    parts = urlsplit(url)
    return parts.hostname and (f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname)


def connection_error(
    what: str,
    *,
    reached_server: bool,
    transient: bool,
    method: str,
    path: str,
    conn_id: str | None,
    host: str | None = None,
) -> SignzyConnectionError:
    """The :class:`SignzyConnectionError` of a network failure described by ``what`` (any HTTP client's)."""
    at = f" (host {host})" if host else ""
    error = SignzyConnectionError(
        f"Signzy {method} {path} failed: {what}{at}{_where(conn_id)}",
        reached_server=reached_server,
        method=method,
        path=path,
        conn_id=conn_id,
    )
    error.transient = transient
    return error


def answer_value(response: requests.Response, response_filter: Callable[[requests.Response], Any] | None = None) -> Any:
    """What a call returns: ``response_filter(response)``, else the parsed JSON, the text, or None if empty."""
    if response_filter is not None:
        return response_filter(response)
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text
