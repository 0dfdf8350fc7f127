"""Identity status in the emulator: 'pending' at creation, moved by a control call or on its own."""

from __future__ import annotations

import requests

from airflow_provider_signzy.emulator import SignzyEmulator
from airflow_provider_signzy.emulator.process import EmulatorControl

KEY = "demo-api-key-0123456789"


def session_for(emu: SignzyEmulator) -> tuple[requests.Session, str]:
    token = requests.post(emu.url + "/api/v2/patrons/login", json={"username": "demo", "password": KEY}, timeout=5)
    session = requests.Session()
    session.headers["Authorization"] = token.json()["id"]
    return session, f"{emu.url}/api/v2/patrons/{token.json()['userId']}/identities"


def test_identity_starts_pending_and_a_control_call_moves_it(emulator: SignzyEmulator) -> None:
    session, identities = session_for(emulator)
    created = session.post(identities, json={"type": "individualPan"}, timeout=5).json()
    assert created["status"] == "pending"
    moved = EmulatorControl(emulator.url).set_identity_status(created["id"], "verified")
    assert moved["status"] == "verified"
    assert session.get(f"{identities}/{created['id']}", timeout=5).json()["status"] == "verified"
    assert emulator.state.snapshot()["status_changes"] == 1


def test_star_moves_every_identity(emulator: SignzyEmulator) -> None:
    session, identities = session_for(emulator)
    ids = [session.post(identities, json={"type": "x"}, timeout=5).json()["id"] for _ in range(3)]
    assert EmulatorControl(emulator.url).set_identity_status("*", "verified") == {"moved": 3}
    assert {session.get(f"{identities}/{i}", timeout=5).json()["status"] for i in ids} == {"verified"}


def test_unknown_identity_or_bad_body_is_refused(emulator: SignzyEmulator) -> None:
    url = emulator.url + "/_emulator/identities/nope/status"
    assert requests.post(url, json={"status": "verified"}, timeout=5).status_code == 404
    assert requests.post(url, json={}, timeout=5).status_code == 400


def test_auto_status_moves_new_identities_after_the_delay(emulator: SignzyEmulator) -> None:
    EmulatorControl(emulator.url).auto_status("verified", after=30)
    session, identities = session_for(emulator)
    identity = f"{identities}/{session.post(identities, json={'type': 'x'}, timeout=5).json()['id']}"
    assert session.get(identity, timeout=5).json()["status"] == "pending"
    emulator.state.advance_clock(31)  # the emulator's clock: no test waits 30 s
    assert session.get(identity, timeout=5).json()["status"] == "verified"
    EmulatorControl(emulator.url).auto_status(None)
    later = session.post(identities, json={"type": "x"}, timeout=5).json()["id"]
    emulator.state.advance_clock(3600)
    assert session.get(f"{identities}/{later}", timeout=5).json()["status"] == "pending"


def test_auto_status_from_the_constructor_survives_reset() -> None:
    with SignzyEmulator(auto_status=("completed", 0)) as emu:
        emu.state.reset()
        session, identities = session_for(emu)
        created = session.post(identities, json={"type": "x"}, timeout=5).json()
        assert session.get(f"{identities}/{created['id']}", timeout=5).json()["status"] == "completed"
