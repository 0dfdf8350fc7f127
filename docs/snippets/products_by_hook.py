"""Signzy's products from Python: one of each family through ``SignzyHook.run_product``.

Run it where ``signzy_default`` points at the emulator (``docs/getting-started.md``, steps 3 and 4):
``python docs/snippets/products_by_hook.py``. On real Signzy each product is a paid call. Every value is
synthetic; a real script would not print customers' data, only what it needs (here: verdicts).
"""

from __future__ import annotations

import tempfile

from airflow_provider_signzy.exceptions import SignzyInputError
from airflow_provider_signzy.hooks.signzy import SignzyHook

with SignzyHook(signzy_conn_id="signzy_default") as hook:  # logs in on first use, revokes at the end
    # A document product: an identity, then a snoop with the identity's own token (both done for you).
    pan = hook.run_product("pan.verification", {"number": "ABCDE1234F", "name": "RAVI KUMAR", "fuzzy": "true"})
    print(f"pan.verification: verified={pan['verified']} ({pan['message']})")

    # A one-step product on a patron resource.
    bank = hook.run_product(
        "bankaccount.transfer",
        {"beneficiaryAccount": "123456789012", "beneficiaryIFSC": "SYNB0123456", "beneficiaryName": "RAVI KUMAR"},
    )
    print(f"bankaccount.transfer: active={bank['active']}, nameMatch={bank['nameMatch']}")

    # A product that reads a document: files= uploads it first (a 30-minute link), then extracts.
    with tempfile.NamedTemporaryFile(suffix=".jpg") as scan:
        scan.write(b"\xff\xd8\xff synthetic image bytes")
        scan.flush()
        card = hook.run_product("pan.extraction", files=[scan.name])
    print(f"pan.extraction: fields {sorted(card)}")

    # Inputs are checked before anything is sent: the error names the field and its format, not the value.
    try:
        hook.run_product("pan.verification", {"number": "ABCDE1234", "name": "RAVI KUMAR"})
    except SignzyInputError as exc:
        print(f"refused before sending: {exc}")
