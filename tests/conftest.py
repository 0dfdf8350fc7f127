"""Shared test set-up: a throw-away Airflow home (SQLite), emulator fixtures, secret-leak capture.

The environment is set here, before anything imports airflow.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

_HOME = Path(tempfile.mkdtemp(prefix="signzy-airflow-home-"))
TESTS_DIR = Path(__file__).parent
TEST_DAGS_DIR = TESTS_DIR / "dags" / "dag_files"
#: A fixed Fernet key, so XCom encryption in tests uses Airflow's [core] fernet_key path.
AIRFLOW_FERNET_KEY = "8J3GfFkzrV7wP0Qh6h2y4dNwU9h2nE1x3c7qQm5a1sA="

os.environ.update(
    {
        "AIRFLOW_HOME": str(_HOME),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(TEST_DAGS_DIR),
        "AIRFLOW__CORE__FERNET_KEY": AIRFLOW_FERNET_KEY,
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_HOME / 'airflow.db'}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(_HOME / "logs"),
    }
)
os.environ.pop("AIRFLOW_CONN_SIGNZY_DEFAULT", None)

import pytest  # noqa: E402

from airflow_provider_signzy.emulator import SignzyEmulator  # noqa: E402
from airflow_provider_signzy.emulator.pytest_plugin import connection_json  # noqa: E402

DEMO_KEY = "demo-api-key-0123456789"
#: The package's fixtures (signzy_emulator, signzy_connection_env), opted in as a user's conftest would.
pytest_plugins = ["airflow_provider_signzy.emulator.pytest_plugin"]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_HOME, ignore_errors=True)


@pytest.fixture
def emulator() -> Iterator[SignzyEmulator]:
    with SignzyEmulator() as emu:
        yield emu


@pytest.fixture
def make_conn(monkeypatch: pytest.MonkeyPatch, emulator: SignzyEmulator) -> Callable[..., str]:
    """Defines a ``signzy`` connection in the environment; fast retries unless the test says otherwise."""

    def make(conn_id: str = "signzy_default", *, url: str | None = None, **fields: object) -> str:
        extra = {"backoff_initial": 0.01, "backoff_max": 0.2, "timeout": 5}
        extra.update({k: v for k, v in fields.items() if k not in ("login", "password")})
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{conn_id.upper()}",
            connection_json(
                url or emulator.url,
                login=fields.get("login"),  # type: ignore[arg-type]
                password=fields.get("password"),  # type: ignore[arg-type]
                **extra,
            ),
        )
        return conn_id

    return make


class SecretLeakCheck:
    """Collects everything a test printed or logged, to prove no secret is in it."""

    def __init__(self, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
        self.capfd = capfd
        self.caplog = caplog
        self.seen = ""

    def text(self) -> str:
        out, err = self.capfd.readouterr()
        self.seen += out + err + "\n".join(r.getMessage() for r in self.caplog.records)
        return self.seen

    def logged(self) -> str:
        """The provider's log lines, once: where they go depends on the version (3.0 sends them to the
        log records and echoes them on the console, 3.2 only prints them through structlog), so ``text()``
        may hold them twice. The records when the provider's logger wrote any, else the console."""
        ours = [r.getMessage() for r in self.caplog.records if "airflow_provider_signzy" in r.name]
        if ours:
            return "\n".join(ours)
        out, err = self.capfd.readouterr()
        self.seen += out + err
        return self.seen

    def assert_absent(self, *secrets: str) -> None:
        from dagrun import unwrapped  # also finds a secret split by a line wrap; see there for Airflow 3.0

        raw = self.text()
        assert raw.strip(), "nothing was captured: the check would prove nothing"
        text = unwrapped(raw)
        for secret in secrets:
            assert secret, "an empty secret proves nothing"
            assert secret not in text


@pytest.fixture
def leak_check(capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> SecretLeakCheck:
    caplog.set_level("DEBUG")
    return SecretLeakCheck(capfd, caplog)


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """A clean metadata DB for the session, with the DAG bundle that serialized DAGs refer to."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.utils import db

    db.resetdb()
    DagBundlesManager().sync_bundles_to_db()


@pytest.fixture
def dag_env(airflow_db: None, make_conn: Callable[..., str], emulator: SignzyEmulator) -> SignzyEmulator:
    """The default connection pointed at a fresh emulator; returns the emulator."""
    make_conn()
    return emulator
