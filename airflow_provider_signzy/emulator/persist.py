"""Signzy's file exchange ("persist", section 5 of the products sheet) on the emulator's own port.

An upload answers ``{"file": {id, filetype, size, directURL, protected}}``; ``GET`` of the ``directURL`` serves
the bytes until the upload's ``ttl`` runs out on the state's clock (``/_emulator/clock`` moves it). No
authentication (open question 15). Memory: a multipart upload is read once into a buffer that is then cut
down, in place, to the file itself.
"""

from __future__ import annotations

import base64
import binascii
import json
import mimetypes
import re
import secrets
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote

from airflow_provider_signzy.emulator.api_error import ApiError

if TYPE_CHECKING:
    from airflow_provider_signzy.emulator.server import SignzyHTTPServer

#: "100Mb" as the docs write it, read as 100 MiB.
MAX_FILE = 100 * 1024 * 1024
#: Room for multipart headers and text fields around the file, or JSON around the base64 string.
_FRAMING = 1024 * 1024
#: Seconds a URL lives when ``ttl`` is absent or not one of :data:`TTLS`.
DEFAULT_TTL = 30.0
_DAY = 86_400.0
#: The documented ``ttl`` strings, exactly as written (a month is 30 days, a year 365); None: never expires.
TTLS: dict[str, float | None] = {
    "2 mins": 120.0,
    "10 mins": 600.0,
    "30 mins": 1_800.0,
    "2 hrs": 7_200.0,
    "12 hrs": 43_200.0,
    "7 days": 7 * _DAY,
    "15 days": 15 * _DAY,
    "1 month": 30 * _DAY,
    "3 month": 90 * _DAY,
    "6 month": 180 * _DAY,
    "1 year": 365 * _DAY,
    "3 years": 3 * 365 * _DAY,
    "infinity": None,
}
#: The base64 uploads' documented mimetypes, and the extension of the name in their directURL.
MIMETYPES = {"image/jpeg": "jpg", "image/jpg": "jpg", "image/png": "png", "application/pdf": "pdf"}
#: Upload path -> the directURL's kind.
UPLOADS = {"/api/files/upload": "files", "/api/base64": "files", "/api/base64strings/upload": "base64strings"}
_DOWNLOAD = re.compile(r"^/api/(?P<kind>files|base64strings)/(?P<id>[^/]+)/download/[^/]+$")
_KEY = re.compile(r"^[A-Za-z0-9]+$")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")
_MAX_PART_HEADERS = 16 * 1024


def _error(status: int, message: str) -> ApiError:
    return ApiError(status, message, v2=True)


def handles(command: str, path: str) -> bool:
    return (command == "POST" and path in UPLOADS) or (command == "GET" and _DOWNLOAD.match(path) is not None)


def body_limit(path: str) -> int:
    """The largest request body an upload path reads: bigger ones are refused from ``Content-Length`` alone."""
    if path == "/api/files/upload":
        return MAX_FILE + _FRAMING
    return (MAX_FILE + 2) // 3 * 4 + _FRAMING


def too_large() -> ApiError:
    return _error(413, "File too large: the limit is 100Mb")


@dataclass
class StoredFile:
    data: bytes | bytearray
    filetype: str
    name: str
    kind: str
    #: Seconds the directURL lives (None: never); :meth:`FileStore.put` sets ``expires`` from it.
    ttl: float | None
    key: str | None
    expires: float | None = None


@dataclass(frozen=True)
class Raw:
    """A non-JSON answer: a download's bytes."""

    data: bytes | bytearray
    content_type: str


class FileStore:
    """The uploads: expired ones are dropped when looked up, and swept on each upload."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: dict[str, StoredFile] = {}

    def put(self, stored: StoredFile, now: float) -> str:
        file_id = secrets.token_hex(12)  # random: a directURL is a capability
        stored.expires = None if stored.ttl is None else now + stored.ttl
        with self._lock:
            for old in [i for i, f in self._files.items() if f.expires is not None and now >= f.expires]:
                del self._files[old]
            self._files[file_id] = stored
        return file_id

    def get(self, file_id: str, now: float) -> StoredFile | None:
        with self._lock:
            stored = self._files.get(file_id)
            if stored is not None and stored.expires is not None and now >= stored.expires:
                del self._files[file_id]
                return None
            return stored

    def clear(self) -> None:
        with self._lock:
            self._files.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._files)


def upload(path: str, content_type: str, body: bytearray) -> StoredFile:
    """Parse one upload; raises :class:`ApiError` (v2 envelope) for a bad one. ``body`` is consumed."""
    kind = UPLOADS[path]
    if path == "/api/files/upload":
        return _multipart_file(content_type, body)
    if path == "/api/base64":
        try:
            fields = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "Unexpected token in JSON at position 0", name="SyntaxError") from None
        body.clear()
        if not isinstance(fields, dict):
            raise _error(422, "the body must be a JSON object with base64String and mimetype")
        return _base64_file(fields.get("base64String"), fields, kind)
    if content_type.startswith("multipart/form-data"):
        parts = _parts(content_type, body)
        fields = {name: bytes(body[start:end]).decode("utf-8", "replace") for name, (start, end, _) in parts.items()}
    else:
        fields = {k: v[0] for k, v in parse_qs(body.decode("latin-1"), max_num_fields=50).items()}
    body.clear()
    return _base64_file(fields.get("base64string"), fields, kind)


def _multipart_file(content_type: str, body: bytearray) -> StoredFile:
    parts = _parts(content_type, body)
    if "file" not in parts:
        raise _error(422, "file is required: send it as multipart/form-data field 'file'")
    texts = {name: bytes(body[s:e]).decode("utf-8", "replace") for name, (s, e, _) in parts.items() if name != "file"}
    start, end, headers = parts["file"]
    if end - start > MAX_FILE:
        raise too_large()
    del body[end:]
    del body[:start]  # the buffer is now the file itself
    name = _UNSAFE_NAME.sub("_", (headers.get_filename() or "").rsplit("/", 1)[-1].rsplit("\\", 1)[-1])[:100]
    name = name if name.strip("._") else "file"
    filetype = headers.get_content_type() if headers.get("Content-Type") else None
    filetype = filetype or mimetypes.guess_type(name)[0] or "application/octet-stream"
    return StoredFile(body, filetype, name, "files", ttl_seconds(texts.get("ttl"), "files"), _key(texts.get("key")))


def _base64_file(encoded: Any, fields: dict[str, Any], kind: str) -> StoredFile:
    if not isinstance(encoded, str) or not encoded:
        raise _error(422, "base64String is required")
    mimetype = fields.get("mimetype")
    if mimetype not in MIMETYPES:
        raise _error(422, f"mimetype must be one of {', '.join(MIMETYPES)}, got {mimetype}")
    if encoded.startswith("data:") and "," in encoded[:200]:
        encoded = encoded.split(",", 1)[1]
    try:
        data = base64.b64decode(encoded)
    except (binascii.Error, ValueError):
        raise _error(422, "base64String is not valid base64") from None
    if len(data) > MAX_FILE:
        raise too_large()
    name = f"file.{MIMETYPES[mimetype]}"
    return StoredFile(data, mimetype, name, kind, ttl_seconds(fields.get("ttl"), kind), _key(fields.get("key")))


def ttl_seconds(value: Any, kind: str) -> float | None:
    """A documented ``ttl`` string's seconds (None: never); anything else, or ``infinity`` on base64strings: 30 s."""
    if not isinstance(value, str) or value not in TTLS or (value == "infinity" and kind == "base64strings"):
        return DEFAULT_TTL
    return TTLS[value]


def _key(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _KEY.match(value):
        raise _error(422, "key must be alphanumeric")
    return value


def _parts(content_type: str, body: bytearray) -> dict[str, tuple[int, int, EmailMessage]]:
    """The form's parts by name (the first wins when one repeats): where each one's content starts and ends in
    ``body``, and its headers, parsed by the ``email`` package. Contents are never copied here."""
    header = BytesHeaderParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
    )
    boundary = header.get_param("boundary")
    if header.get_content_type() != "multipart/form-data" or not isinstance(boundary, str) or not boundary:
        raise _error(422, "the upload must be multipart/form-data with a boundary")
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    position = body.find(delimiter[2:])
    if position < 0:
        raise _error(400, "malformed multipart body: no boundary")
    position += len(delimiter) - 2
    parts: dict[str, tuple[int, int, EmailMessage]] = {}
    while body[position : position + 2] != b"--":
        headers_end = body.find(b"\r\n\r\n", position)
        end = body.find(delimiter, headers_end + 4) if headers_end >= 0 else -1
        if end < 0 or headers_end - position > _MAX_PART_HEADERS:
            raise _error(400, "malformed multipart body")
        raw_headers = bytes(body[position:headers_end]).lstrip(b"\r\n") + b"\r\n\r\n"
        headers = BytesHeaderParser(policy=HTTP).parsebytes(raw_headers)
        name = headers.get_param("name", header="content-disposition")
        if isinstance(name, str) and name not in parts:
            parts[name] = (headers_end + 4, end, headers)
        position = end + len(delimiter)
    return parts


def answer(stored: StoredFile, file_id: str, base_url: str) -> dict[str, Any]:
    url = f"{base_url}/api/{stored.kind}/{file_id}/download/{quote(stored.name)}"
    size = len(stored.data)
    return {
        "file": {
            "id": file_id,
            "filetype": stored.filetype,
            "size": size,
            "directURL": url,
            "protected": stored.key is not None,
        }
    }


def download(store: FileStore, path: str, query: dict[str, list[str]], now: float) -> Raw:
    """A directURL's bytes: 404 once expired (or unknown), 401 without the upload's ``key``."""
    match = _DOWNLOAD.match(path)
    assert match is not None
    stored = store.get(match["id"], now)
    if stored is None or stored.kind != match["kind"]:
        raise _error(404, "File not found or expired")
    if stored.key is not None:
        given = (query.get("key") or [""])[0]
        if not secrets.compare_digest(given.encode(), stored.key.encode()):
            raise _error(401, "This file is protected: pass its key as ?key=")
    return Raw(stored.data, stored.filetype)


class PersistRoutes(BaseHTTPRequestHandler):
    """The request handler's persist routes; :class:`.routes.SignzyApiRoutes` supplies ``_latency`` and
    ``base_url``."""

    server: SignzyHTTPServer

    if TYPE_CHECKING:

        def _latency(self, key: str) -> None: ...

        def base_url(self) -> str: ...

    def _persist(self, path: str, query: dict[str, list[str]], body: bytearray) -> tuple[int, Any]:
        """Uploads (no authentication: open question 15) and their directURLs."""
        server, state = self.server, self.server.state
        if self.command == "GET":
            raw = download(server.files, path, query, state.now())
            state.count("downloads")
            return 200, raw
        stored = upload(path, self.headers.get("Content-Type", ""), body)
        file_id = server.files.put(stored, state.now())
        state.count("uploads")
        state.count("upload_bytes", len(stored.data))
        self._latency("persist")
        return 200, answer(stored, file_id, self.base_url())

    def _send_raw(self, raw: Raw) -> None:
        """A download: headers, then the bytes as stored (no copy into one buffer: they may be 100 MB)."""
        lines = ["HTTP/1.1 200 OK", f"Server: {self.server_version}", f"Content-Type: {raw.content_type}"]
        lines.append(f"Content-Length: {len(raw.data)}")
        if self.close_connection:
            lines.append("Connection: close")
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        self.wfile.write(raw.data)
