"""SignzyBatchOperator: thousands of Signzy calls in one task, with the run's token."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException, BaseOperator

from airflow_provider_signzy.batch import CIRCUIT_BREAKER, INVALID, REFUSED, REPLAYED, UNKNOWN, SignzyBatch
from airflow_provider_signzy.batch.products import run_product_batch
from airflow_provider_signzy.exceptions import SignzyError, SignzyOutcomeUnknownError
from airflow_provider_signzy.hooks.signzy import SignzyHook
from airflow_provider_signzy.operators.product import product_clear_fields
from airflow_provider_signzy.privacy.rendered import HiddenBodies
from airflow_provider_signzy.privacy.sealing import SEALED, ResultSealer, check_privacy, unseal
from airflow_provider_signzy.privacy.tracebacks import without_inner_frames
from airflow_provider_signzy.products.calls import get_product
from airflow_provider_signzy.utils.connection_form import DEFAULT_CONN_ID
from airflow_provider_signzy.utils.token_xcom import DEFAULT_LOGIN_TASK_ID, pull_token_record, token_from_record

if TYPE_CHECKING:
    import requests
    from airflow.providers.common.compat.sdk import Context

ON_ITEM_ERROR = ("continue", "fail")
#: Under on_item_error="continue", a batch with more than this share of its items failed fails its task.
MAX_FAILED_RATIO = 0.5


class SignzyBatchOperator(HiddenBodies, BaseOperator):
    """One Signzy call per item, concurrently, with one token; returns one result per item, in order.

    :param endpoint: path under the Base URL; ``{patron_id}`` is the token's patron, ``{field}`` the item's
        ``field``. Templated. Logs and errors show this template, never an item's values.
    :param product: instead of ``endpoint``: one of Signzy's products by name (``"pan.verification"``);
        each item is then that product's ``essentials`` (with ``"images"``: document URLs, for the products
        that read documents), checked before anything is sent (a bad item is ``invalid``, naming the field),
        and each item is one unit: its identity and its snoop. Each result's ``response`` is the product's
        result. ``task``, ``identity_type``, ``email`` and ``callback_url`` apply to every item.
    :param items: the calls' JSON bodies (a list; templated, or an upstream task's output, which may be
        sealed with :func:`~airflow_provider_signzy.privacy.seal`). Airflow stores and shows its shape.
    :param method: HTTP method (default POST: paid, so sent at most once; see the call ledger).
    :param max_concurrency: calls in flight at once.
    :param max_calls_per_second: a client-side rate cap; without one the batch paces itself under the rate
        Signzy lets through once it answers with a rate limit (429, or its rate-limit 403).
    :param on_item_error: ``"continue"``: the task succeeds and the results report failed items (within
        ``max_failed_items`` / ``max_failed_ratio``); ``"fail"``: the task fails after the batch when any
        item failed.
    :param max_failed_items: under ``"continue"``, fail the task when more items than this failed (None: no
        limit by count).
    :param max_failed_ratio: under ``"continue"``, fail the task when more than this share of the items
        failed (default 0.5: a batch with most items failed is not a success; None: no limit by share).
    :param circuit_breaker: stop sending after this many calls in a row could not reach Signzy or got a 5xx
        answer, after their retries (default 5; None: never). The items not sent are ``refused`` ("not
        sent"), and the task fails, with Airflow's retries (which send only those, with the call ledger).
    :param idempotent: allow resending after a failure that may have reached Signzy (default: True for GET,
        PUT, DELETE). Non-idempotent batches keep a call ledger (Airflow 3.3+), so a retried task replays
        what succeeded, never resends a call of unknown outcome, and sends the rest.
    :param response_filter: ``callable(response) -> value`` kept as an item's ``response`` instead of the JSON.
    :param ledger_window: items whose ledger entries are written together (two task-state-store writes per
        window). Default: about a second of calls, so a worker killed mid-batch leaves at most about two
        seconds of calls of unknown outcome.
    :param ledger_key: names this batch in the call ledger (default: its method and endpoint, and which
        batch on them this is in the task). Templated.
    :param call_key: names each item for the ledger instead of a digest of its body: an item field's name,
        or ``callable(item) -> str``; for bodies that change between tries (a timestamp in them). Templated.

    Each result: ``{"index", "ok", "outcome", "status", "response", "error"}``, where ``outcome`` is
    ``succeeded``, ``replayed`` (an earlier try's success), ``refused`` (Signzy did not act: sending it
    again is safe), ``unknown`` (may have been acted on and charged: not sent again) or ``invalid``.
    """

    template_fields: Sequence[str] = (
        "endpoint",
        "product",
        "items",
        "query_params",
        "headers",
        "signzy_conn_id",
        "ledger_key",
        "call_key",
    )
    template_fields_renderers = {"items": "json", "query_params": "json", "headers": "json"}
    body_fields: Sequence[str] = ("items", "query_params", "headers")
    ui_color = "#c8e6fa"

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        items: Any,
        product: str | None = None,
        task: str | None = None,
        identity_type: str | None = None,
        email: str | None = None,
        callback_url: str | None = None,
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
        ledger_key: str | None = None,
        call_key: str | Callable[[Any], Any] | None = None,
        max_failed_items: int | None = None,
        max_failed_ratio: float | None = MAX_FAILED_RATIO,
        circuit_breaker: int | None = CIRCUIT_BREAKER,
        result_privacy: str = SEALED,
        clear_fields: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (endpoint is None) == (product is None):
            raise ValueError("SignzyBatchOperator takes an endpoint or a product (one of them)")
        clear_fields, self._clear_at_run = product_clear_fields(product, clear_fields)
        self.result_privacy, self.clear_fields = check_privacy(result_privacy, clear_fields)
        if on_item_error not in ON_ITEM_ERROR:
            raise ValueError(f"on_item_error must be one of {ON_ITEM_ERROR}, got {on_item_error!r}")
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
        if max_failed_items is not None and max_failed_items < 0:
            raise ValueError(f"max_failed_items must be 0 or more, got {max_failed_items}")
        if max_failed_ratio is not None and not 0 <= max_failed_ratio <= 1:
            raise ValueError(f"max_failed_ratio must be between 0 and 1, got {max_failed_ratio}")
        self.endpoint = endpoint
        self.product = product
        self.product_overrides = {
            "task": task,
            "identity_type": identity_type,
            "email": email,
            "callback_url": callback_url,
        }
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
        self.ledger_key = ledger_key
        self.call_key = call_key
        self.max_failed_items = max_failed_items
        self.max_failed_ratio = max_failed_ratio
        self.circuit_breaker = circuit_breaker

    @without_inner_frames
    def execute(self, context: Context) -> list[dict[str, Any]]:
        items, query_params, headers = (unseal(self.body(name)) for name in ("items", "query_params", "headers"))
        if not isinstance(items, list | tuple):
            raise SignzyError(
                f"items must be a list of JSON bodies, got {type(items).__name__}", conn_id=self.signzy_conn_id
            )
        if self.product is not None and self._clear_at_run:
            self.clear_fields = get_product(self.product).clear_fields
        record = pull_token_record(context["ti"], self.login_task_id)
        with SignzyHook(self.signzy_conn_id) as hook:
            sealer = ResultSealer.for_task(self, hook.config.extra)
            if record is None:
                self.log.info("No Signzy token from task %r: logging in for this batch alone", self.login_task_id)
            make_batch = functools.partial(
                SignzyBatch,
                hook,
                method=self.method,
                token=token_from_record(hook, record, self.login_task_id) if record is not None else None,
                max_concurrency=self.max_concurrency,
                max_calls_per_second=self.max_calls_per_second,
                idempotent=self.idempotent,
                query_params=query_params,
                headers=headers,
                window=self.ledger_window,
                circuit_breaker=self.circuit_breaker,
                log=self.log,
            )
            if self.product is not None:
                results, batches = run_product_batch(
                    hook, self.product, list(items), make_batch, ledger_key=self.ledger_key, **self.product_overrides
                )
            else:
                assert self.endpoint is not None  # one of endpoint and product, checked in __init__
                batch = make_batch(
                    endpoint=self.endpoint,
                    response_filter=self.response_filter,
                    ledger_key=self.ledger_key,
                    call_key=self.call_key,
                )
                batches = [batch]
                results = batch.run(list(items))
        kept_ledger = all(b.ledger is not None for b in batches)
        self._judge(results, kept_ledger=kept_ledger, idempotent=batches[0].idempotent)
        if sealer.seals:
            for result in results:
                result["response"] = sealer.seal(result["response"])
        return results

    def _judge(self, results: list[dict[str, Any]], *, kept_ledger: bool, idempotent: bool) -> None:
        failed = [r for r in results if not r["ok"]]
        if not failed:
            return
        by_outcome = {o: [r["index"] for r in failed if r["outcome"] == o] for o in (UNKNOWN, REFUSED, INVALID)}
        no_answer = [r["index"] for r in failed if r["outcome"] == REPLAYED and r["response"] is None]
        summary = ", ".join(f"{len(ix)} {o} (items {_some(ix)})" for o, ix in by_outcome.items() if ix)
        if no_answer:
            summary += f", {len(no_answer)} replayed without their answer (items {_some(no_answer)})"
        filter_errors = [
            r["index"] for r in failed if r["outcome"] not in by_outcome and r["index"] not in set(no_answer)
        ]
        if filter_errors:
            summary += f", {len(filter_errors)} whose response_filter failed (items {_some(filter_errors)})"
        what = f"product {self.product}" if self.product is not None else f"{self.method} {self.endpoint}"
        message = f"Signzy batch {what}: {len(failed)} of {len(results)} items failed: {summary}"
        if self.on_item_error == "continue":
            too_many = self._too_many_failed(len(failed), len(results))
            if too_many is None:
                self.log.warning("%s. on_item_error='continue': the task succeeds; the results say which", message)
                return
            message += f". {too_many}, so the task fails even under on_item_error='continue'"
        if by_outcome[UNKNOWN] or no_answer:
            raise SignzyOutcomeUnknownError(
                f"{message}. Signzy may have acted on the unknown ones, and they may have been charged: a retry "
                "or a clear never sends them again (nor those replayed without their answer: they were paid). "
                "Check them in Signzy, then send those you need in a new batch (another task or run)",
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

    def _too_many_failed(self, failed: int, total: int) -> str | None:
        """Why ``failed`` of ``total`` items is too many under on_item_error="continue"; None when it is not."""
        if self.max_failed_items is not None and failed > self.max_failed_items:
            return f"More than max_failed_items={self.max_failed_items} items failed"
        if self.max_failed_ratio is not None and total and failed / total > self.max_failed_ratio:
            return f"More than max_failed_ratio={self.max_failed_ratio:g} of the items failed"
        return None


def _some(indices: list[int], shown: int = 10) -> str:
    head = ", ".join(str(i) for i in indices[:shown])
    return head + (f" and {len(indices) - shown} more" if len(indices) > shown else "")
