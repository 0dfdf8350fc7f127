"""The run's token in XCom: where SignzyLoginOperator puts its record, and reading it back in a later task."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_signzy.exceptions import SignzyConfigError

if TYPE_CHECKING:
    from airflow_provider_signzy.hooks.signzy import SignzyHook
    from airflow_provider_signzy.utils.access_token import SignzyToken

#: The XCom key under which SignzyLoginOperator stores the token record.
TOKEN_XCOM_KEY = "signzy_token"
DEFAULT_LOGIN_TASK_ID = "signzy_login"


def pull_token_record(ti: Any, login_task_id: str) -> Any:
    """The token record the login task pushed, or None when it pushed none."""
    return ti.xcom_pull(task_ids=login_task_id, key=TOKEN_XCOM_KEY)


def token_from_record(hook: SignzyHook, record: Any, login_task_id: str) -> SignzyToken:
    """Decrypt the token in a login task's record for ``hook``'s connection, and mask it in this process.

    Masking is per process: every task that holds the token needs its own mask.
    """
    from airflow.providers.common.compat.sdk import mask_secret

    from airflow_provider_signzy.utils.access_token import SignzyToken
    from airflow_provider_signzy.utils.fernet_cipher import SignzyCipher

    source = f"XCom of task {login_task_id!r}"
    if isinstance(record, dict) and record.get("conn_id") not in (None, hook.signzy_conn_id):
        raise SignzyConfigError(
            f"The token in {source} was issued for connection {record['conn_id']!r}, but this task uses "
            f"{hook.signzy_conn_id!r}: give both tasks the same signzy_conn_id",
            conn_id=hook.signzy_conn_id,
        )
    cipher = SignzyCipher.for_connection(hook.config.extra, hook.signzy_conn_id)
    token = SignzyToken.from_xcom(record, cipher, source=source)
    mask_secret(token.id)
    return token
