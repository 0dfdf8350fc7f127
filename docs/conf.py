"""Sphinx configuration of the docs site: ``make docs`` builds it with warnings as errors.

The pages are Markdown (MyST); the API pages are autodoc of the real modules, imported with the real
Airflow of the virtualenv (no mocked imports), so a docstring that no longer matches the code, or a module
that moved, fails the build.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Document this tree, not whichever copy of the package the virtualenv last installed.
sys.path.insert(0, str(REPO))
# Importing Airflow writes an airflow.cfg into AIRFLOW_HOME: without one set, keep it in the build folder.
os.environ.setdefault("AIRFLOW_HOME", str(REPO / "docs" / "_build" / "airflow-home"))

import airflow_provider_signzy  # noqa: E402 - needs the path above

project = "airflow-provider-signzy"
author = "airflow-provider-signzy developers"
copyright = "airflow-provider-signzy developers"
release = airflow_provider_signzy.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
]

source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3

# Docstrings use reST fields (``:param x:``), which autodoc renders as they are. docs/api.md names the
# members it documents: the public API, not every helper a module happens to define.
autodoc_default_options = {"show-inheritance": True, "member-order": "bysource"}
autodoc_typehints = "description"
autodoc_class_signature = "separated"
autodoc_inherit_docstrings = False

html_theme = "furo"
html_title = f"airflow-provider-signzy {release}"
html_static_path: list[str] = []
