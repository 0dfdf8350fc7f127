"""Request bodies out of rendered template fields: the operator keeps the values, Airflow stores the shape.

Airflow stores every templated field as rendered (``rendered_task_instance_fields``) and shows it on the
Rendered Template tab; the secrets masker hides registered secrets there only from 3.1.4, and never a
customer's PAN. Right after rendering, and before Airflow serializes the fields (``_prepare()`` in the
task runner: render, then ``_serialize_rendered_fields``), :class:`HiddenBodies` moves each body field's
rendered value aside and leaves its :func:`~.shape.shape_of` in the attribute. ``execute()`` reads the
values with :meth:`HiddenBodies.body`. The task object rendered is a per-try copy
(``prepare_for_execution``), so a retry renders the templates again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_provider_signzy.privacy.shape import shape_of


class HiddenBodies:
    """Mixin for a ``BaseOperator`` subclass: the fields in ``body_fields`` render, then show their shape.

    Put it before ``BaseOperator`` in the bases. Works for mapped tasks too: Airflow renders an unmapped
    copy through the same ``_do_render_template_fields``.
    """

    body_fields: Sequence[str] = ()

    def _do_render_template_fields(self, parent: Any, *args: Any, **kwargs: Any) -> None:
        super()._do_render_template_fields(parent, *args, **kwargs)  # type: ignore[misc]
        if parent is self:
            self._hide_bodies()

    def _hide_bodies(self) -> None:
        hidden = dict(getattr(self, "_hidden_bodies", {}))  # a new dict: never share one between copies
        for name in self.body_fields:
            value = getattr(self, name)
            if value is None:
                continue
            hidden[name] = value
            object.__setattr__(self, name, shape_of(value))
        object.__setattr__(self, "_hidden_bodies", hidden)

    def body(self, name: str) -> Any:
        """The rendered value of body field ``name`` (the attribute itself when nothing was rendered)."""
        hidden: dict[str, Any] = getattr(self, "_hidden_bodies", {})
        return hidden[name] if name in hidden else getattr(self, name)
