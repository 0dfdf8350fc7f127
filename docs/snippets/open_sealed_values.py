"""Seal a made-up Signzy answer as the operators do, then open it again with ``unseal``.

Run it where ``signzy_default`` exists and Airflow has a Fernet key (``docs/getting-started.md``, steps 2
and 4): ``python docs/snippets/open_sealed_values.py``. It sends nothing to Signzy.
"""

from __future__ import annotations

import json

from airflow_provider_signzy.privacy import seal, shape_of, unseal

answer = {  # what an identity answer holds: synthetic values here
    "id": "4f2c9a1e",
    "status": "pending",
    "name": "Asha Rao",
    "pan": "ABCDE1234F",
    "email": "asha@example.com",
}

sealed = seal(answer)  # what SignzyOperator pushes to XCom: `id` and `status` readable, the rest encrypted
print("In XCom:", json.dumps(sealed)[:120], "...")
assert sealed["id"] == "4f2c9a1e"
assert "pan" not in sealed

opened = unseal(sealed)  # every sealed value inside, at any depth; the rest as it is
assert opened == answer
print("Opened: ", sorted(opened))  # print keys, not values: a log is stored too

print("Rendered fields show:", shape_of(answer))  # what Airflow shows of a body: keys, types, lengths
