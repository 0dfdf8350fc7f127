"""The emulator's products (docs/emulator.md, "Products"): identities with their own token, snoops authenticated
by it, one-step resources, Signzy's checks and the documented test inputs. Real HTTP, plain requests."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_provider_signzy.emulator import Patron, SignzyEmulator
from airflow_provider_signzy.emulator.cli import build_parser
from airflow_provider_signzy.products.catalog import IDENTITY, PRODUCTS, Product

KEY = "demo-api-key-0123456789"
SNOOPS = "/api/v2/snoops"
#: A well-formed value per catalog format (synthetic).
VALUES: dict[str, Any] = {
    "pan": "ABCDE1234F",
    "date": "31/01/1990",
    "flag": "true",
    "yesno": "no",
    "url": "https://files.example/doc.jpg",
    "urls": ["https://files.example/doc.pdf"],
    "year": "2017-18",
    "number": "1.00",
    "object": {},
}
TEXTS = {"name": "RAVI KUMAR", "state": "Maharashtra", "email": "ops@example.com"}
IMAGES = ["https://files.example/front.jpg", "https://files.example/back.jpg"]


class Client:
    """A logged-in patron: creates identities and runs products as Signzy's docs show the calls."""

    def __init__(self, emu: SignzyEmulator, username: str = "demo", api_key: str = KEY) -> None:
        self.url = emu.url
        login = requests.post(f"{emu.url}/api/v2/patrons/login", json={"username": username, "password": api_key})
        self.token, self.patron = login.json()["id"], login.json()["userId"]
        self.base = f"{emu.url}/api/v2/patrons/{self.patron}"

    def identity(self, type_: str, images: list[str] | None = None) -> dict[str, Any]:
        body = {
            "type": type_,
            "email": "ops@example.com",
            "callbackUrl": "https://cb.example/x",
            "images": images or [],
        }
        answer = requests.post(f"{self.base}/identities", json=body, headers={"Authorization": self.token}, timeout=5)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def snoop(self, identity: dict[str, Any], task: str | None, essentials: Any = None, **extra: Any) -> Any:
        body = {"service": "Identity", "itemId": identity["id"], "accessToken": identity["accessToken"], "task": task}
        return requests.post(self.url + SNOOPS, json={**body, "essentials": essentials or {}, **extra}, timeout=5)

    def resource(self, resource: str, task: str | None, essentials: Any, token: str | None = "mine") -> Any:
        body = {"essentials": essentials} | ({"task": task} if task else {})
        headers = {"Authorization": self.token if token == "mine" else token} if token else {}
        return requests.post(f"{self.base}/{resource}", json=body, headers=headers, timeout=5)

    def run(self, product: Product, essentials: dict[str, Any], images: list[str] | None = None) -> Any:
        if product.flow == IDENTITY:
            chosen = IMAGES[: max(product.min_images, 1)] if images is None else images
            identity = self.identity(product.identity_type or "passport", chosen)
            return self.snoop(identity, product.task, essentials)
        return self.resource(str(product.resource), product.task, essentials)


def well_formed(product: Product) -> dict[str, Any]:
    return {f.name: VALUES.get(f.format, TEXTS.get(f.name, "XY12345678")) for f in product.essentials}


def result_of(answer: Any) -> Any:
    body = answer.json()
    return body["response"]["result"] if "response" in body else body["result"]


def v2_error(answer: Any, status: int) -> str:
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert set(error) == {"name", "status", "message"}  # Signzy's v2 shape: status, not statusCode
    assert (error["name"], error["status"]) == ("Error", status)
    return str(error["message"])


@pytest.fixture
def client(emulator: SignzyEmulator) -> Client:
    return Client(emulator)


@pytest.mark.parametrize("name", sorted(PRODUCTS))
def test_every_product_answers_a_well_formed_call_deterministically(client: Client, name: str) -> None:
    product = PRODUCTS[name]
    first, second = client.run(product, well_formed(product)), client.run(product, well_formed(product))
    assert first.status_code == 200, first.text
    assert set(product.result_fields) <= set(result_of(first))
    assert result_of(first) == result_of(second)
    body = first.json()
    assert re.fullmatch(r"[0-9a-f]{24}", body["id"])
    assert body["essentials"] == well_formed(product)
    if product.flow == IDENTITY:
        assert (body["service"], body["task"]) == ("Identity", product.task)
        assert body["response"]["instance"] == {"id": body["itemId"], "callbackUrl": "https://cb.example/x"}
        assert isinstance(body["response"]["id"], int)
    else:
        assert body["patronId"] == client.patron
        assert body.get("task") == product.task


def test_identity_answer_carries_its_own_token_that_lists_never_show(tmp_path: Path) -> None:
    log = tmp_path / "tokens"
    with SignzyEmulator(token_log=str(log)) as emu:
        client = Client(emu)
        created = client.identity("individualPan", IMAGES[:1])
        assert re.fullmatch(r"[a-z0-9]{30,34}", created["accessToken"])
        assert re.fullmatch(r"[0-9a-f]{24}", created["id"])
        assert created["patronId"] == client.patron
        assert (created["type"], created["email"], created["images"]) == (
            "individualPan",
            "ops@example.com",
            IMAGES[:1],
        )
        assert created["callbackUrl"] == "https://cb.example/x"
        assert created["autoRecognition"] == created["verification"] == created["forgeryCheck"] == []
        assert created["status"] == "pending"
        auth = {"Authorization": client.token}
        listed = requests.get(f"{client.base}/identities", headers=auth, timeout=5).json()
        item = requests.get(f"{client.base}/identities/{created['id']}", headers=auth, timeout=5).json()
        assert "accessToken" not in listed[0]
        assert "accessToken" not in item
        assert "accessToken" not in requests.get(emu.url + "/_emulator/identities", timeout=5).json()["identities"][0]
        assert emu.state.identities[created["id"]]["accessToken"] == created["accessToken"]  # Python only
        assert created["accessToken"] not in str(emu.state.snapshot())
        assert created["accessToken"] in log.read_text().split()


def test_snoops_are_authenticated_by_the_identitys_token_alone(client: Client) -> None:
    identity = client.identity("individualPan")
    essentials = {"number": "ABCDE1234F", "name": "RAVI KUMAR"}
    assert client.snoop(identity, "verification", essentials).status_code == 200  # no Authorization header
    noise = requests.post(
        client.url + SNOOPS,
        json={"service": "Identity", "itemId": identity["id"], "accessToken": identity["accessToken"]}
        | {"task": "verification", "essentials": essentials},
        headers={"Authorization": "anything"},
        timeout=5,
    )
    assert noise.status_code == 200  # an Authorization header is ignored
    for wrong in (
        {**identity, "accessToken": "x" * 32},
        {**identity, "id": "f" * 24},
        {**identity, "accessToken": None},
    ):
        assert "itemId" in v2_error(client.snoop(wrong, "verification", essentials), 401)
    missing = requests.post(client.url + SNOOPS, json={"service": "Identity", "task": "verification"}, timeout=5)
    v2_error(missing, 401)


def test_snoop_selects_the_product_by_type_and_task(client: Client) -> None:
    pan = client.identity("individualPan")
    message = v2_error(client.snoop(pan, "decodeQR", {"url": VALUES["url"]}), 422)
    assert "decodeQR" in message
    assert "individualPan" in message
    assert "Identity" in v2_error(client.snoop(pan, "verification", {}, service="Snoop"), 422)
    business = client.identity("businessPan", IMAGES[:1])
    assert result_of(client.snoop(business, "autoRecognition"))["panType"] == "Business"
    assert client.snoop(client.identity("drivingLicence", IMAGES[:1]), "classify").status_code == 200
    voter = client.identity("VoterId")  # identities-workflow.md's spelling; the samples send voterid
    essentials = {"name": "RAVI KUMAR", "epicNumber": "ZZZ1234567", "state": "Kerala"}
    assert client.snoop(voter, "verification", essentials).status_code == 200


def test_snoops_share_the_patrons_rate_limit(client: Client, emulator: SignzyEmulator) -> None:
    identity = client.identity("individualPan")
    emulator.rate_limit(0.5, burst=1)
    assert client.snoop(identity, "fetch", {"number": "ABCDE1234F"}).status_code == 200
    assert client.snoop(identity, "fetch", {"number": "ABCDE1234F"}).status_code == 429


@pytest.mark.parametrize(
    ("name", "essentials", "quoted"),
    [
        ("pan.verification", {"number": "ABCDE12345", "name": "RAVI KUMAR"}, "Invalid PAN number ABCDE12345"),
        (
            "drivinglicence.fetch",
            {"number": "MH1220111234567", "dob": "1990-01-31"},
            "essentials.dob must be dd/mm/yyyy, got 1990-01-31",
        ),
        ("facematch", {"firstImage": "not a url", "secondImage": VALUES["url"]}, "got not a url"),
        ("gst.returns", {"gstin": "27ABCDE1234F1Z5", "financialYear": "2017"}, "got 2017"),
        ("pan.fetch", {"number": "ABCDE1234F", "fuzzy": True}, 'must be "true" or "false", got true'),
    ],
)
def test_malformed_input_is_a_422_quoting_it(
    client: Client, name: str, essentials: dict[str, Any], quoted: str
) -> None:
    assert quoted in v2_error(client.run(PRODUCTS[name], essentials), 422)


def test_missing_fields_and_images_are_422s_naming_them(client: Client) -> None:
    message = v2_error(client.run(PRODUCTS["pan.verification"], {"number": "ABCDE1234F"}), 422)
    assert "essentials.name" in message
    resource = v2_error(client.run(PRODUCTS["vehiclerc.basic_search"], {}), 422)
    assert "essentials.vehicleNumber" in resource
    assert "images" in v2_error(client.run(PRODUCTS["passport.extraction"], {}, IMAGES[:1]), 422)
    assert "essentials must be an object" in v2_error(client.run(PRODUCTS["pan.fetch"], ["x"]), 422)  # type: ignore[arg-type]
    assert emulator_snoops(client) == 0  # nothing reached a product


def emulator_snoops(client: Client) -> int:
    return int(requests.get(client.url + "/_emulator/state", timeout=5).json()["snoops"])


@pytest.mark.parametrize(
    ("name", "essentials", "message"),
    [
        ("pan.verification", {"number": "ABCDE0000F", "name": "RAVI KUMAR"}, "PAN not found"),
        ("drivinglicence.verification", {"number": "MH0000", "dob": "31/01/1990", "issueDate": "01/01/2010"}, None),
        ("voterid.verification", {"name": "RAVI KUMAR", "epicNumber": "ZZZ0000123", "state": "Kerala"}, None),
        ("passport.verification", {"fileNumber": "PN0000", "dob": "31/01/1990", "name": "RAVI KUMAR"}, None),
        ("aadhaar.verification", {"uid": "XXXXXXXX0000"}, "Aadhaar not found"),
    ],
)
def test_not_found_verifications_answer_verified_false(
    client: Client, name: str, essentials: dict[str, Any], message: str | None
) -> None:
    answer = client.run(PRODUCTS[name], essentials)
    assert answer.status_code == 200
    result = result_of(answer)
    assert result["verified"] in (False, "false")
    assert result["message"].endswith("not found")
    assert message is None or result["message"] == message


@pytest.mark.parametrize(
    ("name", "essentials", "field"),
    [
        ("pan.fetch", {"number": "ABCDE0000F"}, "number ABCDE0000F"),
        ("vehiclerc.basic_search", {"vehicleNumber": "MH12AB0000"}, "vehicleNumber MH12AB0000"),
        ("gst.search", {"gstin": "27ABCDE0000F1Z5"}, "gstin 27ABCDE0000F1Z5"),
        ("bankaccount.transfer", {"beneficiaryAccount": "1230000", "beneficiaryIFSC": "ZZZZ0123456"}, "1230000"),
        ("digilocker.get_eaadhaar", {"requestId": "req0000"}, "requestId req0000"),
        ("entityonboarding.delete_request", {"requestId": "req0000"}, "requestId req0000"),
    ],
)
def test_not_found_elsewhere_is_a_404_naming_the_input(
    client: Client, name: str, essentials: dict[str, Any], field: str
) -> None:
    message = v2_error(client.run(PRODUCTS[name], essentials), 404)
    assert message.startswith("No record found for ")
    assert field in message


def test_negative_and_positive_verifications(client: Client) -> None:
    pan = PRODUCTS["pan.verification"]
    positive = result_of(client.run(pan, {"number": "ABCDE1234F", "name": "Ravi Kumar"}))
    negative = result_of(client.run(pan, {"number": "ABCDE1234F", "name": "RAVI MISMATCH"}))
    assert positive == {"verified": True, "message": "Verification completed with positive result"} | {
        "upstreamName": "RAVI KUMAR"
    }
    assert negative["verified"] is False
    assert negative["message"] == "Verification completed with negative result"
    voter = result_of(
        client.run(PRODUCTS["voterid.verification"], {"name": "MISMATCH", "epicNumber": "ZZZ1", "state": "Kerala"})
    )
    assert voter["verified"] is voter["verification"] is False
    transfer = {"beneficiaryAccount": "123456789", "beneficiaryIFSC": "ZZZZ0123456", "beneficiaryName": "A MISMATCH"}
    assert result_of(client.run(PRODUCTS["bankaccount.transfer"], transfer))["nameMatch"] == "no"
    faces = {"firstImage": "https://files.example/a.jpg", "secondImage": "https://files.example/mismatch.jpg"}
    face = result_of(client.run(PRODUCTS["facematch"], faces))
    assert face["verified"] == "false"
    assert face["matchPercentage"] < 35
    same = result_of(client.run(PRODUCTS["facematch"], {**faces, "secondImage": "https://files.example/b.jpg"}))
    assert (same["verified"], same["matchPercentage"] > 80) == ("true", True)


def test_unreadable_documents_are_404_invalid_data(client: Client) -> None:
    unreadable = ["https://files.example/unreadable-front.jpg", IMAGES[1]]
    assert v2_error(client.run(PRODUCTS["aadhaar.extraction"], {}, unreadable), 404) == "invalid data"
    masking = client.run(PRODUCTS["aadhaar.masking"], {"url": "https://files.example/unreadable.jpg"})
    assert v2_error(masking, 404) == "invalid data"


def test_results_hold_only_synthetic_or_given_values(client: Client) -> None:
    fetched = result_of(client.run(PRODUCTS["pan.fetch"], {"number": "abcde1234f"}))
    assert fetched["number"] == "ABCDE1234F"
    aadhaar = result_of(client.run(PRODUCTS["aadhaar.extraction"], {"summary": "true"}))
    assert re.fullmatch(r"X{8}[1-9]{4}", aadhaar["uid"])
    assert "summary" in aadhaar
    masked = result_of(client.run(PRODUCTS["aadhaar.masking"], {"url": VALUES["url"]}))["maskedImages"][0]
    assert masked.startswith(client.url + "/_emulator/media/")
    image = requests.get(masked, timeout=5)
    assert (image.status_code, image.headers["Content-Type"], image.content[:4]) == (200, "image/png", b"\x89PNG")


def test_one_step_resources_need_the_patron_token() -> None:
    patrons = [Patron("alice", "alice-key-123456", "patron-a"), Patron("bob", "bob-key-1234567", "patron-b")]
    with SignzyEmulator(patrons) as emu:
        alice, bob = Client(emu, "alice", "alice-key-123456"), Client(emu, "bob", "bob-key-1234567")
        essentials = {"vehicleNumber": "MH12AB1234"}
        none = alice.resource("vehicleregistrations", "basicSearch", essentials, token=None)
        assert none.status_code == 401
        assert none.json()["error"]["code"] == "AUTHORIZATION_REQUIRED"
        other = alice.resource("vehicleregistrations", "basicSearch", essentials, token=bob.token)
        assert other.status_code == 401
        assert alice.resource("vehicleregistrations", "basicSearch", essentials).status_code == 200
        assert "nothing" in v2_error(alice.resource("vehicleregistrations", "nothing", essentials), 422)
        deleted = alice.resource("individualonboardings", "deleteRequest", {"requestId": "req-1"})
        assert deleted.json()["result"] == {"message": "User with that RequestId is deleted", "statusCode": 200}
        unknown = alice.resource("nothings", None, {})
        assert unknown.status_code == 404


def test_state_counts_snoops_per_identity_and_product(client: Client, emulator: SignzyEmulator) -> None:
    identity = client.identity("individualPan")
    for _ in range(3):
        client.snoop(identity, "fetch", {"number": "ABCDE1234F"})
    client.resource("vehicleregistrations", "basicSearch", {"vehicleNumber": "MH12AB1234"})
    state = requests.get(client.url + "/_emulator/state", timeout=5).json()
    assert (state["identities_created"], state["snoops"], state["resource_calls"]) == (1, 3, 1)
    assert state["snoops_by_product"] == {"pan.fetch": 3}
    assert state["resource_calls_by_product"] == {"vehiclerc.basic_search": 1}
    assert state["requests"]["POST /api/v2/snoops"] == 3
    assert state["requests"]["POST /api/v2/patrons/{userId}/vehicleregistrations"] == 1
    assert emulator.state.snoops_of(identity["id"]) == 3
    recent = requests.get(client.url + "/_emulator/snoops", timeout=5).json()["snoops"]
    assert [(s["product"], s["itemId"]) for s in recent] == [("pan.fetch", identity["id"])] * 3
    assert set(emulator.state.identity(identity["id"]) or {}) == set(identity) - {
        "accessToken",
        "autoRecognition",
        "verification",
        "forgeryCheck",
    }  # snoops do not grow the identity


class NoScan(dict[str, Any]):
    """A dict that fails any walk over it: lookups by key only."""

    def _scan(self, *args: object) -> Iterator[Any]:
        raise AssertionError("the identities were scanned")

    __iter__ = values = items = keys = _scan  # type: ignore[assignment]


def test_a_hundred_thousand_identities_are_found_by_key(client: Client, emulator: SignzyEmulator) -> None:
    state = emulator.state
    created = [state.create_identity(client.patron, {"type": "individualPan"}) for _ in range(100_000)]
    last = created[-1]
    state.identities = NoScan(state.identities)
    assert len(state.identities) == 100_000
    answer = client.snoop(last, "fetch", {"number": "ABCDE1234F"})
    assert answer.status_code == 200, answer.text
    item = requests.get(f"{client.base}/identities/{last['id']}", headers={"Authorization": client.token}, timeout=5)
    assert item.json()["id"] == last["id"]
    assert state.identity_for_snoop(created[0]["id"], created[0]["accessToken"]) is not None
    assert state.identity_for_snoop(created[0]["id"], last["accessToken"]) is None


def test_latency_per_product_from_the_constructor_the_control_endpoint_and_the_cli() -> None:
    with SignzyEmulator(latency={"pan.fetch": 0.2}) as emu:
        client = Client(emu)
        started = time.monotonic()
        assert client.run(PRODUCTS["pan.fetch"], {"number": "ABCDE1234F"}).status_code == 200
        assert time.monotonic() - started >= 0.2
        set_all = requests.post(emu.url + "/_emulator/latency", json={"*": 0.2}, timeout=5)
        assert set_all.json() == {"latency": {"*": 0.2}}
        started = time.monotonic()
        assert client.resource("vehicleregistrations", "basicSearch", {"vehicleNumber": "MH12AB1234"}).ok
        assert time.monotonic() - started >= 0.2
        assert requests.post(emu.url + "/_emulator/latency", json={"pan.fetchh": 1}, timeout=5).status_code == 400
        assert requests.delete(emu.url + "/_emulator/latency", timeout=5).json() == {"latency": {}}
        assert emu.httpd.latency_for("pan.fetch") == 0.0
        requests.post(emu.url + "/_emulator/reset", timeout=5)
        assert emu.httpd.latency_for("pan.fetch") == 0.2  # back to the constructor's
    args = build_parser().parse_args(["--latency", "0.2", "--latency", "pan.verification=0.3"])
    assert dict(args.latency) == {"*": 0.2, "pan.verification": 0.3}
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--latency", "fast"])


def test_api_bodies_over_a_megabyte_are_refused_unread(emulator: SignzyEmulator) -> None:
    host, port = emulator.httpd.server_address[:2]
    with socket.create_connection((str(host), int(port)), timeout=5) as raw:
        raw.sendall(f"POST {SNOOPS} HTTP/1.1\r\nHost: x\r\nContent-Length: {50 * 1024 * 1024}\r\n\r\n".encode())
        head = raw.recv(4096).decode()  # answered before a byte of the body was sent
    assert head.startswith("HTTP/1.1 413 ")
    assert "Connection: close" in head
