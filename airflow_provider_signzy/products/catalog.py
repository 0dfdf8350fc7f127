"""Signzy's v2 KYC products by name: one table of data, no branches.

Each :class:`Product` says how Signzy runs it, as its public v2 docs describe it
(``signzy-v2-products.md``, sections 2a, 2b and 4): the **identity** flow (create an identity of a
``type``, then ``POST /api/v2/snoops`` with the identity's own ``itemId`` + ``accessToken`` and a ``task``)
or the one-step **resource** flow (``POST /api/v2/patrons/{patron_id}/<resource>`` with ``task`` and
``essentials``); the ``essentials`` fields and their formats; whether it needs document images; and the
fields of its ``result``. Where the docs leave a question open, ``choices`` says what this catalog chose;
a caller can override the identity type and the task, and add essentials the table does not list.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from airflow_provider_signzy.products.fields import Field

__all__ = ["IDENTITY", "PRODUCTS", "RESOURCE", "Product"]

IDENTITY = "identity"  # two steps: an identity, then a snoop with its own token
RESOURCE = "resource"  # one step on a patron resource, with the patron's token

_SPLIT = "splitAddress"


@dataclass(frozen=True)
class Product:
    """One Signzy product: ``<document>.<task>`` and how to call it."""

    name: str
    title: str
    flow: str
    task: str | None
    essentials: tuple[Field, ...] = ()
    identity_type: str | None = None
    resource: str | None = None
    #: Document images the identity carries (URLs): 0 = the identity is created with ``images: []``.
    min_images: int = 0
    result_fields: tuple[str, ...] = ()
    #: Result fields that say nothing about the person (a verdict, a match flag): left readable in XCom.
    clear_fields: tuple[str, ...] = ()
    #: The identity's ``email`` is marked required in this product's docs table.
    needs_email: bool = False
    #: Where Signzy's docs say it (a path in its public docs), and what this catalog chose where they do not.
    source: str = ""
    choices: tuple[str, ...] = field(default=())

    @property
    def takes_images(self) -> bool:
        return self.min_images > 0

    @property
    def endpoint(self) -> str:
        """The first (or only) call's endpoint, ``{patron_id}`` filled by the hook."""
        if self.flow == IDENTITY:
            return "/api/v2/patrons/{patron_id}/identities"
        return f"/api/v2/patrons/{{patron_id}}/{self.resource}"


def _identity(name: str, title: str, type_: str | None, task: str, *essentials: Field, **kw: object) -> Product:
    return Product(name=name, title=title, flow=IDENTITY, task=task, essentials=essentials, identity_type=type_, **kw)  # type: ignore[arg-type]


def _resource(name: str, title: str, resource: str, task: str | None, *essentials: Field, **kw: object) -> Product:
    return Product(name=name, title=title, flow=RESOURCE, task=task, essentials=essentials, resource=resource, **kw)  # type: ignore[arg-type]


_POI = "apidocs:aadhar/proof-of-identity-proof-of-address/"
_VERDICT = ("verified", "message")

_CATALOG: tuple[Product, ...] = (
    # -- 2a: identity + snoop ------------------------------------------------------------------------
    _identity(
        "pan.extraction",
        "PAN data extraction",
        "individualPan",
        "autoRecognition",
        min_images=1,
        result_fields=("name", "fatherName", "dob", "number", "panType", "summary"),
        source="apidocs:aadhar/untitled/pan/pan-data-extraction.md",
        choices=("identity type individualPan; pass identity_type='businessPan' for a business PAN",),
    ),
    _identity(
        "pan.fetch",
        "Fetch details by PAN number",
        "individualPan",
        "fetch",
        Field("number", "pan"),
        Field("name", required=False),
        Field("fuzzy", "flag", required=False),
        result_fields=("number", "name", "fatherName", "dob"),
        source="apidocs:aadhar/untitled/pan/search-by-pan-number.md",
        choices=("only number is required (the page's prose: 'uses just the PAN number')",),
    ),
    _identity(
        "pan.verification",
        "PAN verification with number and name",
        "individualPan",
        "verification",
        Field("number", "pan"),
        Field("name"),
        Field("fuzzy", "flag", required=False),
        result_fields=("verified", "message", "upstreamName"),
        clear_fields=("verified",),
        source="apidocs:aadhar/untitled/pan/pan-verification-with-number-and-name.md",
    ),
    _identity(
        "aadhaar.extraction",
        "Aadhaar data extraction",
        "aadhaar",
        "autoRecognition",
        Field("summary", "flag", required=False),
        min_images=1,
        needs_email=True,
        result_fields=("uid", "vid", "name", "dob", "yob", "pincode", "address", "gender", _SPLIT, "uidHash"),
        source=_POI + "aadhaar/aadhaar-extraction.md",
        choices=("one image at least (the docs send front and back, one URL each)",),
    ),
    _identity(
        "aadhaar.masking",
        "Aadhaar masking (first 8 digits)",
        "aadhaar",
        "aadhaarMasker",
        Field("url", "url"),
        result_fields=("isMasked", "maskedImages"),
        clear_fields=("isMasked",),
        source=_POI + "aadhaar/mask-uid.md",
    ),
    _identity(
        "aadhaar.offline",
        "Offline Aadhaar (ZIP or XML)",
        "aadhaar",
        "offlineAadhaar",
        Field("url", "url"),
        Field("password", required=False),
        Field("email", required=False),
        Field("mobile", required=False),
        needs_email=True,
        result_fields=(
            "name",
            "dob",
            "yob",
            "gender",
            "emailHash",
            "mobileNoHash",
            "address",
            "photo",
            "uidLast4Digits",
            "uid",
            "generationDate",
            "emailHashVerified",
            "mobileHashVerified",
            _SPLIT,
        ),
        clear_fields=("emailHashVerified", "mobileHashVerified"),
        source=_POI + "aadhaar/offline-aadhaar.md",
        choices=("password is optional: the docs need it for a ZIP only",),
    ),
    _identity(
        "aadhaar.qr_decode",
        "Aadhaar QR decode",
        "aadhaar",
        "decodeQR",
        Field("url", "url"),
        result_fields=("uid", "name", "gender", "yob", "fatherName", "address", _SPLIT),
        source=_POI + "aadhaar/qr-decoder.md",
        choices=("identity type aadhaar: the page leaves the identity step blank (and is titled '(404)')",),
    ),
    _identity(
        "aadhaar.verification",
        "Aadhaar number verification",
        "aadhaar",
        "verifyAadhaar",
        Field("uid"),
        result_fields=("verified", "ageBand", "state", "mobileNumber", "gender"),
        clear_fields=("verified",),
        source="public client code only (no doc page): client[1963503510], client[514236063]",
        choices=("known from client code only: verify with Signzy before relying on it",),
    ),
    _identity(
        "drivinglicence.extraction",
        "Driving licence data extraction",
        "drivingLicence",
        "autoRecognition",
        min_images=1,
        result_fields=("dlType", "issueDate", "expiryDate", "dob", "name", "number", "state", "address", _SPLIT),
        source=_POI + "driving-licence/driving-license-data-extraction.md",
    ),
    _identity(
        "drivinglicence.verification",
        "Driving licence verification",
        "drivingLicence",
        "verification",
        Field("number"),
        Field("dob", "date"),
        Field("issueDate", "date"),
        result_fields=("verified", "message", "moreInfo"),
        clear_fields=("verified",),
        source=_POI + "driving-licence/driving-license-verification.md",
        choices=("dates dd/mm/yyyy, as the curl sample (the guidelines say dd/mm/yy)",),
    ),
    _identity(
        "drivinglicence.fetch",
        "Driving licence details by number and date of birth",
        "drivingLicence",
        "fetch",
        Field("number"),
        Field("dob", "date"),
        result_fields=("dlNumber", "dob", "badgeDetails", "dlValidity", "detailsOfDrivingLicence", "covDetails"),
        source=_POI + "driving-licence/search-by-driving-license-number-and-dob.md",
    ),
    _identity(
        "voterid.extraction",
        "Voter ID data extraction",
        "voterid",
        "autoRecognition",
        min_images=1,
        result_fields=("epicNumber", "name", "fatherName", "state", "dob", "yob", "gender", "address", _SPLIT),
        source=_POI + "voter-id/voter-id-data-extraction.md",
        choices=("identity type 'voterid', as the voter pages' samples send it",),
    ),
    _identity(
        "voterid.verification",
        "Voter ID verification",
        "voterid",
        "verification",
        Field("name"),
        Field("epicNumber"),
        Field("state"),
        result_fields=("verified", "message"),
        clear_fields=("verified", "verification"),
        source=_POI + "voter-id/voter-id-verification.md",
        choices=("the verdict may come as 'verified' (the table) or 'verification' (the sample): both are kept",),
    ),
    _identity(
        "passport.extraction",
        "Passport data extraction",
        "passport",
        "autoRecognition",
        min_images=2,
        result_fields=(
            "name",
            "passportNumber",
            "fileNumber",
            "birthDate",
            "issueDate",
            "expiryDate",
            "sex",
            "nationality",
            "placeOfBirth",
            "placeOfIssue",
            "address",
            "pincode",
            _SPLIT,
        ),
        source=_POI + "indian-passport/indian-passport-data-extraction.md",
    ),
    _identity(
        "passport.verification",
        "Passport verification",
        "passport",
        "verification",
        Field("fileNumber"),
        Field("dob", "date"),
        Field("name"),
        Field("fuzzy", "flag", required=False),
        result_fields=_VERDICT,
        clear_fields=("verified",),
        source="alldocs@fiserv-api-specs:indian-ovd-workflow/combined-verification.md",
        choices=("fuzzy optional, as in PAN verification",),
    ),
    _identity(
        "passport.face_extraction",
        "Passport face extraction",
        "passport",
        "faceExtraction",
        Field("url", "url"),
        result_fields=("cropped",),
        source=_POI + "indian-passport/indian-passport-face-extraction.md",
        choices=("identity type passport: the page does not show the identity step (and is titled '(404)')",),
    ),
    _identity(
        "cheque.extraction",
        "Cancelled cheque extraction",
        "cheque",
        "autoRecognition",
        min_images=1,
        result_fields=("name", "accountNumber", "ifsc", "micrCode", "bankName", "branch", "address", "pincode"),
        source="apidocs:documents/bank-cheque-data-extraction.md",
    ),
    _identity(
        "id.classification",
        "ID classification",
        None,
        "classify",
        min_images=1,
        result_fields=("classification",),
        source="alldocs@fiserv-docs-update:indian-ovd-classification/combined-classification.md",
        choices=("the docs do not state the identity type: pass identity_type=",),
    ),
    # -- 2b: one step on a patron resource -----------------------------------------------------------
    _resource(
        "voterid.search",
        "Voter search by EPIC number",
        "voteridsearches",
        None,
        Field("epicNumber"),
        Field("state"),
        result_fields=("name", "dob", "district", "state", "fatherName", "gender"),
        source=_POI + "voter-id/search-by-voter-id-epic-no..md",
    ),
    _resource(
        "voterid.detailed_search",
        "Voter detailed search by EPIC number",
        "detailedvoteridsearches",
        None,
        Field("epicNumber"),
        Field("state"),
        result_fields=("name", "dob", "district", "state", "fatherName", "gender", "motherName", "address", _SPLIT),
        source=_POI + "voter-id/untitled-1.md",
    ),
    _resource(
        "vehiclerc.basic_search",
        "Vehicle RC basic search",
        "vehicleregistrations",
        "basicSearch",
        Field("vehicleNumber"),
        result_fields=("registrationNo", "registrationDate", "ownerName", "vehicleClass", "fuel", "status"),
        source="apidocs:aadhar/vehicle-registration-number/search-by-vehicle-no.-aka-rc-no..md",
    ),
    _resource(
        "vehiclerc.detailed_search",
        "Vehicle RC detailed search",
        "vehicleregistrations",
        "detailedSearch",
        Field("vehicleNumber"),
        Field("blacklistCheck", "flag", required=False),
        Field("stolen", "object", required=False),
        result_fields=("regNo", "regDate", "owner", "ownerFatherName", "class", "type", "rcExpiryDate"),
        source="apidocs:aadhar/vehicle-registration-number/detailed-search-by-vehicle-no.-aka-rc-no..md",
    ),
    _resource(
        "bankaccount.transfer",
        "Bank account verification by transfer (penny drop)",
        "bankaccountverifications",
        "bankTransfer",
        Field("beneficiaryAccount"),
        Field("beneficiaryIFSC"),
        Field("beneficiaryName", required=False),
        Field("beneficiaryMobile", required=False),
        Field("nameFuzzy", "flag", required=False),
        result_fields=("active", "nameMatch", "mobileMatch", "signzyReferenceId", "auditTrail", "bankTransfer"),
        clear_fields=("active", "nameMatch", "mobileMatch", "signzyReferenceId"),
        source="apidocs:documents/bank-account-verification/bank-account-verification-account-transfer.md",
    ),
    _resource(
        "bankaccount.verify_amount",
        "Bank account: verify the amount transferred",
        "bankaccountverifications",
        "verifyAmount",
        Field("amount", "number"),
        Field("signzyId"),
        result_fields=("amountMatch", "ownerName", "mobile", "mmid"),
        clear_fields=("amountMatch",),
        source="apidocs:documents/bank-account-verification/bank-account-verification-verify-transfer.md",
        choices=("the answer's owner field is spelled 'owerName' in the sample, 'ownerName' in the table",),
    ),
    _resource(
        "facematch",
        "Face match of two images",
        "facematches",
        None,
        Field("firstImage", "url"),
        Field("secondImage", "url"),
        Field("threshold", "number", required=False),
        Field("alignHorizontally", "yesno", required=False),
        result_fields=("verified", "message", "matchPercentage"),
        clear_fields=("verified", "matchPercentage"),
        source="apidocs:forensics/face-match.md",
        choices=("threshold passed as given: the docs disagree on its scale (0.05-0.95 or 35-40)",),
    ),
    _resource(
        "gst.search",
        "GST details by GSTIN",
        "gstns",
        "gstinSearch",
        Field("gstin"),
        result_fields=("gstnRecords", "gstnDetailed"),
        source="apidocs:gst-public-apis/search-by-gstin.md",
    ),
    _resource(
        "gst.detailed_search",
        "GST detailed search by GSTIN",
        "gstns",
        "detailedGstinSearch",
        Field("gstin"),
        result_fields=("gstnRecords", "gstnDetailed"),
        source="apidocs:gst-public-apis/detailed-search-by-gstin.md",
    ),
    _resource(
        "gst.pan_search",
        "GST registrations by PAN",
        "gstns",
        "panSearch",
        Field("panNumber", "pan"),
        Field("state"),
        Field("email"),
        result_fields=("gstnRecords", "gstnDetailed"),
        source="apidocs:gst-public-apis/search-gst-details-based-on-pan-no..md",
    ),
    _resource(
        "gst.returns",
        "GST returns filed in a financial year",
        "gstns",
        "viewReturns",
        Field("gstin"),
        Field("financialYear", "year"),
        result_fields=("filedReturns",),
        source="apidocs:gst-public-apis/search-gst-return-details-for-a-financial-year.md",
    ),
    _resource(
        "gst.certificate_extraction",
        "GST certificate data extraction",
        "gstextractions",
        None,
        Field("files", "urls"),
        result_fields=("gstDetails", "integrityCheck"),
        source="apidocs:gst-public-apis/gst-certificate-data-extraction.md",
    ),
    _resource(
        "digilocker.url",
        "DigiLocker consent URL",
        "digilockers",
        "url",
        Field("redirectUrl", "url", required=False),
        Field("callbackUrl", "url", required=False),
        result_fields=("url", "requestId", "token", "digilockerUrl"),
        source="apidocs:aadhar/digilocker/README.md, url-for-particular-user-aadhaar.md",
        choices=("both pages' shapes are accepted: redirectUrl and callbackUrl optional",),
    ),
    _resource(
        "digilocker.get_eaadhaar",
        "DigiLocker e-Aadhaar",
        "digilockers",
        "getEadhaar",
        Field("requestId"),
        result_fields=("name", "uid", "dob", "gender", "address", "photo", _SPLIT),
        source="apidocs:aadhar/digilocker/",
    ),
    _resource(
        "digilocker.get_details",
        "DigiLocker user details and files",
        "digilockers",
        "getDetails",
        Field("requestId"),
        result_fields=("userDetails", "files"),
        source="apidocs:aadhar/digilocker/",
    ),
    # -- 4: erasure of the onboarding engine's data ---------------------------------------------------
    _resource(
        "individualonboarding.delete_request",
        "Delete an individual's verification data (onboarding engine)",
        "individualonboardings",
        "deleteRequest",
        Field("requestId"),
        result_fields=("message", "statusCode"),
        clear_fields=("message", "statusCode"),
        source="apidocs:api-sdks/individual-onboarding-1/delete-verification-data.md",
    ),
    _resource(
        "entityonboarding.delete_request",
        "Delete an entity's verification data (onboarding engine)",
        "entityonboardings",
        "deleteRequest",
        Field("requestId"),
        result_fields=("message", "statusCode"),
        clear_fields=("message", "statusCode"),
        source="apidocs:api-sdks/entity-onboarding/delete-verification-data.md",
    ),
)

#: Every product, by name.
PRODUCTS: dict[str, Product] = {product.name: product for product in _CATALOG}
