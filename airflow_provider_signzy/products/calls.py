"""A product call: the catalog's product found by name, its inputs checked before anything is sent, and the
bodies Signzy's v2 API expects for each step."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_provider_signzy.exceptions import SignzyInputError
from airflow_provider_signzy.products.catalog import IDENTITY, PRODUCTS, Product
from airflow_provider_signzy.products.fields import FORMATS

__all__ = ["SNOOPS_ENDPOINT", "ProductCall", "ProductResult", "get_product", "result_of"]

SNOOPS_ENDPOINT = "/api/v2/snoops"


def get_product(name: str) -> Product:
    """The catalog's product ``name``; an unknown name fails naming the nearest ones."""
    product = PRODUCTS.get(name) if isinstance(name, str) else None
    if product is None:
        near = difflib.get_close_matches(str(name), PRODUCTS, n=3)
        hint = f" Did you mean {', '.join(repr(n) for n in near)}?" if near else ""
        raise SignzyInputError(
            f"Unknown Signzy product {name!r}.{hint} The catalog: {', '.join(sorted(PRODUCTS))}", product=str(name)
        )
    return product


@dataclass(frozen=True)
class ProductCall:
    """One product call, checked: what is sent at each step. Build it with :meth:`prepare`."""

    product: Product
    essentials: dict[str, Any]
    images: tuple[str, ...]
    task: str | None
    identity_type: str | None
    email: str | None
    callback_url: str | None

    @classmethod
    def prepare(
        cls,
        product: str | Product,
        essentials: Mapping[str, Any] | None,
        *,
        images: Sequence[str] | None = None,
        task: str | None = None,
        identity_type: str | None = None,
        email: str | None = None,
        callback_url: str | None = None,
    ) -> ProductCall:
        """Check a product's inputs against the catalog before anything is sent: raises
        :class:`SignzyInputError` naming the product, the field and its format (never the value).

        ``task`` and ``identity_type`` override the catalog's; essentials the catalog does not list are
        sent as given (Signzy's docs and clients show some the tables leave out).
        """
        spec = product if isinstance(product, Product) else get_product(product)
        name = spec.name
        if essentials is None:
            essentials = {}
        if not isinstance(essentials, Mapping):
            raise SignzyInputError(
                f"Product {name!r}: essentials must be a mapping of field to value, got {type(essentials).__name__}",
                product=name,
            )
        for field in spec.essentials:
            if field.name not in essentials or essentials[field.name] is None:
                if field.required:
                    raise SignzyInputError(
                        f"Product {name!r}: essentials field {field.name!r} is missing; it must be {field.described}. "
                        f"{_fields_line(spec)}",
                        product=name,
                        field=field.name,
                    )
                continue
            field.check(name, essentials[field.name])
        image_list = _images(spec, images)
        chosen_type = identity_type or spec.identity_type
        if spec.flow == IDENTITY and not chosen_type:
            raise SignzyInputError(
                f"Product {name!r}: Signzy's docs do not state its identity type; pass identity_type=",
                product=name,
                field="identity_type",
            )
        if spec.needs_email and spec.flow == IDENTITY and not email:
            raise SignzyInputError(
                f"Product {name!r}: the identity's email is required (Signzy's table for this product marks it "
                "so); pass email=",
                product=name,
                field="email",
            )
        return cls(
            product=spec,
            essentials={k: v for k, v in essentials.items() if v is not None},
            images=image_list,
            task=task or spec.task,
            identity_type=chosen_type,
            email=email,
            callback_url=callback_url,
        )

    # -- the bodies --

    def identity_body(self) -> dict[str, Any]:
        """Step 1 of the identity flow: ``POST /api/v2/patrons/{patron_id}/identities``."""
        body: dict[str, Any] = {"type": self.identity_type, "images": list(self.images)}
        # Every sample sends both; the docs' tables disagree on whether they are required (open question 7).
        body["email"] = self.email or ""
        body["callbackUrl"] = self.callback_url or ""
        return body

    def snoop_body(self, identity: Mapping[str, Any]) -> dict[str, Any]:
        """Step 2: ``POST /api/v2/snoops``; the identity's ``id`` and ``accessToken`` are the credential."""
        item_id, access_token = identity.get("id"), identity.get("accessToken")
        if not isinstance(item_id, str) or not isinstance(access_token, str) or not item_id or not access_token:
            from airflow_provider_signzy.exceptions import SignzyResponseError

            raise SignzyResponseError(
                f"Signzy created the identity for product {self.product.name!r} without the 'id' and "
                "'accessToken' a snoop needs"
            )
        return {
            "service": "Identity",
            "itemId": item_id,
            "accessToken": access_token,
            "task": self.task,
            "essentials": dict(self.essentials),
        }

    def resource_body(self) -> dict[str, Any]:
        """The one-step flow: ``POST /api/v2/patrons/{patron_id}/<resource>``."""
        body: dict[str, Any] = {"essentials": dict(self.essentials)}
        if self.task:
            body["task"] = self.task
        return body

    def call_key(self) -> str:
        """Names this call in the ledger: the product, its task and type, its inputs (a digest, never values)."""
        import hashlib
        import json

        digest = hashlib.sha256(
            json.dumps(
                [self.product.name, self.task, self.identity_type, self.essentials, list(self.images)],
                sort_keys=True,
                default=str,
            ).encode()
        ).hexdigest()
        return f"product:{self.product.name}:{digest[:32]}"


def result_of(answer: Any) -> Any:
    """The product's result in Signzy's answer: ``response.result`` (snoops) or ``result`` (resources)."""
    if isinstance(answer, Mapping):
        response = answer.get("response")
        if isinstance(response, Mapping) and "result" in response:
            return response["result"]
        if "result" in answer:
            return answer["result"]
    return answer


def _images(spec: Product, images: Sequence[str] | None) -> tuple[str, ...]:
    given = [] if images is None else images
    if isinstance(given, str) or not isinstance(given, Sequence):
        raise SignzyInputError(
            f"Product {spec.name!r}: images= must be a list of URLs, got {type(given).__name__}",
            product=spec.name,
            field="images",
        )
    if not spec.takes_images and given:
        raise SignzyInputError(
            f"Product {spec.name!r} takes no images= (its identity is created with images: []); "
            "send document URLs in its essentials",
            product=spec.name,
            field="images",
        )
    url = FORMATS["url"].pattern
    assert url is not None
    if any(not isinstance(i, str) or not url.match(i) for i in given):
        raise SignzyInputError(
            f"Product {spec.name!r}: every images= entry must be a URL (upload files with upload_document first)",
            product=spec.name,
            field="images",
        )
    if len(given) < spec.min_images:
        need = "two images (front and back)" if spec.min_images == 2 else "at least one image"
        raise SignzyInputError(
            f"Product {spec.name!r} needs {need} in images=: URLs of the document, each under 2 MB; got {len(given)}",
            product=spec.name,
            field="images",
        )
    return tuple(given)


def _fields_line(spec: Product) -> str:
    parts = [f"{f.name} ({f.described}{'' if f.required else ', optional'})" for f in spec.essentials]
    return f"Its essentials: {'; '.join(parts)}." if parts else "It takes no essentials."


class ProductResult(dict[str, Any]):
    """A product's result: the fields of Signzy's ``response.result`` (``result`` for one-step products).

    A result that is not an object (ID classification's list) is kept under the key ``"result"``.
    ``answer`` is Signzy's whole answer (it holds the identity's token: never log or return it);
    ``identity_id`` the identity the snoop ran on (None for one-step products).
    """

    product: str
    answer: Any
    identity_id: str | None

    @classmethod
    def of(cls, product: Product, answer: Any, identity_id: str | None = None) -> ProductResult:
        result = result_of(answer)
        made = cls(result) if isinstance(result, Mapping) else cls({"result": result})
        made.product, made.answer, made.identity_id = product.name, answer, identity_id
        return made
