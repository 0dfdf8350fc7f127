"""SignzyProductOperator: one of Signzy's products by name, with the run's token, its result sealed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_provider_signzy.hooks.signzy import SignzyHook
from airflow_provider_signzy.privacy.rendered import HiddenBodies
from airflow_provider_signzy.privacy.sealing import SEALED, ResultSealer, check_privacy, unseal
from airflow_provider_signzy.privacy.tracebacks import without_inner_frames
from airflow_provider_signzy.products.calls import get_product
from airflow_provider_signzy.utils.connection_form import DEFAULT_CONN_ID
from airflow_provider_signzy.utils.token_xcom import DEFAULT_LOGIN_TASK_ID, pull_token_record, token_from_record

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context


def is_templated(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value


def product_clear_fields(product: str | None, clear_fields: Sequence[str] | None) -> tuple[Sequence[str] | None, bool]:
    """An operator's clear fields for ``product`` at parse time, and whether ``execute()`` must take the
    product's own (a templated name, no ``clear_fields`` given). A literal unknown name fails here, when the
    DAG is parsed."""
    if product is None:
        return clear_fields, False
    if is_templated(product):
        return clear_fields, clear_fields is None
    spec = get_product(product)
    return (spec.clear_fields if clear_fields is None else clear_fields), False


class SignzyProductOperator(HiddenBodies, BaseOperator):
    """Run one of Signzy's products (``"pan.verification"``, ``"bankaccount.transfer"``, ...) and return its
    result (Signzy's ``response.result``), sealed in XCom.

    :param product: the product's catalog name (the docs' Products page lists them). An unknown name
        fails when the DAG is parsed. Templated.
    :param essentials: the product's inputs (``{"number": ..., "name": ...}``), checked against the catalog
        before anything is sent: a missing or malformed field fails the task at once (no retries), naming
        the field and its format, never the value. Templated; may be sealed. Airflow stores its shape only.
    :param images: document URLs for the products that read documents (extraction). Templated, shown as
        their shape.
    :param files: documents to upload first (paths or ``ObjectStoragePath``s, each under 2 MB), added to
        ``images``; their URLs live for 30 minutes. Templated, shown as their shape.
    :param task: Signzy's task, to override the catalog's. :param identity_type: the identity's type, to
        override the catalog's (e.g. ``"businessPan"``).
    :param email: the identity's e-mail; :param callback_url: the identity's callback URL.
    :param login_task_id: the SignzyLoginOperator task whose token to use (without it, this task logs in
        and revokes its own token).
    :param result_privacy: ``"sealed"`` (default) or ``"plain"``.
    :param clear_fields: result fields left readable beside the seal; default the product's verdict
        fields (``verified`` for a verification, none for a fetch).

    Both of a document product's calls (the identity, the snoop) go through the call ledger (Airflow
    3.3+): a retry reuses the identity the first try created, and never sends a snoop twice.
    """

    template_fields: Sequence[str] = (
        "product",
        "essentials",
        "images",
        "files",
        "task",
        "identity_type",
        "email",
        "callback_url",
        "signzy_conn_id",
    )
    template_fields_renderers = {"essentials": "json", "images": "json"}
    body_fields: Sequence[str] = ("essentials", "images", "files", "email")
    ui_color = "#cfe8fc"

    def __init__(
        self,
        *,
        product: str,
        essentials: Mapping[str, Any] | Any = None,
        images: Sequence[str] | Any = None,
        files: Sequence[Any] | Any = None,
        task: str | None = None,
        identity_type: str | None = None,
        email: str | None = None,
        callback_url: str | None = None,
        login_task_id: str = DEFAULT_LOGIN_TASK_ID,
        signzy_conn_id: str = DEFAULT_CONN_ID,
        result_privacy: str = SEALED,
        clear_fields: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        clear_fields, self._clear_at_run = product_clear_fields(product, clear_fields)
        self.result_privacy, self.clear_fields = check_privacy(result_privacy, clear_fields)
        self.product = product
        self.essentials = essentials
        self.images = images
        self.files = files
        self.task = task
        self.identity_type = identity_type
        self.email = email
        self.callback_url = callback_url
        self.login_task_id = login_task_id
        self.signzy_conn_id = signzy_conn_id

    @without_inner_frames
    def execute(self, context: Context) -> Any:
        spec = get_product(self.product)
        if self._clear_at_run:
            self.clear_fields = spec.clear_fields
        essentials, images, files, email = (
            unseal(self.body(name)) for name in ("essentials", "images", "files", "email")
        )
        record = pull_token_record(context["ti"], self.login_task_id)
        with SignzyHook(self.signzy_conn_id) as hook:
            sealer = ResultSealer.for_task(self, hook.config.extra)
            if record is None:
                self.log.info(
                    "No Signzy token from task %r: logging in for this product alone (revoked when it ends)",
                    self.login_task_id,
                )
            token = token_from_record(hook, record, self.login_task_id) if record is not None else None
            result = hook.run_product(
                spec.name,
                essentials,
                images=images,
                files=files,
                token=token,
                task=self.task,
                identity_type=self.identity_type,
                email=email,
                callback_url=self.callback_url,
            )
        self.log.info("Signzy product %s answered (%d result fields)", spec.name, len(result))
        return sealer.seal(dict(result))
