# Two entry points: `make run` starts the example app, `make test` runs every check.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint typecheck docs bench system-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.run-installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.test-installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install --quiet -e '.[test,docs]'
	touch $@ $(VENV)/.run-installed

run: $(VENV)/.run-installed
	$(BIN)/flask --app example_app run --port $${PORT:-5000}

# redis-server is needed by the Redis store tests; installed from the system packages if missing.
system-deps:
	@{ command -v redis-server && command -v curl; } >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq redis-server curl >/dev/null; }
	@command -v redis-server >/dev/null 2>&1 || { echo "redis-server is required for the tests"; exit 1; }

lint: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check flask_voxcallbacks

typecheck: $(VENV)/.test-installed
	$(BIN)/mypy --strict flask_voxcallbacks

test: system-deps lint typecheck docs
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache

docs: $(VENV)/.test-installed
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html

bench: system-deps $(VENV)/.test-installed
	$(BIN)/python benchmarks/throughput.py
