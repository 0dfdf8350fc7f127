"""The emulator in its own process, with a fault: the hook retries past a 503 on login.

Needs nothing running: ``python docs/snippets/emulator_in_a_process.py``.
"""

from __future__ import annotations

import json
import os

from airflow_provider_signzy.emulator.process import emulator_process
from airflow_provider_signzy.hooks.signzy import SignzyHook

with emulator_process("--patron", "demo:demo-api-key-0123456789") as emulator:
    emulator.add_faults({"path": "/api/v2/patrons/login", "faults": [{"status": 503}]})
    # Point signzy_default at it, as AIRFLOW_CONN_SIGNZY_DEFAULT does for `airflow dags test`.
    os.environ["AIRFLOW_CONN_SIGNZY_DEFAULT"] = json.dumps(
        {"conn_type": "signzy", "host": emulator.url, "login": "demo", "password": "demo-api-key-0123456789"}
    )
    with SignzyHook() as hook:  # logs in on first use (a 503, then a retry), revokes at the end of the block
        patron = hook.get_token().user_id
        identities = hook.request("GET", f"/api/v2/patrons/{patron}/identities").json()
    state = emulator.state()
    print(f"{len(identities)} identities; logins: {state['logins']}, faults served: {state['faults_served']}")
    assert state["faults_served"] == 1
    assert state["live_tokens"] == 0
