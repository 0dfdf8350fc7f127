"""Revoking the run's token when something fails: the shared revoke step and the on_failure callback.

Best effort and idempotent: a token already revoked (by the teardown), never created, or expired is
fine. Nothing here raises: a callback that raises only hides the failure it was called for. Short
timeouts, because Airflow kills a callback after ``[core] task_success_overtime`` (20 s by default).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from airflow_provider_signzy.exceptions import SignzyError
from airflow_provider_signzy.utils.connection_form import DEFAULT_CONN_ID
from airflow_provider_signzy.utils.token_xcom import (
    DEFAULT_LOGIN_TASK_ID,
    pull_token_record,
    token_from_record,
)

#: Revocation is a small idempotent call: a few seconds, two attempts, fits in a callback's time limit.
REVOKE_TIMEOUT = 5.0
REVOKE_MAX_ATTEMPTS = 2
REVOKE_BACKOFF_MAX = 1.0


def _callback_logger() -> Any:
    # Airflow 3 routes structlog loggers to the task log and the console; stdlib loggers of a provider
    # are not shown under `airflow dags test`. Airflow 2 has no structlog set-up: use stdlib there.
    try:
        import structlog

        return structlog.get_logger("airflow.task.signzy")
    except ImportError:
        return logging.getLogger("airflow.task.signzy")


log = _callback_logger()


def revoke_run_token(
    ti: Any,
    *,
    login_task_id: str = DEFAULT_LOGIN_TASK_ID,
    signzy_conn_id: str = DEFAULT_CONN_ID,
    logger: Any = log,
) -> str:
    """Revoke the token that ``login_task_id`` stored for this run; returns what happened, never raises.

    Outcomes: ``revoked``, ``already-dead``, ``no-token``, ``unreadable`` (XCom could not be read here)
    and ``failed`` (Signzy could not be reached; the token still dies at its ttl).
    """
    from airflow_provider_signzy.hooks.signzy import SignzyHook

    try:
        record = pull_token_record(ti, login_task_id)
    except ImportError:
        # dag.test() / `airflow dags test` run DAG-level callbacks in-process, where XCom cannot be read
        # (``cannot import name 'SUPERVISOR_COMMS'``): expected there, so one calm line, no traceback.
        logger.info(
            "Cannot read the Signzy token from XCom of task %r here: a DAG-level callback under "
            "`airflow dags test` has no XCom access; the teardown and task-level callbacks revoke the token",
            login_task_id,
        )
        return "unreadable"
    except Exception as exc:
        logger.warning(
            "Cannot read the Signzy token from XCom of task %r here (%s): the token was not revoked by this "
            "callback; the teardown or a task-level callback revokes it, else it dies at its ttl",
            login_task_id,
            type(exc).__name__,
        )
        return "unreadable"
    if record is None:
        logger.info("No Signzy token from task %r in this run: nothing to revoke", login_task_id)
        return "no-token"
    conn_id = str(record.get("conn_id") or signzy_conn_id) if isinstance(record, dict) else signzy_conn_id
    hook = SignzyHook(conn_id, timeout=REVOKE_TIMEOUT, max_attempts=REVOKE_MAX_ATTEMPTS, backoff_max=REVOKE_BACKOFF_MAX)
    try:
        revoked = hook.logout(token_from_record(hook, record, login_task_id))
    except SignzyError as exc:
        logger.warning("Could not revoke the Signzy token of task %r: %s", login_task_id, exc)
        return "failed"
    except Exception as exc:  # a callback must not raise; say what went wrong instead
        logger.warning("Could not revoke the Signzy token of task %r: %s: %s", login_task_id, type(exc).__name__, exc)
        return "failed"
    finally:
        hook.close()
    return "revoked" if revoked else "already-dead"


def revoke_token_on_failure(
    login_task_id: str = DEFAULT_LOGIN_TASK_ID, signzy_conn_id: str = DEFAULT_CONN_ID
) -> Callable[[Any], None]:
    """An ``on_failure_callback`` (task- or DAG-level) that revokes the run's Signzy token.

    Use both levels: the task-level callback runs in the task's own process with full context; the
    DAG-level one, run by the DAG processor, also covers failures no task sees, such as a run timeout.
    """

    def callback(context: Any) -> None:
        ti = context.get("ti") or context.get("task_instance")
        if ti is None:
            log.warning("on_failure callback got no task instance: cannot find the Signzy token to revoke")
            return
        outcome = revoke_run_token(ti, login_task_id=login_task_id, signzy_conn_id=signzy_conn_id)
        log.info("Signzy token revocation after failure: %s", outcome)

    callback.__name__ = f"revoke_signzy_token_of_{login_task_id}"
    return callback
