"""One product call through a hook: the identity and the snoop (or the one resource call), each under the
paid-call policy, so a later try of the task reuses the identity and never sends a snoop twice."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_signzy.exceptions import SignzyResponseError
from airflow_provider_signzy.products.calls import SNOOPS_ENDPOINT, ProductCall, ProductResult
from airflow_provider_signzy.products.catalog import RESOURCE

if TYPE_CHECKING:
    import requests

    from airflow_provider_signzy.hooks.signzy import SignzyHook
    from airflow_provider_signzy.products.catalog import Product
    from airflow_provider_signzy.utils.access_token import SignzyToken

#: An inner part of SignzyHook.run_product: use the hook.
__all__: list[str] = []


def run(hook: SignzyHook, call: ProductCall, token: SignzyToken | None) -> ProductResult:
    """Run ``call`` (checked already) with ``token`` (None: the hook's own)."""
    product = call.product
    key = call.call_key()
    endpoint = hook.fill_patron(product.endpoint, token)
    if product.flow == RESOURCE:
        response = hook.request("POST", endpoint, token=token, json=call.resource_body(), call_key=key)
        return ProductResult.of(product, _json(response, product, "its answer"))
    identity = create_identity(hook, call, token, endpoint)
    snoop = hook.request(
        "POST", SNOOPS_ENDPOINT, json=call.snoop_body(identity), anonymous=True, call_key=f"{key}:snoop"
    )
    return ProductResult.of(product, _json(snoop, product, "the snoop's answer"), identity_id=identity["id"])


def create_identity(hook: SignzyHook, call: ProductCall, token: SignzyToken | None, endpoint: str) -> dict[str, Any]:
    """Step 1: the identity (replayed from the ledger by a later try).

    Its ``accessToken`` is not registered with Airflow's secrets masker: every registered secret becomes one
    more alternative of the regex that each log line is matched against, recompiled per secret, so a task
    running thousands of products would slow down quadratically. The token is kept out of logs instead:
    the provider never logs bodies or answers, errors are scrubbed, and stores hold it sealed.
    """
    response = hook.request(
        "POST", endpoint, token=token, json=call.identity_body(), call_key=f"{call.call_key()}:identity"
    )
    identity = _json(response, call.product, "the identity's answer")
    if not isinstance(identity, dict):
        raise SignzyResponseError(f"Signzy answered the identity of product {call.product.name!r} with no object")
    return identity


def _json(response: requests.Response, product: Product, what: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise SignzyResponseError(
            f"Signzy answered {what} for product {product.name!r} with a body that is not JSON "
            f"({response.status_code}, {response.headers.get('Content-Type') or 'no content type'})",
            status=response.status_code,
        ) from None
