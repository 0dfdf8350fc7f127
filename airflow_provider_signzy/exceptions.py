"""Errors raised by the Signzy provider.

Each error carries what a user needs to act (HTTP status, Signzy's ``code`` and ``message``, the
request's method and path, the connection id) and nothing secret: paths are stripped of their query
string, so an ``access_token`` query parameter never reaches a message.
"""

from __future__ import annotations

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException


class SignzyError(AirflowException):
    """Base class: a Signzy call or the Signzy connection went wrong."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        signzy_message: str | None = None,
        method: str | None = None,
        path: str | None = None,
        conn_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.signzy_message = signzy_message
        self.method = method
        self.path = path
        self.conn_id = conn_id
        self.retry_after = retry_after

    def restated(self, cls: type[SignzyError], message: str) -> SignzyError:
        """The same failure (status, code, request) as ``cls`` with a message that says what it means."""
        return cls(
            message,
            status=self.status,
            code=self.code,
            signzy_message=self.signzy_message,
            method=self.method,
            path=self.path,
            conn_id=self.conn_id,
            retry_after=self.retry_after,
        )


class SignzyConfigError(SignzyError, AirflowFailException):
    """The Airflow connection is missing, unreadable, or has a field Signzy cannot use. An
    :class:`AirflowFailException`: the task fails at once, since no retry can fix it."""


class SignzyAuthError(SignzyError):
    """Login was refused: the username or API key is wrong (never retried)."""


class SignzyLoginRefusedError(SignzyAuthError, AirflowFailException):
    """Signzy refused the login itself: the username or API key is wrong. Fails the task without retries."""


class SignzyPermissionError(SignzyError):
    """A fresh token was refused too: the patron may not touch this resource."""


class SignzyRateLimitError(SignzyError):
    """Signzy refused the call because of a rate limit (429, or a 403 that is not ACCESS_DENIED)."""


class SignzyServerError(SignzyError):
    """Signzy or a proxy in front of it failed (5xx)."""


class SignzyClientError(SignzyError):
    """Signzy rejected the request itself (400, 404, 422, ...): sending it again will not help."""


class SignzyBlockedError(SignzyClientError, AirflowFailException):
    """A 403 that is not Signzy's JSON error: a firewall, a proxy or an IP allow-list in front of Signzy
    refused the call. Not a rate limit, so never retried: the task fails at once, naming the host."""


class SignzyResponseError(SignzyError):
    """Signzy answered 2xx with a body that is not what the API documents."""


class SignzyConnectionError(SignzyError):
    """The request failed on the network: refused, DNS, timeout, or a connection dropped mid-answer."""

    def __init__(
        self,
        message: str,
        *,
        reached_server: bool,
        method: str | None = None,
        path: str | None = None,
        conn_id: str | None = None,
    ) -> None:
        super().__init__(message, method=method, path=path, conn_id=conn_id)
        #: False only when the request provably never reached Signzy (refused, DNS, connect timeout).
        self.reached_server = reached_server
        #: False for failures that another attempt cannot cure (a TLS certificate that does not verify).
        self.transient = True


class SignzyOutcomeUnknownError(SignzyError, AirflowFailException):
    """A paid call may have been acted on (and charged), but its answer was lost: never sent again.

    An :class:`AirflowFailException`, so Airflow fails the task without using its retries. ``cause`` is the
    failure of the call itself (a lost answer, a read timeout, a 5xx), when this try sent it.
    """

    cause: SignzyError | None = None


class SignzyInputError(SignzyError, AirflowFailException):
    """A product's inputs are wrong (unknown product, missing or malformed field, images missing), found
    before anything was sent or paid. It names the product, the field and the expected format, never the
    value; an :class:`AirflowFailException`, so Airflow fails the task without retries that cannot help."""

    def __init__(self, message: str, *, product: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.product = product
        self.field = field
