"""Customers' documents to Signzy's file service (persist), whose URLs the document products read.

A file is streamed as multipart/form-data (never read whole into memory), its size checked before
anything is sent; bytes already in memory go as base64 JSON. The answer's ``directURL`` is a public link
to a customer's document: masked in this process's logs, and sealed wherever the provider stores it.
"""

from __future__ import annotations

import base64
import mimetypes
import os
import secrets
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import mask_secret

from airflow_provider_signzy.exceptions import SignzyInputError, SignzyResponseError

if TYPE_CHECKING:
    from airflow_provider_signzy.hooks.signzy import SignzyHook

__all__ = ["DEFAULT_TTL", "MAX_IMAGE_BYTES", "MAX_UPLOAD_BYTES", "TTLS"]

#: The ``ttl`` values persist documents (anything else, or none, expires the URL after 30 seconds).
TTLS = (
    "2 mins",
    "10 mins",
    "30 mins",
    "2 hrs",
    "12 hrs",
    "7 days",
    "15 days",
    "1 month",
    "3 month",
    "6 month",
    "1 year",
    "3 years",
    "infinity",
)
#: Long enough for the task's retries to reuse the document (Airflow's default retry_delay is 5 minutes),
#: the shortest documented value that is: a customer's document should not stay downloadable for days.
DEFAULT_TTL = "30 mins"
#: persist's limit ("100Mb"), and the extraction products' limit per image.
MAX_UPLOAD_BYTES = 100 * 1024 * 1024
MAX_IMAGE_BYTES = 2 * 1024 * 1024
CHUNK = 256 * 1024
#: The mimetypes persist documents for base64 uploads.
BASE64_MIMETYPES = ("image/jpeg", "image/jpg", "image/png", "application/pdf")


class _MultipartFile:
    """A multipart/form-data body streamed from a file: re-iterable (a retry sends it again from the start),
    with a length, so requests sends Content-Length instead of chunks."""

    def __init__(self, opener: Any, size: int, filename: str, mimetype: str, fields: dict[str, str]) -> None:
        self.boundary = secrets.token_hex(16)
        self.opener = opener
        head = "".join(
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
            for name, value in fields.items()
        )
        head += (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            f"Content-Type: {mimetype}\r\n\r\n"
        )
        self.head, self.tail = head.encode(), f"\r\n--{self.boundary}--\r\n".encode()
        self.size = size

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return len(self.head) + self.size + len(self.tail)

    def __iter__(self) -> Iterator[bytes]:
        yield self.head
        with self.opener() as handle:
            while chunk := handle.read(CHUNK):
                yield chunk
        yield self.tail


def _source(source: Any) -> tuple[Any, int, str]:
    """(opener, size, file name) of a local path or an ``ObjectStoragePath`` (anything with open and stat)."""
    if isinstance(source, str | os.PathLike):
        path = os.fspath(source)
        return (lambda: open(path, "rb")), os.path.getsize(path), os.path.basename(path)
    if hasattr(source, "open") and hasattr(source, "stat"):
        size = source.stat()
        size = size.st_size if hasattr(size, "st_size") else int(size["size"])
        return (lambda: source.open("rb")), int(size), str(getattr(source, "name", "document"))
    raise SignzyInputError(
        f"A document must be a file path, an ObjectStoragePath or bytes, got {type(source).__name__}",
        field="files",
    )


def upload(
    hook: SignzyHook,
    source: str | os.PathLike[str] | bytes | Any,
    *,
    ttl: str = DEFAULT_TTL,
    filename: str | None = None,
    mimetype: str | None = None,
    key: str | None = None,
    max_bytes: int = MAX_UPLOAD_BYTES,
) -> str:
    """Upload one document; returns its ``directURL``. ``SignzyHook.upload_document`` documents it."""
    if ttl not in TTLS:
        raise SignzyInputError(f"ttl must be one of Signzy's values {', '.join(TTLS)}; got {ttl!r}", field="ttl")
    fields = {"ttl": ttl, **({"key": key} if key else {})}
    url = hook.config.persist_url.rstrip("/")
    if isinstance(source, bytes | bytearray):
        size, name = len(source), filename or "document"
        _check_size(size, max_bytes)
        kind = mimetype or mimetypes.guess_type(name)[0] or ""
        if kind not in BASE64_MIMETYPES:
            raise SignzyInputError(
                f"Bytes go to Signzy as base64 with a mimetype of {', '.join(BASE64_MIMETYPES)}; pass mimetype= "
                "or a filename= with its extension",
                field="mimetype",
            )
        body = {"base64String": base64.b64encode(bytes(source)).decode(), "mimetype": kind, **fields}
        response = hook.send_unauthenticated("POST", f"{url}/api/base64", json=body)
    else:
        opener, size, name = _source(source)
        name = filename or name
        _check_size(size, max_bytes)
        kind = mimetype or mimetypes.guess_type(name)[0] or "application/octet-stream"
        stream = _MultipartFile(opener, size, name.replace('"', ""), kind, fields)
        response = hook.send_unauthenticated(
            "POST", f"{url}/api/files/upload", data=stream, headers={"Content-Type": stream.content_type}
        )
    try:
        direct = response.json()["file"]["directURL"]
    except (ValueError, KeyError, TypeError):
        raise SignzyResponseError("Signzy's file service answered an upload without file.directURL") from None
    if not isinstance(direct, str) or not direct:
        raise SignzyResponseError("Signzy's file service answered an upload without file.directURL")
    mask_secret(direct)
    return direct


def _check_size(size: int, limit: int) -> None:
    if size > limit:
        what = "an image for an extraction product" if limit == MAX_IMAGE_BYTES else "a persist upload"
        # Not the file's name: it may hold the customer's.
        raise SignzyInputError(
            f"A document of {size} bytes is too large: {what} may be at most {limit} bytes (Signzy's limit). "
            "Nothing was sent",
            field="files",
        )
