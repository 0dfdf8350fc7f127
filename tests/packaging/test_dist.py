"""The release artefacts: ``python -m build`` makes an sdist and a wheel that ``twine check`` accepts, the
sdist rebuilds the same wheel, and the wheel is what this environment has installed (in every matrix
virtualenv: ``make`` installs the package from this tree before the suite runs)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from importlib.metadata import distribution
from pathlib import Path

import pytest

import airflow_provider_signzy

REPO = Path(__file__).resolve().parents[2]


def build(*args: str, outdir: Path, source: Path = REPO) -> None:
    # --no-isolation: the build backend (setuptools, from the test extra) is already installed here, so
    # the build needs no network and takes seconds.
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", *args, "--outdir", str(outdir), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    build("--sdist", "--wheel", outdir=out)
    return out


def wheel_contents(wheel: Path) -> dict[str, str]:
    """File name -> sha256 of each file in the wheel, RECORD aside (it lists the others' hashes)."""
    with zipfile.ZipFile(wheel) as archive:
        return {
            name: hashlib.sha256(archive.read(name)).hexdigest()
            for name in archive.namelist()
            if not name.endswith(".dist-info/RECORD")
        }


def test_sdist_and_wheel_pass_twine_check(dist: Path) -> None:
    version = airflow_provider_signzy.__version__
    (sdist,) = dist.glob(f"airflow_provider_signzy-{version}.tar.gz")
    (wheel,) = dist.glob(f"airflow_provider_signzy-{version}-py3-none-any.whl")
    result = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", str(sdist), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PASSED") == 2


def test_wheel_carries_license_types_and_one_version(dist: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    names = set(wheel_contents(wheel))
    assert "airflow_provider_signzy/py.typed" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        text = archive.read(metadata).decode()
    assert f"Version: {airflow_provider_signzy.__version__}\n" in text
    assert "License-Expression: Apache-2.0" in text
    assert "Apache License" in (REPO / "LICENSE").read_text()


def test_sdist_builds_the_same_wheel(dist: Path, tmp_path: Path) -> None:
    (sdist,) = dist.glob("*.tar.gz")
    (wheel,) = dist.glob("*.whl")
    unpacked = tmp_path / "src"
    unpacked.mkdir()
    subprocess.run(["tar", "-xzf", str(sdist), "-C", str(unpacked)], check=True)
    (source,) = unpacked.iterdir()
    again = tmp_path / "again"
    build("--wheel", outdir=again, source=source)
    (rebuilt,) = again.glob("*.whl")
    assert wheel_contents(rebuilt) == wheel_contents(wheel)


def test_installed_package_is_the_built_wheel(dist: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    built = {n: h for n, h in wheel_contents(wheel).items() if n.startswith("airflow_provider_signzy/")}
    installed = distribution("airflow-provider-signzy")
    on_disk = {
        str(f): hashlib.sha256(Path(str(installed.locate_file(f))).read_bytes()).hexdigest()
        for f in installed.files or []
        if str(f).startswith("airflow_provider_signzy/") and not str(f).endswith(".pyc")
    }
    assert on_disk == built
