"""get_provider_info() lists every public hook, operator, sensor and trigger module, and the plugin loads."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Any

import airflow_provider_signzy
from airflow_provider_signzy import get_provider_info

ROLES = {"hooks": "hooks", "operators": "operators", "sensors": "sensors", "triggers": "triggers"}


def listed_modules(kind: str) -> set[str]:
    return {m for entry in get_provider_info().get(kind, []) for m in entry["python-modules"]}


def public_classes(package: str) -> dict[str, list[str]]:
    """Module -> the public classes defined in it, for every module of ``airflow_provider_signzy.<package>``.

    Public: not underscored, and in the module's ``__all__`` when it has one (the hook's inner layers,
    ``hooks/transport.py`` and ``hooks/tokens.py``, declare ``__all__ = []``: SignzyHook is their face).
    """
    from airflow.providers.common.compat.sdk import BaseHook, BaseOperator
    from airflow.triggers.base import BaseTrigger

    bases: tuple[type[Any], ...] = (BaseHook, BaseOperator, BaseTrigger)
    found: dict[str, list[str]] = {}
    root = importlib.import_module(f"airflow_provider_signzy.{package}")
    for info in pkgutil.iter_modules(root.__path__, prefix=f"{root.__name__}."):
        module = importlib.import_module(info.name)
        classes = [
            name
            for name, obj in inspect.getmembers(module, inspect.isclass)
            if obj.__module__ == module.__name__
            and not name.startswith("_")
            and name in getattr(module, "__all__", [name])
            and issubclass(obj, bases)
        ]
        if classes:
            found[info.name] = classes
    return found


def test_every_public_class_is_in_the_provider_info() -> None:
    for package, kind in ROLES.items():
        modules = public_classes(package)
        assert modules, f"no public class found in {package}/: the check would prove nothing"
        missing = sorted(set(modules) - listed_modules(kind))
        assert not missing, f"get_provider_info()[{kind!r}] lacks {missing} ({modules})"


def test_every_listed_module_imports() -> None:
    for kind in ROLES.values():
        for module in listed_modules(kind):
            importlib.import_module(module)


def test_the_connection_type_names_the_hook_class() -> None:
    [conn_type] = get_provider_info()["connection-types"]
    module, _, name = conn_type["hook-class-name"].rpartition(".")
    assert getattr(importlib.import_module(module), name).conn_type == conn_type["connection-type"]


def test_the_signzy_plugin_offers_the_unseal_macro() -> None:
    from importlib.metadata import entry_points

    [plugin_info] = get_provider_info()["plugins"]
    [entry] = [ep for ep in entry_points(group="airflow.plugins") if ep.name == "signzy"]
    plugin = entry.load()
    assert f"{plugin.__module__}.{plugin.__name__}" == plugin_info["plugin-class"]
    assert plugin.name == "signzy"
    assert [m.__name__ for m in plugin.macros] == ["unseal"]
    assert airflow_provider_signzy.__version__ in get_provider_info()["versions"]
