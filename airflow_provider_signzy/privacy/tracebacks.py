"""The provider's own errors leave a task without the frames below it.

Those frames' local variables hold request bodies and answers, and Airflow 3.0 prints every frame's
locals when ``airflow dags test`` / ``dag.test()`` shows a task's error on the console (its rich
traceback formatter keeps structlog's ``show_locals=True``; task log files never show locals). A
:class:`SignzyError`, an ``AirflowFailException`` and a sensor timeout say everything in their message,
so cutting their traceback at the operator loses nothing a user needs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from airflow.providers.common.compat.sdk import AirflowException

F = TypeVar("F", bound=Callable[..., Any])


def without_inner_frames(method: F) -> F:
    """Decorate ``execute``/``poke``: an ``AirflowException`` raised inside leaves with no frames below."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except AirflowException as exc:
            raise exc.with_traceback(None)  # noqa: B904 -- the same exception, re-raised without its frames

    return wrapper  # type: ignore[return-value]
