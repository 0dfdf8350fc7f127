# Two commands do all the set-up on a fresh machine with Python 3.11+ and pip:
#   make demo   runs the provider against the local Signzy emulator in real Airflow
#   make test   lint, type-check and the whole test suite
#   make test AIRFLOW_VERSION=3.0.6   the same on another Airflow (its own virtualenv, reused)
#   make matrix                       the suite on every supported Airflow line, one line of counts each
#   make docs                         the docs site (Sphinx, warnings are errors) in docs/_build/html
PYTHON ?= python3
DEFAULT_AIRFLOW_VERSION := 3.3.2
AIRFLOW_VERSION ?= $(DEFAULT_AIRFLOW_VERSION)
# The newest patch of each supported line; `make matrix` runs them all.
MATRIX_VERSIONS ?= 3.0.6 3.1.8 3.2.2 3.3.2
PY_VERSION := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
# The full freeze of a tested resolution for this Airflow and Python (every package pinned), made by
# `make constraints`: installs never pick a release that no test has seen (docs/compatibility.md).
CONSTRAINTS := constraints/airflow-$(AIRFLOW_VERSION)-python-$(PY_VERSION).txt
ifeq ($(AIRFLOW_VERSION),$(DEFAULT_AIRFLOW_VERSION))
VENV ?= .venv
else
VENV ?= .venvs/airflow-$(AIRFLOW_VERSION)
endif
BIN := $(VENV)/bin
STAMP := $(VENV)/.deps-airflow-$(AIRFLOW_VERSION)-python-$(PY_VERSION)
DOCS_STAMP := $(VENV)/.deps-docs-python-$(PY_VERSION)
E2E_STAMP := $(VENV)/.deps-e2e-python-$(PY_VERSION)
PYTEST_ARGS ?=
CONSTRAINTS_ARGS ?=

.PHONY: install test suite matrix lint docs demo bench bench-sensors e2e constraints clean

$(STAMP): pyproject.toml $(wildcard $(CONSTRAINTS))
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed, found " + sys.version.split()[0])'
	@test -f $(CONSTRAINTS) || { echo "No tested freeze for Airflow $(AIRFLOW_VERSION) on Python $(PY_VERSION) ($(CONSTRAINTS)). Tested:"; \
		ls constraints/*-python-*.txt | sed 's/^/  /'; echo "make constraints CONSTRAINTS_ARGS='--versions $(AIRFLOW_VERSION) --pythons $(PY_VERSION)' makes one."; exit 1; }
	@# A virtualenv made by another Python is made anew (the freeze is per Python version).
	@$(BIN)/python -c 'import sys; sys.exit("%d.%d" % sys.version_info[:2] != "$(PY_VERSION)")' 2>/dev/null || \
		{ rm -rf $(VENV); $(PYTHON) -m venv $(VENV); }
	@echo ">> Installing Airflow $(AIRFLOW_VERSION) and the test tools into $(VENV) from $(CONSTRAINTS): about a minute"
	@$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -m pip install -q -c $(CONSTRAINTS) "apache-airflow==$(AIRFLOW_VERSION)" ".[test]"
	@touch $@

# The docs extra (Sphinx, furo, MyST) goes into the same virtualenv: autodoc imports the real Airflow there.
$(DOCS_STAMP): $(STAMP)
	@echo ">> Installing the docs tools (Sphinx, furo, MyST) into $(VENV)"
	@$(BIN)/python -m pip install -q -c $(CONSTRAINTS) ".[docs]"
	@touch $@

# The Celery deployment of `make e2e` and `make bench-sensors` (the e2e extra), pinned like the rest.
$(E2E_STAMP): $(STAMP)
	@echo ">> Installing the Celery provider, psycopg2 and asyncpg into $(VENV)"
	@$(BIN)/python -m pip install -q -c $(CONSTRAINTS) ".[e2e]"
	@touch $@

# LoopBack 3 (Node.js) for the interop tests: Signzy's v2 API is LoopBack, so the hook and the emulator are
# checked against the real thing. Debian's nodejs/npm are installed if missing (as root, like CI).
LOOPBACK_DEPS := tests/loopback/node_modules/.package-lock.json
$(LOOPBACK_DEPS): tests/loopback/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo ">> Installing Debian's nodejs and npm"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }
	@echo ">> Installing LoopBack 3 for the interop tests (npm ci in tests/loopback)"
	@cd tests/loopback && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	@touch $@

# The package is installed as a wheel, not in editable mode: the tests exercise what users install.
install: $(STAMP)
	@echo ">> Installing airflow-provider-signzy from this tree (as a wheel)"
	@# setuptools reuses build/: a module moved or deleted since the last build would ship in the wheel.
	@rm -rf build
	@$(BIN)/python -m pip install -q --no-deps --force-reinstall .

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: install lint $(LOOPBACK_DEPS)
	$(BIN)/pytest $(PYTEST_ARGS)

# The suite alone (no lint), for the matrix: lint does not depend on the Airflow version.
suite: install $(LOOPBACK_DEPS)
	$(BIN)/pytest $(PYTEST_ARGS)

# One line per version: "airflow X.Y.Z: N passed, N failed, N skipped"; logs in .matrix/.
matrix:
	@$(PYTHON) scripts/matrix.py $(MATRIX_VERSIONS)

# The site in docs/_build/html; a warning (a broken reference, a missing include, a docstring autodoc
# cannot read) fails the build. The pages document this tree (docs/conf.py puts it first on sys.path).
docs: $(DOCS_STAMP)
	$(BIN)/sphinx-build -E -W --keep-going -b html docs docs/_build/html

# Re-resolves every supported line from scratch (newest versions the holds in constraints/holds/ allow),
# runs its checks and rewrites its freeze only if they pass; otherwise names the move that broke it.
# About 10 minutes per Airflow version and Python, run on our schedule, never in CI (CI installs the
# committed freezes). CONSTRAINTS_ARGS="--versions 3.0.6 --pythons 3.11" for fewer.
constraints: $(LOOPBACK_DEPS)
	@$(PYTHON) scripts/constraints.py $(CONSTRAINTS_ARGS)

clean:
	rm -rf .venv .venvs .matrix .constraints dist build *.egg-info .pytest_cache .mypy_cache .ruff_cache .demo .e2e .e2e-events .bench .bench-sensors docs/_build

demo: install
	@$(BIN)/python scripts/demo.py

bench: install
	@$(BIN)/python benchmarks/run.py

# N deferred SignzySensors vs N HttpSensors (reschedule) on the local Celery deployment of `make e2e`
# (SENSOR_BENCH_N=200 by default; about 25 minutes, so not part of CI).
bench-sensors: install $(E2E_STAMP)
	@$(BIN)/python benchmarks/deferred_sensors.py

# A local Celery deployment under concurrent load and injected faults (E2E_RUNS=20 by default).
e2e: install $(E2E_STAMP)
	@$(BIN)/python scripts/e2e.py
	@$(BIN)/python scripts/e2e_events.py
