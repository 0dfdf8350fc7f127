"""SignzyBatchOperator: thousands of Signzy calls in one task, with the run's token."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException, BaseOperator

from airflow_provider_signzy.batch import INVALID, REFUSED, UNKNOWN, SignzyBatch
from airflow_provider_signzy.callbacks import DEFAULT_LOGIN_TASK_ID, pull_token_record, token_from_record
from airflow_provider_signzy.connection_form import DEFAULT_CONN_ID
from airflow_provider_signzy.exceptions import SignzyError, SignzyOutcomeUnknownError
from airflow_provider_signzy.hooks.signzy import SignzyHook
from airflow_provider_signzy.privacy.rendered import HiddenBodies
from airflow_provider_signzy.privacy.sealing import SEALED, ResultSealer, check_privacy, unseal
from airflow_provider_signzy.privacy.tracebacks import without_inner_frames

if TYPE_CHECKING:
    import requests
    from airflow.providers.common.compat.sdk import Context

ON_ITEM_ERROR = ("continue", "fail")


class SignzyBatchOperator(HiddenBodies, BaseOperator):
    """One Signzy call per item, concurrently, with one token; returns one result per item, in order.

    :param endpoint: path under the Base URL; ``{patron_id}`` is the token's patron, ``{field}`` the item's
        ``field``. Templated. Logs and errors show this template, never an item's values.
    :param items: the calls' JSON bodies (a list; templated, or an upstream task's output, which may be
        sealed with :func:`~airflow_provider_signzy.privacy.seal`). Airflow stores and shows its shape.
    :param method: HTTP method (default POST: paid, so sent at most once; see the call ledger).
    :param max_concurrency: calls in flight at once.
    :param max_calls_per_second: a client-side rate cap; without one the batch paces itself under the rate
        Signzy lets through once it answers with a rate limit (429, or its rate-limit 403).
    :param on_item_error: ``"continue"``: the task succeeds and the results report failed items;
        ``"fail"``: the task fails after the batch when any item failed.
    :param idempotent: allow resending after a failure that may have reached Signzy (default: True for GET,
        PUT, DELETE). Non-idempotent batches keep a call ledger (Airflow 3.3+), so a retried task replays
        what succeeded, never resends a call of unknown outcome, and sends the rest.
    :param response_filter: ``callable(response) -> value`` kept as an item's ``response`` instead of the JSON.
    :param ledger_window: items whose ledger entries are written together (two task-state-store writes per
        window). Default: about a second of calls, so a worker killed mid-batch leaves at most about two
        seconds of calls of unknown outcome.

    Each result: ``{"index", "ok", "outcome", "status", "response", "error"}``, where ``outcome`` is
    ``succeeded``, ``replayed`` (an earlier try's success), ``refused`` (Signzy did not act: sending it
    again is safe), ``unknown`` (may have been acted on and charged: not sent again) or ``invalid``.
    """

    template_fields: Sequence[str] = ("endpoint", "items", "query_params", "headers", "signzy_conn_id")
    template_fields_renderers = {"items": "json", "query_params": "json", "headers": "json"}
    body_fields: Sequence[str] = ("items", "query_params", "headers")
    ui_color = "#c8e6fa"

    def __init__(
        self,
        *,
        endpoint: str,
        items: Any,
        method: str = "POST",
        max_concurrency: int = 8,
        max_calls_per_second: float | None = None,
        on_item_error: str = "continue",
        login_task_id: str = DEFAULT_LOGIN_TASK_ID,
        signzy_conn_id: str = DEFAULT_CONN_ID,
        idempotent: bool | None = None,
        query_params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        response_filter: Callable[[requests.Response], Any] | None = None,
        ledger_window: int | None = None,
        result_privacy: str = SEALED,
        clear_fields: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.result_privacy, self.clear_fields = check_privacy(result_privacy, clear_fields)
        if on_item_error not in ON_ITEM_ERROR:
            raise ValueError(f"on_item_error must be one of {ON_ITEM_ERROR}, got {on_item_error!r}")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
        self.endpoint = endpoint
        self.items = items
        self.method = method.upper()
        self.max_concurrency = max_concurrency
        self.max_calls_per_second = max_calls_per_second
        self.on_item_error = on_item_error
        self.login_task_id = login_task_id
        self.signzy_conn_id = signzy_conn_id
        self.idempotent = idempotent
        self.query_params = query_params
        self.headers = headers
        self.response_filter = response_filter
        self.ledger_window = ledger_window

    @without_inner_frames
    def execute(self, context: Context) -> list[dict[str, Any]]:
        items, query_params, headers = (unseal(self.body(name)) for name in ("items", "query_params", "headers"))
        if not isinstance(items, list | tuple):
            raise SignzyError(
                f"items must be a list of JSON bodies, got {type(items).__name__}", conn_id=self.signzy_conn_id
            )
        record = pull_token_record(context["ti"], self.login_task_id)
        with SignzyHook(self.signzy_conn_id) as hook:
            sealer = ResultSealer.for_task(self, hook.config.extra)
            if record is None:
                self.log.info("No Signzy token from task %r: logging in for this batch alone", self.login_task_id)
            batch = SignzyBatch(
                hook,
                endpoint=self.endpoint,
                method=self.method,
                token=token_from_record(hook, record, self.login_task_id) if record is not None else None,
                max_concurrency=self.max_concurrency,
                max_calls_per_second=self.max_calls_per_second,
                idempotent=self.idempotent,
                query_params=query_params,
                headers=headers,
                response_filter=self.response_filter,
                window=self.ledger_window,
                log=self.log,
            )
            results = batch.run(list(items))
        self._judge(results, kept_ledger=batch.ledger is not None, idempotent=batch.idempotent)
        if sealer.seals:
            for result in results:
                result["response"] = sealer.seal(result["response"])
        return results

    def _judge(self, results: list[dict[str, Any]], *, kept_ledger: bool, idempotent: bool) -> None:
        failed = [r for r in results if not r["ok"]]
        if not failed:
            return
        by_outcome = {o: [r["index"] for r in failed if r["outcome"] == o] for o in (UNKNOWN, REFUSED, INVALID)}
        summary = ", ".join(f"{len(ix)} {o} (items {_some(ix)})" for o, ix in by_outcome.items() if ix)
        filter_errors = [r["index"] for r in failed if r["outcome"] not in by_outcome]
        if filter_errors:
            summary += f", {len(filter_errors)} whose response_filter failed (items {_some(filter_errors)})"
        message = f"Signzy batch {self.method} {self.endpoint}: {len(failed)} of {len(results)} items failed: {summary}"
        if self.on_item_error == "continue":
            self.log.warning("%s. on_item_error='continue': the task succeeds; the results say which", message)
            return
        if by_outcome[UNKNOWN]:
            raise SignzyOutcomeUnknownError(
                f"{message}. Signzy may have acted on the unknown ones, and they may have been charged: a retry "
                "or a clear never sends them again. Check them in Signzy, then send those you need in a new "
                "batch (another task or run)",
                method=self.method,
                path=self.endpoint,
                conn_id=self.signzy_conn_id,
            )
        if not kept_ledger and not idempotent:
            raise AirflowFailException(
                f"{message}. There is no call ledger here (Airflow before 3.3): a retry would send every item "
                "again, those that succeeded too, so this task does not retry. Fix the failed items and run "
                "them in a new batch"
            )
        raise SignzyError(f"{message}. A retry sends only the refused items again", conn_id=self.signzy_conn_id)


def _some(indices: list[int], shown: int = 10) -> str:
    head = ", ".join(str(i) for i in indices[:shown])
    return head + (f" and {len(indices) - shown} more" if len(indices) > shown else "")
