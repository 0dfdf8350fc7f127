"""Documents to Signzy's file service through the hook, against the emulator's persist routes over real HTTP:
streamed, size-checked before sending, the documented ttl values only, the link dead after its ttl."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from airflow_version import requires_airflow

from airflow_provider_signzy.emulator import SignzyEmulator
from airflow_provider_signzy.exceptions import SignzyInputError
from airflow_provider_signzy.hooks.documents import DEFAULT_TTL
from airflow_provider_signzy.hooks.signzy import SignzyHook
from airflow_provider_signzy.utils.connection_config import persist_url_for

MakeConn = Callable[..., str]
SCAN = b"\xff\xd8\xff\xe0 synthetic scan of a document " * 64


def test_a_file_is_uploaded_and_its_link_serves_it_until_the_ttl(
    make_conn: MakeConn, emulator: SignzyEmulator, tmp_path: Path
) -> None:
    make_conn()
    scan = tmp_path / "front.jpg"
    scan.write_bytes(SCAN)
    with SignzyHook() as hook:
        url = hook.upload_document(scan)
    assert url.startswith(emulator.url + "/api/files/")
    assert requests.get(url, timeout=5).content == SCAN
    assert DEFAULT_TTL == "30 mins"
    emulator.state.advance_clock(29 * 60)
    assert requests.get(url, timeout=5).status_code == 200
    emulator.state.advance_clock(2 * 60)
    assert requests.get(url, timeout=5).status_code == 404  # a public link to a document must not outlive its use
    state = emulator.state.snapshot()
    assert state["uploads"] == 1
    assert state["logins"] == 0  # no token goes to the file service


def test_bytes_go_as_base64_with_the_ttl_asked(make_conn: MakeConn, emulator: SignzyEmulator) -> None:
    make_conn()
    with SignzyHook() as hook:
        url = hook.upload_document(SCAN, filename="back.png", ttl="2 mins")
    assert requests.get(url, timeout=5).content == SCAN
    emulator.state.advance_clock(3 * 60)
    assert requests.get(url, timeout=5).status_code == 404


@requires_airflow("3.1", why="Airflow 3.0's ObjectStoragePath refuses file:// (an incompatible protocol)")
def test_an_object_storage_path_is_uploaded(make_conn: MakeConn, emulator: SignzyEmulator, tmp_path: Path) -> None:
    from airflow.sdk import ObjectStoragePath

    (tmp_path / "aadhaar-front.png").write_bytes(SCAN)
    make_conn()
    with SignzyHook() as hook:
        url = hook.upload_document(ObjectStoragePath(f"file://{tmp_path}/aadhaar-front.png"))
    assert requests.get(url, timeout=5).content == SCAN
    assert emulator.state.snapshot()["upload_bytes"] >= len(SCAN)


def test_too_large_or_a_bad_ttl_fails_before_sending(
    make_conn: MakeConn, emulator: SignzyEmulator, tmp_path: Path
) -> None:
    make_conn()
    big = tmp_path / "ravi-kumar-aadhaar.jpg"  # a name that holds personal data: never in the message
    big.write_bytes(b"x" * 4096)
    with SignzyHook() as hook:
        with pytest.raises(SignzyInputError) as raised:
            hook.upload_document(big, max_bytes=1024)
        assert "4096 bytes" in str(raised.value)
        assert "ravi" not in str(raised.value)
        with pytest.raises(SignzyInputError, match="ttl must be one of"):
            hook.upload_document(big, ttl="5 mins")
        with pytest.raises(SignzyInputError, match="pass mimetype="):
            hook.upload_document(b"bytes of no known kind")
    assert emulator.state.snapshot()["total_requests"] == 0


def test_a_large_file_is_streamed_not_read_whole(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from airflow_provider_signzy.emulator.process import emulator_process
    from airflow_provider_signzy.emulator.pytest_plugin import connection_json

    large = tmp_path / "statement.pdf"
    with large.open("wb") as handle:
        for _ in range(40):
            handle.write(b"%PDF synthetic " * 70_000)  # about 40 MB
    # The emulator in a process of its own: tracemalloc below measures this process, the client, only.
    with emulator_process() as emulator:
        monkeypatch.setenv("AIRFLOW_CONN_SIGNZY_DEFAULT", connection_json(emulator.url))
        with SignzyHook() as hook:
            hook.upload_document(SCAN, filename="warm.jpg")  # warms the session, so the peak below is the body's
            tracemalloc.start()
            try:
                hook.upload_document(large)
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
        uploaded = emulator.state()["upload_bytes"]
    assert large.stat().st_size > 35_000_000
    assert peak < 8_000_000, f"the upload held {peak} bytes at once"
    assert uploaded >= large.stat().st_size


def test_files_of_an_extraction_product_are_uploaded_only_after_the_inputs_are_checked(
    make_conn: MakeConn, emulator: SignzyEmulator, tmp_path: Path
) -> None:
    make_conn()
    front = tmp_path / "front.jpg"
    front.write_bytes(SCAN)
    with SignzyHook() as hook:
        with pytest.raises(SignzyInputError, match="needs two images"):
            hook.run_product("passport.extraction", files=[front])  # front and back are both needed
        assert emulator.state.snapshot()["uploads"] == 0
        big = tmp_path / "big.jpg"
        big.write_bytes(b"x" * (2 * 1024 * 1024 + 1))
        with pytest.raises(SignzyInputError, match="at most 2097152 bytes"):
            hook.run_product("pan.extraction", files=[big])
        result = hook.run_product("passport.extraction", files=[front, front])
    assert "passportNumber" in result
    state = emulator.state.snapshot()
    assert (state["uploads"], state["identities_created"], state["snoops"]) == (2, 1, 1)
    [identity] = emulator.state.identities.values()
    assert all(url.startswith(emulator.url) for url in identity["images"])


@pytest.mark.parametrize(
    ("base", "persist"),
    [
        ("https://signzy.tech", "https://persist.signzy.tech"),
        ("https://preproduction.signzy.tech", "https://preproduction-persist.signzy.tech"),
        ("http://127.0.0.1:8089", "http://127.0.0.1:8089"),
    ],
)
def test_the_file_service_follows_the_api_host(base: str, persist: str) -> None:
    assert persist_url_for(base) == persist


def test_a_persist_url_extra_must_be_https(make_conn: MakeConn) -> None:
    from airflow_provider_signzy.exceptions import SignzyConfigError

    make_conn(persist_url="http://files.example.com")
    with pytest.raises(SignzyConfigError, match="extra 'persist_url' is http://"):
        SignzyHook().upload_document(SCAN)
