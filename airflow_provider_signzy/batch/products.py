"""A batch of one product: each item one unit (its identity and its snoop, or its one resource call).

Document products run in two passes of :class:`~.engine.SignzyBatch`: every item's identity, then the
snoops of the items whose identity exists. Each pass has its own scope in the call ledger, keyed per item
by the product and its inputs, so a retried task replays the identities (never creating another), replays
the snoops that succeeded, never resends one of unknown outcome, and sends the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_signzy.batch.engine import SignzyBatch
from airflow_provider_signzy.batch.outcomes import INVALID, item_result
from airflow_provider_signzy.exceptions import SignzyInputError
from airflow_provider_signzy.products.calls import SNOOPS_ENDPOINT, ProductCall, get_product, result_of
from airflow_provider_signzy.products.catalog import RESOURCE

if TYPE_CHECKING:
    import requests

    from airflow_provider_signzy.hooks.signzy import SignzyHook
    from airflow_provider_signzy.products.catalog import Product

#: In a batch item of a product that reads documents, the key of its image URLs (beside the essentials).
IMAGES_KEY = "images"

BatchFactory = Callable[..., SignzyBatch]


def prepare_items(product: Product, items: Sequence[Any], **overrides: Any) -> list[ProductCall | dict[str, Any]]:
    """Each item checked: its :class:`ProductCall`, or the ``invalid`` result that says which field is wrong."""
    prepared: list[ProductCall | dict[str, Any]] = []
    for index, item in enumerate(items):
        essentials, images = item, None
        if product.takes_images and isinstance(item, Mapping) and IMAGES_KEY in item:
            essentials = {k: v for k, v in item.items() if k != IMAGES_KEY}
            images = item[IMAGES_KEY]
        try:
            prepared.append(ProductCall.prepare(product, essentials, images=images, **overrides))
        except SignzyInputError as exc:
            prepared.append(item_result(index, INVALID, error=f"item {index}: {exc}"))
    return prepared


def run_product_batch(
    hook: SignzyHook,
    product_name: str,
    items: Sequence[Any],
    make_batch: BatchFactory,
    *,
    ledger_key: str | None = None,
    **overrides: Any,
) -> tuple[list[dict[str, Any]], list[SignzyBatch]]:
    """Every item's result in input order (``response``: the product's result), and the batches run."""
    product = get_product(product_name)
    prepared = prepare_items(product, items, **overrides)
    results: list[dict[str, Any] | None] = [p if isinstance(p, dict) else None for p in prepared]
    todo = [(i, p) for i, p in enumerate(prepared) if isinstance(p, ProductCall)]
    base = ledger_key or f"product {product.name}"
    batches: list[SignzyBatch] = []
    if product.flow == RESOURCE:
        bodies = [call.resource_body() for _, call in todo]
        batch = make_batch(
            endpoint=product.endpoint,
            call_key=_keys(bodies, [call.call_key() for _, call in todo]),
            ledger_key=base,
            response_filter=_product_result,
        )
        batches.append(batch)
        _place(results, todo, batch.run(bodies))
        return [r for r in results if r is not None], batches
    identity_bodies = [call.identity_body() for _, call in todo]
    identities = make_batch(
        endpoint=product.endpoint,
        call_key=_keys(identity_bodies, [f"{call.call_key()}:identity" for _, call in todo]),
        ledger_key=f"{base} identities",
        response_filter=_identity,
    )
    batches.append(identities)
    created = identities.run(identity_bodies)
    _place(results, todo, created)
    ready = [(i, call, r["response"]) for (i, call), r in zip(todo, created, strict=True) if r["ok"]]
    snoop_bodies = [call.snoop_body(identity) for _, call, identity in ready]
    snoops = make_batch(
        endpoint=SNOOPS_ENDPOINT,
        call_key=_keys(snoop_bodies, [f"{call.call_key()}:snoop" for _, call, _ in ready]),
        ledger_key=f"{base} snoops",
        response_filter=_product_result,
        anonymous=True,
    )
    batches.append(snoops)
    _place(results, [(i, call) for i, call, _ in ready], snoops.run(snoop_bodies))
    return [r for r in results if r is not None], batches


def _keys(bodies: list[Any], keys: list[str]) -> Callable[[Any], str]:
    """The batch's ``call_key``: each body's own key (by object: bodies of different items may be equal)."""
    by_body = {id(body): key for body, key in zip(bodies, keys, strict=True)}
    return lambda body: by_body[id(body)]


def _place(results: list[dict[str, Any] | None], todo: list[tuple[int, Any]], ran: list[dict[str, Any]]) -> None:
    for (index, _), result in zip(todo, ran, strict=True):
        results[index] = {**result, "index": index}


def _identity(response: requests.Response) -> dict[str, Any]:
    """The identity's answer (kept in memory for its snoop; not masked, see runner.create_identity)."""
    identity = response.json()
    return identity if isinstance(identity, dict) else {}


def _product_result(response: requests.Response) -> Any:
    result = result_of(response.json())
    return dict(result) if isinstance(result, Mapping) else {"result": result}
