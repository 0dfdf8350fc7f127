"""A local Signzy for development, tests and demos: ``SignzyEmulator`` or the ``signzy-emulator`` CLI."""

from airflow_provider_signzy.emulator.server import DEFAULT_PATRONS, SignzyEmulator
from airflow_provider_signzy.emulator.state import Patron

__all__ = ["DEFAULT_PATRONS", "Patron", "SignzyEmulator"]
