"""Known breaks between an Airflow line and a newer release of one of its dependencies, named.

Airflow reports them as something else: on Airflow 3.0 and 3.1 with cryptography 51 or newer,
``get_fernet()`` fails (``MultiFernet`` became a Rust class that takes no new attribute, and those lines
set ``is_encrypted`` on it; 3.2 wraps it instead), and every connection with a password then reads as
"Connection not found". The hook asks here
before it says a connection is missing or a Fernet key unusable, so the user reads the cause and the fix.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__: list[str] = []


def _major_minor(distribution: str) -> tuple[int, int] | None:
    try:
        parts = version(distribution).split(".")
        return int(parts[0]), int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    except (PackageNotFoundError, ValueError):
        return None


def known_dependency_break() -> str | None:
    """The message for a known-broken pair of Airflow and a dependency installed here, else ``None``."""
    airflow, cryptography = _major_minor("apache-airflow"), _major_minor("cryptography")
    if airflow is None or cryptography is None:
        return None
    if airflow < (3, 2) and cryptography[0] >= 51:
        return (
            f"Airflow {version('apache-airflow')} cannot decrypt connections with cryptography "
            f"{version('cryptography')}: since cryptography 51, the get_fernet() of Airflow 3.0 and 3.1 fails "
            "(AttributeError: 'MultiFernet' object has no attribute 'is_encrypted'), and every connection "
            "with a password reads as 'not found'. Fix: pip install 'cryptography<51' (the provider's "
            "constraints files for 3.0 and 3.1 pin 50.0.2), or upgrade Airflow to 3.2 or newer"
        )
    return None
