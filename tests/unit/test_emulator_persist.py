"""The emulator's persist uploads (docs/emulator.md, "Persist uploads"): multipart, base64 JSON and base64 form
uploads, their directURLs, ttl on the emulator's clock, the 100Mb limit and keys. Real HTTP, plain requests."""

from __future__ import annotations

import base64
import socket
import time
from typing import Any

import pytest
import requests

from airflow_provider_signzy.emulator import SignzyEmulator

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40  # not a real image: bytes to round-trip
UPLOAD = "/api/files/upload"


def upload(emu: SignzyEmulator, data: bytes = PNG, name: str = "front.png", **fields: str) -> Any:
    files = {"file": (name, data, "image/png")}
    return requests.post(emu.url + UPLOAD, files=files, data=fields, timeout=10)


def upload_base64(emu: SignzyEmulator, data: bytes = PNG, **fields: Any) -> Any:
    body = {"base64String": base64.b64encode(data).decode(), "mimetype": "image/png", **fields}
    return requests.post(emu.url + "/api/base64", json=body, timeout=10)


def v2_error(answer: Any, status: int) -> str:
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert (error["name"], error["status"]) == ("Error", status)
    return str(error["message"])


def test_multipart_upload_answers_a_direct_url_that_serves_the_bytes(emulator: SignzyEmulator) -> None:
    answer = upload(emulator, name="../../scans/front side.png")
    assert answer.status_code == 200, answer.text
    file = answer.json()["file"]
    assert set(file) == {"id", "filetype", "size", "directURL", "protected"}
    assert (file["filetype"], file["size"], file["protected"]) == ("image/png", len(PNG), False)
    assert file["directURL"] == f"{emulator.url}/api/files/{file['id']}/download/front_side.png"
    download = requests.get(file["directURL"], timeout=10)
    assert (download.status_code, download.headers["Content-Type"], download.content) == (200, "image/png", PNG)
    state = emulator.state.snapshot()
    assert (state["uploads"], state["upload_bytes"], state["downloads"]) == (1, len(PNG), 1)
    assert state["requests"]["GET /api/files/{id}/download/{name}"] == 1
    assert not any(file["id"] in route for route in state["requests"])


def test_a_multipart_upload_keeps_the_file_itself_only(emulator: SignzyEmulator) -> None:
    file = upload(emulator, ttl="2 mins", optimize="true").json()["file"]
    stored = emulator.httpd.files.get(file["id"], emulator.state.now())
    assert stored is not None
    assert bytes(stored.data) == PNG  # the buffer was cut down to the file: no framing, no other fields


def test_base64_json_and_form_uploads(emulator: SignzyEmulator) -> None:
    as_json = upload_base64(emulator).json()["file"]
    assert as_json["directURL"].startswith(f"{emulator.url}/api/files/{as_json['id']}/download/")
    assert requests.get(as_json["directURL"], timeout=10).content == PNG
    form = {"base64string": base64.b64encode(PNG).decode(), "mimetype": "image/png", "ttl": "2 hrs"}
    as_form = requests.post(emulator.url + "/api/base64strings/upload", data=form, timeout=10).json()["file"]
    assert as_form["directURL"] == f"{emulator.url}/api/base64strings/{as_form['id']}/download/file.png"
    assert requests.get(as_form["directURL"], timeout=10).content == PNG
    multipart = requests.post(
        emulator.url + "/api/base64strings/upload", files={k: (None, v) for k, v in form.items()}, timeout=10
    )
    assert requests.get(multipart.json()["file"]["directURL"], timeout=10).content == PNG
    assert "mimetype" in v2_error(upload_base64(emulator, mimetype="image/gif"), 422)
    assert "base64String" in v2_error(requests.post(emulator.url + "/api/base64", json={}, timeout=10), 422)


@pytest.mark.parametrize(
    ("send", "lives"),
    [
        (lambda emu: upload(emu), 30),
        (lambda emu: upload(emu, ttl="2 mins"), 120),
        (lambda emu: upload(emu, ttl="5 mins"), 30),  # not a documented value
        (lambda emu: upload_base64(emu, ttl="12 hrs"), 43_200),
        (lambda emu: upload_base64(emu, ttl="forever"), 30),
        (lambda emu: upload_base64(emu, ttl="1 month"), 30 * 86_400),
        (
            lambda emu: requests.post(
                emu.url + "/api/base64strings/upload",
                data={"base64string": base64.b64encode(PNG).decode(), "mimetype": "image/png", "ttl": "infinity"},
                timeout=10,
            ),
            30,  # infinity is not offered on base64strings
        ),
    ],
)
def test_direct_urls_expire_after_their_ttl_on_the_emulators_clock(
    emulator: SignzyEmulator, send: Any, lives: float
) -> None:
    url = send(emulator).json()["file"]["directURL"]
    emulator.state.advance_clock(lives - 1)
    assert requests.get(url, timeout=10).status_code == 200
    requests.post(emulator.url + "/_emulator/clock", json={"advance": 2}, timeout=5)
    assert "expired" in v2_error(requests.get(url, timeout=10), 404)


def test_infinity_never_expires(emulator: SignzyEmulator) -> None:
    url = upload(emulator, ttl="infinity").json()["file"]["directURL"]
    emulator.state.advance_clock(10 * 365 * 86_400)
    assert requests.get(url, timeout=10).content == PNG


def test_a_key_protects_the_download(emulator: SignzyEmulator) -> None:
    file = upload(emulator, key="s3cretKey1").json()["file"]
    assert file["protected"] is True
    assert "key" in v2_error(requests.get(file["directURL"], timeout=10), 401)
    v2_error(requests.get(file["directURL"], params={"key": "wrong"}, timeout=10), 401)
    assert requests.get(file["directURL"], params={"key": "s3cretKey1"}, timeout=10).content == PNG
    assert "alphanumeric" in v2_error(upload(emulator, key="not a key!"), 422)


def test_uploads_over_100mb_are_refused_without_reading_the_body(emulator: SignzyEmulator) -> None:
    host, port = emulator.httpd.server_address[:2]
    for path, content_type in ((UPLOAD, "multipart/form-data; boundary=x"), ("/api/base64", "application/json")):
        with socket.create_connection((str(host), int(port)), timeout=5) as raw:
            head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
            raw.sendall(f"{head}Content-Length: {200 * 1024 * 1024}\r\n\r\n".encode())
            answer = raw.recv(4096).decode()  # answered before a byte of the body was sent
        assert answer.startswith("HTTP/1.1 413 ")
        assert '"status":413' in answer
        assert "100Mb" in answer
    assert emulator.state.snapshot()["uploads_refused"] == 2


def test_bad_uploads(emulator: SignzyEmulator) -> None:
    no_file = requests.post(emulator.url + UPLOAD, files={"ttl": (None, "2 mins")}, timeout=10)
    assert "file" in v2_error(no_file, 422)
    not_multipart = requests.post(emulator.url + UPLOAD, data=b"raw", timeout=10)
    assert "multipart" in v2_error(not_multipart, 422)
    first_wins = requests.post(
        emulator.url + UPLOAD,
        files=[("file", ("a.png", PNG, "image/png")), ("file", ("b.png", b"other", "image/png"))],
        timeout=10,
    ).json()["file"]
    assert (first_wins["size"], first_wins["directURL"].rsplit("/", 1)[1]) == (len(PNG), "a.png")
    assert v2_error(requests.get(f"{emulator.url}/api/files/{'0' * 24}/download/x.png", timeout=10), 404)


def test_latency_applies_to_uploads_and_reset_forgets_files() -> None:
    with SignzyEmulator(latency={"persist": 0.2}) as emu:
        started = time.monotonic()
        url = upload(emu).json()["file"]["directURL"]
        assert time.monotonic() - started >= 0.2
        requests.post(emu.url + "/_emulator/reset", timeout=5)
        assert requests.get(url, timeout=10).status_code == 404
