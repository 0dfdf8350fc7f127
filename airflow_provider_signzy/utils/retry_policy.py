"""The one retry policy for every Signzy call, built on tenacity, and the one for the call ledger's writes.

Retried: connection failures, timeouts, 500/502/503/504, 429 and Signzy's rate-limit 403, with
exponential backoff plus jitter, never waiting less than ``Retry-After``. Never retried: 400, 401,
404, 422, an ``ACCESS_DENIED`` 403. A request that may have reached Signzy is sent again only when it
is idempotent (or the caller says so): most Signzy calls are paid verifications.

A write to Airflow's task state store (the call ledger's) is retried a few times, quickly
(:func:`build_store_retrying`): an API server blip must not cost a paid answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_base,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)
from tenacity.wait import wait_base

from airflow_provider_signzy.exceptions import (
    SignzyConnectionError,
    SignzyRateLimitError,
    SignzyServerError,
)

if TYPE_CHECKING:
    from airflow_provider_signzy.exceptions import SignzyError

RETRYABLE_SERVER_STATUSES = frozenset({500, 502, 503, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


def is_transient(exc: BaseException) -> bool:
    """True for failures another attempt may cure."""
    if isinstance(exc, SignzyConnectionError):
        return exc.transient
    if isinstance(exc, SignzyRateLimitError):
        return True
    return isinstance(exc, SignzyServerError) and exc.status in RETRYABLE_SERVER_STATUSES


def safe_to_resend(exc: BaseException, *, idempotent: bool) -> bool:
    """True when sending the request again cannot make Signzy act twice."""
    if idempotent:
        return True
    if isinstance(exc, SignzyConnectionError):
        return not exc.reached_server
    # A rate-limit answer means Signzy refused the request without acting on it.
    return isinstance(exc, SignzyRateLimitError)


class retry_if_transient(retry_base):  # named like tenacity's own strategies
    """Retry transient failures, and non-idempotent requests only when they are safe to resend."""

    def __init__(self, *, idempotent: bool) -> None:
        self.idempotent = idempotent

    def __call__(self, retry_state: RetryCallState) -> bool:
        outcome = retry_state.outcome
        if outcome is None or not outcome.failed:
            return False
        exc = outcome.exception()
        return exc is not None and is_transient(exc) and safe_to_resend(exc, idempotent=self.idempotent)


class wait_backoff_or_retry_after(wait_base):
    """Exponential backoff with jitter, but never less than the answer's ``Retry-After``."""

    def __init__(self, *, initial: float, maximum: float) -> None:
        self.maximum = maximum
        # initial * 2**n plus up to ``initial`` of jitter: the plan that planned_wait_bounds() adds up.
        self.backoff = wait_exponential(multiplier=initial, max=maximum) + wait_random(0, initial)

    def __call__(self, retry_state: RetryCallState) -> float:
        wait = self.backoff(retry_state)
        outcome = retry_state.outcome
        retry_after = getattr(outcome.exception(), "retry_after", None) if outcome else None
        if retry_after is not None:
            wait = max(wait, retry_after)
        return min(wait, self.maximum)


def planned_wait_bounds(*, initial: float, maximum: float, retries: int) -> tuple[float, float]:
    """Least and most total wait the backoff plans for ``retries`` retries (no Retry-After)."""
    low = sum(min(initial * 2**n, maximum) for n in range(retries))
    high = sum(min(initial * 2**n + initial, maximum) for n in range(retries))
    return low, high


def retry_policy(
    *,
    max_attempts: int,
    initial: float,
    maximum: float,
    idempotent: bool,
    log: Any,
    on_retry: Callable[[str, str, BaseException | None], None] | None = None,
) -> dict[str, Any]:
    """The stop, wait, retry and logging objects of the policy, for ``Retrying`` and ``AsyncRetrying`` alike.

    The retried function is called as ``fn(method, shown_path, ...)``; method and path go into each
    retry's log. ``shown_path`` must hold no query string: it is logged, and a query may carry
    ``access_token``. ``on_retry(method, shown_path, exc)`` is told of each retry (the hook counts them).
    """

    def log_retry(retry_state: RetryCallState) -> None:
        method, shown_path = retry_state.args[:2]
        outcome = retry_state.outcome
        exc: SignzyError | None = outcome.exception() if outcome else None  # type: ignore[assignment]
        wait = retry_state.next_action.sleep if retry_state.next_action else 0.0
        reason = getattr(exc, "status", None) or type(exc).__name__
        log.warning(
            "Signzy %s %s: attempt %d of %d failed (%s: %s); retrying in %.2fs",
            method,
            shown_path,
            retry_state.attempt_number,
            max_attempts,
            reason,
            exc,
            wait,
        )
        if on_retry is not None:
            on_retry(method, shown_path, exc)

    return {
        "stop": stop_after_attempt(max_attempts),
        "wait": wait_backoff_or_retry_after(initial=initial, maximum=maximum),
        "retry": retry_if_transient(idempotent=idempotent),
        "before_sleep": log_retry,
        "reraise": True,
    }


def build_retrying(
    *,
    max_attempts: int,
    initial: float,
    maximum: float,
    idempotent: bool,
    log: Any,
    on_retry: Callable[[str, str, BaseException | None], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Retrying:
    """A ``Retrying`` for the hook's ``requests`` calls, with :func:`retry_policy`'s objects.

    ``sleep`` waits between attempts: a batch gives one that wakes (and raises) when the batch stops.
    """
    policy = retry_policy(
        max_attempts=max_attempts, initial=initial, maximum=maximum, idempotent=idempotent, log=log, on_retry=on_retry
    )
    return Retrying(sleep=sleep, **policy)


#: A task-state-store write is tried this many times in all, waiting about 0.2, 0.4, 0.8 s between.
STORE_WRITE_ATTEMPTS = 4


def build_store_retrying(log: Any, *, attempts: int = STORE_WRITE_ATTEMPTS, initial: float = 0.2) -> Retrying:
    """The policy of the call ledger's writes to the task state store: a few quick retries, then the error.

    A write carries no answer text in its error (the caller logs the key and the kind of failure only).
    """

    def log_retry(retry_state: RetryCallState) -> None:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome else None
        wait = retry_state.next_action.sleep if retry_state.next_action else 0.0
        log.warning(
            "Writing the Signzy call ledger failed (attempt %d of %d: %s); retrying in %.2fs",
            retry_state.attempt_number,
            attempts,
            type(exc).__name__,
            wait,
        )

    return Retrying(
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=initial, max=2.0) + wait_random(0, initial / 2),
        retry=retry_if_exception_type(Exception),
        before_sleep=log_retry,
        reraise=True,
    )


def build_async_retrying(
    *, max_attempts: int, initial: float, maximum: float, idempotent: bool, log: Any
) -> AsyncRetrying:
    """An ``AsyncRetrying`` for the trigger's ``httpx`` calls, with :func:`retry_policy`'s objects."""
    return AsyncRetrying(
        **retry_policy(max_attempts=max_attempts, initial=initial, maximum=maximum, idempotent=idempotent, log=log)
    )
