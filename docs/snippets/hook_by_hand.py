"""The hook by hand: log in, one call with that token, log out.

Run it where ``signzy_default`` points at Signzy or the emulator (``docs/getting-started.md``, steps 3 and 4):
``python docs/snippets/hook_by_hand.py``. It creates one identity (on real Signzy, a paid call).
"""

from __future__ import annotations

from airflow_provider_signzy.hooks.signzy import SignzyHook

hook = SignzyHook(signzy_conn_id="signzy_default")
token = hook.login(ttl=600)  # SignzyToken: user_id, ttl, created, expires_at
try:
    answer = hook.request(  # a requests.Response
        "POST",
        f"/api/v2/patrons/{token.user_id}/identities",
        token=token,
        json={"type": "individualPan", "email": "customer@example.com", "images": []},
    )
    print(f"Created identity {answer.json()['id']}, status {answer.json()['status']}")
finally:
    revoked = hook.logout(token)  # True: revoked now; False: it was already dead
    hook.close()
print(f"Token revoked: {revoked}")
