"""The emulator's synthetic product results: one builder per catalog product, its values picked by a hash of
the call's input (the same input always gets the same result), and the test inputs' marks (docs/emulator.md)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from airflow_provider_signzy.products.catalog import Product

NOT_FOUND_MARK = "0000"
MISMATCH_MARK = "mismatch"
UNREADABLE_MARK = "unreadable"

#: The identifier whose ``0000`` means "no record": verification products answer ``verified: false``, others 404.
KEY_FIELDS = {
    "pan.fetch": "number",
    "pan.verification": "number",
    "aadhaar.verification": "uid",
    "drivinglicence.verification": "number",
    "drivinglicence.fetch": "number",
    "voterid.verification": "epicNumber",
    "passport.verification": "fileNumber",
    "voterid.search": "epicNumber",
    "voterid.detailed_search": "epicNumber",
    "vehiclerc.basic_search": "vehicleNumber",
    "vehiclerc.detailed_search": "vehicleNumber",
    "bankaccount.transfer": "beneficiaryAccount",
    "bankaccount.verify_amount": "signzyId",
    "gst.search": "gstin",
    "gst.detailed_search": "gstin",
    "gst.pan_search": "panNumber",
    "gst.returns": "gstin",
    "digilocker.get_eaadhaar": "requestId",
    "digilocker.get_details": "requestId",
    "individualonboarding.delete_request": "requestId",
    "entityonboarding.delete_request": "requestId",
}
#: Document fields: a URL containing ``unreadable`` there (or in the identity's images) is a 404 "invalid data".
DOCUMENT_FORMATS = ("url", "urls")
NOT_DOCUMENTS = ("redirectUrl", "callbackUrl")


def shown(value: Any) -> str:
    """A value as Signzy's messages quote it: strings as they are, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), default=str)


@dataclass(frozen=True)
class Call:
    """One checked call, as the result builders below see it."""

    product: Product
    essentials: dict[str, Any]
    images: list[Any]
    identity_type: str | None
    base_url: str

    @property
    def positive(self) -> bool:
        """False when the name to verify contains ``MISMATCH`` (a negative verification)."""
        name = self.essentials.get("name") or self.essentials.get("beneficiaryName")
        return not (isinstance(name, str) and MISMATCH_MARK in name.lower())

    @property
    def seed(self) -> str:
        """What the synthetic values hang on: the main identifier (so products agree on a PAN), else all input."""
        key = KEY_FIELDS.get(self.product.name)
        if key:
            return shown(self.essentials[key]).upper()
        return json.dumps([self.essentials, self.images], sort_keys=True, default=str)

    def documents(self) -> list[str]:
        found = [str(image) for image in self.images]
        for field in self.product.essentials:
            value = self.essentials.get(field.name)
            if field.format in DOCUMENT_FORMATS and field.name not in NOT_DOCUMENTS and value is not None:
                found.extend(str(v) for v in (value if isinstance(value, list) else [value]))
        return found


# -- synthetic results --

POSITIVE = "Verification completed with positive result"
NEGATIVE = "Verification completed with negative result"
_PEOPLE = (
    ("RAVI KUMAR", "M"),
    ("ASHA VERMA", "F"),
    ("SUNIL SHARMA", "M"),
    ("PRIYA NAIR", "F"),
    ("ANIL MEHTA", "M"),
    ("KAVITA RAO", "F"),
)
_ELDERS = ("SURESH KUMAR", "RAMESH VERMA", "MOHAN SHARMA", "GOPAL NAIR")
_MOTHERS = ("LATA KUMAR", "SITA VERMA", "USHA SHARMA", "GITA NAIR")
_FIRMS = ("EXAMPLE TRADERS", "SAMPLE ENTERPRISES", "DEMO INDUSTRIES", "TEST SUPPLIES")
#: (city, district, state, state code, GST state code, pincode)
_PLACES = (
    ("Pune", "Pune", "Maharashtra", "MH", "27", "411001"),
    ("Bengaluru", "Bengaluru Urban", "Karnataka", "KA", "29", "560001"),
    ("Kochi", "Ernakulam", "Kerala", "KL", "32", "682001"),
    ("Jaipur", "Jaipur", "Rajasthan", "RJ", "08", "302001"),
)
_ID_TYPES = {"aadhaar": "aadhaar", "individualpan": "individualPan", "businesspan": "businessPan"}
_ID_TYPES.update({"passport": "passport", "drivinglicence": "dl"})


class Synth:
    """Values picked by a hash of the call's seed; digits are 1-9, so no made-up identifier holds ``0000``."""

    def __init__(self, call: Call) -> None:
        self.seed, self.base_url = call.seed.encode(), call.base_url
        self.name, sex = self.pick("person", _PEOPLE)
        self.gender, self.sex = ("MALE", "M") if sex == "M" else ("FEMALE", "F")
        self.father, self.mother, self.firm = self.pick("f", _ELDERS), self.pick("m", _MOTHERS), self.pick("b", _FIRMS)
        self.city, self.district, self.state, self.code, self.gst_code, self.pincode = self.pick("place", _PLACES)
        self.house, self.dob = str(1 + self.num("house", 198)), self.date("dob", 1960, 40)
        self.yob, self.address = self.dob[-4:], f"{self.house} Sample Street, {self.city}"
        self.uid = "XXXXXXXX" + self.digits("uid", 4)

    def digest(self, salt: str) -> bytes:
        return hashlib.sha256(self.seed + b"\0" + salt.encode()).digest()

    def num(self, salt: str, modulo: int) -> int:
        return int.from_bytes(self.digest(salt)[:8], "big") % modulo

    def pick(self, salt: str, options: tuple[Any, ...]) -> Any:
        return options[self.num(salt, len(options))]

    def digits(self, salt: str, count: int) -> str:
        return "".join(str(1 + b % 9) for b in self.digest(salt)[:count])

    def letters(self, salt: str, count: int) -> str:
        return "".join(chr(65 + b % 26) for b in self.digest(salt)[:count])

    def hex(self, salt: str, length: int = 24) -> str:
        return self.digest(salt).hex()[:length]

    def date(self, salt: str, first: int, years: int) -> str:
        n = self.num(salt, 336 * years)
        return f"{1 + n % 28:02d}/{1 + n // 28 % 12:02d}/{first + n // 336}"

    def media(self, label: str) -> str:
        """An image URL on the emulator itself (``GET`` answers a 1x1 PNG)."""
        return f"{self.base_url}/_emulator/media/{self.hex(label)}.png"

    def split(self, line: str = "") -> dict[str, Any]:
        return {
            "district": [self.district],
            "state": [[self.state, self.code]],
            "city": [self.city],
            "pincode": self.pincode,
            "country": ["IN", "IND", "INDIA"],
            "addressLine": line or f"{self.house} Sample Street",
        }

    def summary(self, number: str, name: str, issue: str = "", expiry: str = "") -> dict[str, Any]:
        """The ``summary`` keys of PAN extraction, the only ones the docs list; reused for other documents."""
        return {
            "number": number,
            "name": name,
            "dob": self.dob,
            "address": self.address,
            "splitAddress": self.split(),
            "gender": self.gender,
            "guardianName": self.father,
            "issueDate": issue,
            "expiryDate": expiry,
        }


def _later(date: str, years: int) -> str:
    return f"{date[:6]}{int(date[6:]) + years}"


def _verdict(c: Call) -> dict[str, Any]:
    return {"verified": c.positive, "message": POSITIVE if c.positive else NEGATIVE}


def _pan_extraction(s: Synth, c: Call) -> dict[str, Any]:
    business = str(c.identity_type).lower() == "businesspan"
    name = s.firm if business else s.name
    # 'Z' as the 4th letter is no PAN holder type: never a real PAN.
    number = f"AAAZ{name[0]}{s.digits('pan', 4)}{s.letters('pan', 1)}"
    summary = {**s.summary(number, name), "address": "", "splitAddress": {}}
    father = "" if business else s.father
    kind = "Business" if business else "Individual"
    return {"name": name, "fatherName": father, "dob": s.dob, "number": number, "panType": kind, "summary": summary}


def _aadhaar_extraction(s: Synth, c: Call) -> dict[str, Any]:
    result = {"uid": s.uid, "vid": "XXXXXXXXXXXX" + s.digits("vid", 4), "name": s.name, "dob": s.dob}
    result.update({"yob": s.yob, "pincode": s.pincode, "address": s.address, "gender": s.gender})
    result.update({"splitAddress": s.split(), "uidHash": s.digest("uid").hex()})
    if c.essentials.get("summary") == "true":
        result["summary"] = s.summary(s.uid, s.name)
    return result


def _aadhaar_offline(s: Synth, c: Call) -> dict[str, Any]:
    last4 = s.uid[-4:]
    given = {k: "yes" if c.essentials.get(k) else "no" for k in ("email", "mobile")}
    result = {"name": s.name, "dob": s.dob, "yob": s.yob, "gender": s.gender, "address": s.address}
    result.update({"emailHash": s.digest("email").hex(), "mobileNoHash": s.digest("mobile").hex()})
    result.update({"photo": s.media("photo"), "uidLast4Digits": last4, "uid": s.uid})
    result.update({"generationDate": s.date("generated", 2019, 5), "emailHashVerified": given["email"]})
    return {**result, "mobileHashVerified": given["mobile"], "splitAddress": s.split()}


def _aadhaar_qr(s: Synth, c: Call) -> dict[str, Any]:
    split = {"house": s.house, "street": "Sample Street", "lm": "", "vtc": s.city, "postOffice": s.city}
    split.update({"district": s.district, "state": s.state, "pincode": s.pincode, "country": "India"})
    split["addressLine"] = s.address
    result = {"uid": s.uid, "name": s.name, "gender": s.gender, "yob": s.yob, "fatherName": s.father}
    return {**result, "address": s.address, "splitAddress": split}


def _aadhaar_verification(s: Synth, c: Call) -> dict[str, Any]:
    band = s.pick("age", ("20-30", "30-40", "40-50", "50-60"))
    mobile = "XXXXXXX" + s.digits("mobile", 3)
    return {"verified": "true", "ageBand": band, "state": s.state, "mobileNumber": mobile, "gender": s.gender}


def _dl_extraction(s: Synth, c: Call) -> dict[str, Any]:
    issued = s.date("issued", 2005, 15)
    number = f"{s.code}{s.digits('rto', 2)}{issued[-4:]}{s.digits('dl', 7)}"
    result: dict[str, Any] = {
        "dlType": [s.pick("class", ("LMV", "MCWG"))],
        "issueDate": issued,
        "expiryDate": _later(issued, 20),
    }
    result.update({"dob": s.dob, "name": s.name, "number": number, "state": s.state, "address": s.address})
    result.update({"guardianName": s.father, "gaurdianName": s.father, "splitAddress": s.split()})
    return {**result, "summary": s.summary(number, s.name, issued, _later(issued, 20))}


def _dl_verification(s: Synth, c: Call) -> dict[str, Any]:
    issued = c.essentials["issueDate"]
    more = {"issueDate": issued, "expiryDate": _later(issued, 20), "vehicleClass": ["LMV"]}
    return {**_verdict(c), "moreInfo": more}


def _dl_fetch(s: Synth, c: Call) -> dict[str, Any]:
    issued = s.date("issued", 2005, 15)
    address = {"completeAddress": s.address, "type": "permanent", "splitAddress": s.split()}
    details = {"dateOfIssue": issued, "dateOfLastTransaction": issued, "status": "ACTIVE", "lastTransactedAt": s.city}
    details.update({"name": s.name, "fatherOrHusbandName": s.father, "address": s.address})
    details.update({"addressList": [address], "photo": s.media("photo"), "splitAddress": s.split()})
    validity: dict[str, Any] = {
        "nonTransport": {"from": issued, "to": _later(issued, 20)},
        "transport": {"from": "", "to": ""},
    }
    validity.update({"hazardousValidTill": "", "hillValidTill": ""})
    badge = {"badgeIssueDate": issued, "badgeNo": s.digits("badge", 8), "classOfVehicle": ["LMV"]}
    cov = {"covCategory": "NT", "classOfVehicle": "LMV", "covIssuedate": issued}
    result = {"dlNumber": c.essentials["number"], "dob": c.essentials["dob"], "badgeDetails": [badge]}
    return {**result, "dlValidity": validity, "detailsOfDrivingLicence": details, "covDetails": [cov]}


def _voter(s: Synth, c: Call) -> dict[str, Any]:
    result = {"epicNumber": "ZZZ" + s.digits("epic", 7), "name": s.name, "fatherName": s.father, "state": s.state}
    result.update({"dob": s.dob, "yob": s.yob, "gender": s.gender, "address": s.address})
    return {**result, "splitAddress": s.split()}


def _voter_verification(s: Synth, c: Call) -> dict[str, Any]:
    return {**_verdict(c), "verification": c.positive}  # the table says verified, the sample verification


def _voter_search(s: Synth, c: Call) -> dict[str, Any]:
    return {"name": s.name, "dob": s.dob, "district": s.district, "state": c.essentials["state"]} | {
        "fatherName": s.father,
        "gender": s.gender,
    }


def _voter_detailed(s: Synth, c: Call) -> dict[str, Any]:
    more = {"motherName": s.mother, "relativeName": s.father, "yob": s.yob, "pincode": s.pincode}
    more.update({"houseNumber": s.house, "streetName": "Sample Street", "address": s.address, "husbandName": ""})
    return {**_voter_search(s, c), **more, "splitAddress": s.split()}


def _passport(s: Synth, c: Call) -> dict[str, Any]:
    issued = s.date("issued", 2012, 10)
    number = "Z" + s.digits("passport", 7)
    result = {"name": s.name, "passportNumber": number, "fileNumber": f"{s.code}Z{s.digits('file', 12)}"}
    result.update({"birthDate": s.dob, "issueDate": issued, "expiryDate": _later(issued, 10), "sex": s.sex})
    result.update({"nationality": "INDIAN", "country": ["IN", "IND", "INDIA"], "parentsGuardianName": s.father})
    result.update({"placeOfBirth": s.city.upper(), "placeOfIssue": s.city.upper(), "address": s.address})
    result.update({"pincode": s.pincode, "splitAddress": s.split()})
    return {**result, "summary": s.summary(number, s.name, issued, _later(issued, 10))}


def _cheque(s: Synth, c: Call) -> dict[str, Any]:
    result = {"name": s.name, "accountNumber": s.digits("account", 12), "ifsc": "ZZZZ0" + s.digits("ifsc", 6)}
    result.update({"micrCode": s.digits("micr", 9), "bankName": "EXAMPLE BANK", "branch": s.city.upper()})
    return {**result, "address": s.address, "pincode": s.pincode, "contact": "", "splitAddress": s.split()}


def _classification(s: Synth, c: Call) -> dict[str, Any]:
    id_type = _ID_TYPES.get(str(c.identity_type).lower(), "unknown")
    return {"status": "success", "classification": {"status": "success", "idType": id_type, "message": ""}}


def _vehicle(s: Synth, c: Call) -> dict[str, Any]:
    number, registered = c.essentials["vehicleNumber"].upper(), s.date("registered", 2010, 12)
    chassis, engine = (
        "MZZ" + s.letters("chassis", 3) + s.digits("chassis", 11),
        s.letters("engine", 2) + s.digits("e", 8),
    )
    fuel, insured = s.pick("fuel", ("PETROL", "DIESEL")), s.date("insured", 2026, 3)
    if c.product.task == "basicSearch":
        result = {"registrationNo": number, "registrationDate": registered, "chassisNo": chassis, "engineNo": engine}
        result.update({"ownerName": s.name, "vehicleClass": "Motor Car(LMV)", "fuel": fuel})
        result.update({"makerModel": "EXAMPLE MOTORS SAMPLE SEDAN", "fitnessUpto": _later(registered, 15)})
        result.update({"insuranceUpto": insured, "pollutionNorms": "BHARAT STAGE VI", "status": "ACTIVE"})
        return {**result, "vehicleNumber": number, "splitPermanentAddress": s.split()}
    result = {"regNo": number, "regDate": registered, "owner": s.name, "ownerFatherName": s.father}
    result.update({"chassis": chassis, "engineNo": engine, "class": "Motor Car(LMV)", "type": fuel})
    result.update({"regAuthority": f"{s.city.upper()} RTO", "rcExpiryDate": _later(registered, 15)})
    return {**result, "vehicleInsuranceUpto": insured, "rcFinancer": "", "splitPermanentAddress": s.split()}


def _bank_transfer(s: Synth, c: Call) -> dict[str, Any]:
    given, mobile = c.essentials.get("beneficiaryName"), c.essentials.get("beneficiaryMobile")
    name = given.upper() if isinstance(given, str) and c.positive else s.name
    rrn = s.digits("rrn", 12)
    transfer = {"response": "Transaction Successful", "bankRRN": rrn, "beneName": name}
    transfer.update(
        {"beneMMID": s.digits("mmid", 7), "beneMobile": mobile or "", "beneIFSC": c.essentials["beneficiaryIFSC"]}
    )
    result = {"active": "yes", "nameMatch": "yes" if c.positive else "no", "mobileMatch": "yes" if mobile else "no"}
    audit = {"nature": "BANK RRN", "value": rrn, "timestamp": s.date("at", 2024, 2)}
    return {**result, "signzyReferenceId": s.hex("reference"), "auditTrail": audit, "bankTransfer": transfer}


def _verify_amount(s: Synth, c: Call) -> dict[str, Any]:
    mobile, mmid = "XXXXXX" + s.digits("mobile", 4), s.digits("mmid", 7)
    return {"amountMatch": "true", "ownerName": s.name, "owerName": s.name, "mobile": mobile, "mmid": mmid}


def _face_match(s: Synth, c: Call) -> dict[str, Any]:
    same = MISMATCH_MARK not in c.essentials["secondImage"].lower()
    score = 85 + s.num("score", 1400) / 100 if same else 5 + s.num("score", 1500) / 100
    message = POSITIVE if same else NEGATIVE
    return {"verified": "true" if same else "false", "message": message, "matchPercentage": round(score, 2)}


def _gst(s: Synth, c: Call) -> dict[str, Any]:
    pan = c.essentials.get("panNumber")
    gstin = f"{s.gst_code}{pan.upper()}1Z{s.digits('gstin', 1)}" if pan else c.essentials["gstin"].upper()
    email = c.essentials.get("email") or "accounts@example.com"
    record = {"gstin": gstin, "regType": "Regular", "registrationName": s.firm, "applicationStatus": "Active"}
    record.update({"gstinRefId": "", "tinNumber": s.digits("tin", 11), "mobNum": "XXXXXX" + s.digits("m", 4)})
    detailed = {"legalNameOfBusiness": s.firm, "tradeNameOfBusiness": s.firm, "gstinStatus": "Active"}
    detailed["registrationDate"] = s.date("registered", 2017, 6)
    if c.product.task == "detailedGstinSearch":
        detailed.update({"principalPlaceOfBusiness": s.address, "splitAddress": s.split()})
    return {"gstnRecords": [{**record, "emailId": email}], "gstnDetailed": detailed}


def _gst_returns(s: Synth, c: Call) -> dict[str, Any]:
    year = c.essentials["financialYear"][:4]
    filed = [
        {"returnType": kind, "returnPeriod": f"04{year}", "dateOfFilling": f"11/05/{year}", "status": "Filed"}
        | {"valid": "Y"}
        for kind in ("GSTR1", "GSTR3B")
    ]
    return {"filedReturns": filed}


def _gst_certificate(s: Synth, c: Call) -> dict[str, Any]:
    gstin = f"{s.gst_code}AAAZ{s.firm[0]}{s.digits('pan', 4)}{s.letters('pan', 1)}1Z{s.digits('gstin', 1)}"
    details = {"gstNumber": gstin, "legalName": s.firm, "tradeName": s.firm, "address": s.address}
    return {"gstDetails": {**details, "dateOfLiability": s.date("liable", 2017, 6)}, "integrityCheck": True}


def _digilocker(s: Synth, c: Call) -> dict[str, Any]:
    request_id = s.hex("request")
    url = f"{s.base_url}/_emulator/digilocker/{request_id}"
    return {"url": url, "requestId": request_id, "token": s.hex("token"), "digilockerUrl": url}


def _eaadhaar(s: Synth, c: Call) -> dict[str, Any]:
    result = {"name": s.name, "uid": s.uid, "dob": s.dob, "gender": s.gender, "address": s.address}
    return {**result, "photo": s.media("photo"), "splitAddress": s.split()}


def _digilocker_details(s: Synth, c: Call) -> dict[str, Any]:
    files = [{"name": "Aadhaar Card", "url": s.media("file")}]
    return {"userDetails": {"name": s.name, "dob": s.dob, "gender": s.gender}, "files": files}


def _deleted(s: Synth, c: Call) -> dict[str, Any]:
    return {"message": "User with that RequestId is deleted", "statusCode": 200}


_Builder = Callable[[Synth, Call], dict[str, Any]]
BUILDERS: dict[str, _Builder] = {
    "pan.extraction": _pan_extraction,
    "pan.fetch": lambda s, c: (
        {"number": c.essentials["number"].upper(), "name": s.name, "fatherName": s.father} | {"dob": s.dob}
    ),
    "pan.verification": lambda s, c: {
        **_verdict(c),
        "upstreamName": c.essentials["name"].upper() if c.positive else s.name,
    },
    "aadhaar.extraction": _aadhaar_extraction,
    "aadhaar.masking": lambda s, c: {"isMasked": "yes", "maskedImages": [s.media("masked")]},
    "aadhaar.offline": _aadhaar_offline,
    "aadhaar.qr_decode": _aadhaar_qr,
    "aadhaar.verification": _aadhaar_verification,
    "drivinglicence.extraction": _dl_extraction,
    "drivinglicence.verification": _dl_verification,
    "drivinglicence.fetch": _dl_fetch,
    "voterid.extraction": _voter,
    "voterid.verification": _voter_verification,
    "passport.extraction": _passport,
    "passport.verification": lambda s, c: _verdict(c),
    "passport.face_extraction": lambda s, c: {"cropped": s.media("face")},
    "cheque.extraction": _cheque,
    "id.classification": _classification,
    "voterid.search": _voter_search,
    "voterid.detailed_search": _voter_detailed,
    "vehiclerc.basic_search": _vehicle,
    "vehiclerc.detailed_search": _vehicle,
    "bankaccount.transfer": _bank_transfer,
    "bankaccount.verify_amount": _verify_amount,
    "facematch": _face_match,
    "gst.search": _gst,
    "gst.detailed_search": _gst,
    "gst.pan_search": _gst,
    "gst.returns": _gst_returns,
    "gst.certificate_extraction": _gst_certificate,
    "digilocker.url": _digilocker,
    "digilocker.get_eaadhaar": _eaadhaar,
    "digilocker.get_details": _digilocker_details,
    "individualonboarding.delete_request": _deleted,
    "entityonboarding.delete_request": _deleted,
}
