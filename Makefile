# Two entry points: `make run` starts the example app, `make test` runs every check.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run run-queue test test-fast test-matrix lint typecheck docs bench bench-deps chaos fuzz fuzz-smoke mutation mutation-resume system-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.run-installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.test-installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install --quiet -e '.[test,docs,fuzz]'
	touch $@ $(VENV)/.run-installed

run: $(VENV)/.run-installed
	$(BIN)/flask --app example_app run --port $${PORT:-5000}

# The example app in queue mode: QUEUE=rq (default) or QUEUE=celery; a private Redis server,
# one worker and the app, stopped together by Ctrl-C.
QUEUE ?= rq
$(VENV)/.queue-installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install --quiet -e '.[redis,celery,rq]'
	touch $@ $(VENV)/.run-installed

run-queue: system-deps $(VENV)/.queue-installed
	$(BIN)/python -m example_app.run_queue --engine $(QUEUE)

# redis-server (the Redis store tests), postgresql (the PostgreSQL store tests start their own
# cluster with its initdb and pg_ctl) and prometheus with promtool (the metrics tests), from the
# system packages when missing.
PG_INITDB = ls /usr/lib/postgresql/*/bin/initdb
system-deps:
	@{ command -v redis-server && command -v curl && command -v promtool && $(PG_INITDB); } >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq redis-server curl prometheus postgresql >/dev/null; }
	@command -v redis-server >/dev/null 2>&1 || { echo "redis-server is required for the tests"; exit 1; }
	@command -v promtool >/dev/null 2>&1 || { echo "prometheus is required for the tests"; exit 1; }
	@$(PG_INITDB) >/dev/null 2>&1 || { echo "postgresql is required for the tests"; exit 1; }

lint: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check flask_voxcallbacks

typecheck: $(VENV)/.test-installed
	$(BIN)/mypy --strict flask_voxcallbacks example_app docs/examples

test: system-deps lint typecheck docs fuzz-smoke
	$(BIN)/python -m pytest

# The test matrix of noxfile.py: every supported Python, the lowest and the newest dependencies,
# the source distribution. Run by CI after `make test`.
test-matrix: system-deps $(VENV)/.test-installed
	$(BIN)/pip install --quiet 'nox>=2025.2'
	$(BIN)/nox --non-interactive

# Every test that starts no server and no other process, in about a minute, with the linters.
test-fast: lint typecheck
	$(BIN)/python -m pytest -q -m "not server"

# Coverage-guided fuzzing of parse -> authenticate -> build (tests/fuzz_parse_authenticate.py).
# New inputs go to .fuzz/corpus, crashes to .fuzz/; copy a crash into tests/fuzz_corpus/ to keep
# it as a regression test.
FUZZ_SECONDS ?= 600
FUZZ = cd tests && ../$(BIN)/python fuzz_parse_authenticate.py ../.fuzz/corpus fuzz_corpus \
	-dict=fuzz_parse_authenticate.dict -timeout=10 -artifact_prefix=../.fuzz/ -print_final_stats=1

fuzz: $(VENV)/.test-installed
	mkdir -p .fuzz/corpus
	$(FUZZ) -max_total_time=$(FUZZ_SECONDS)

fuzz-smoke: $(VENV)/.test-installed
	mkdir -p .fuzz/corpus
	$(FUZZ) -max_total_time=20 >$(CURDIR)/.fuzz/smoke.log 2>&1 \
	  || { tail -n 40 $(CURDIR)/.fuzz/smoke.log; exit 1; }
	@tail -n 1 .fuzz/smoke.log

# Mutation testing of the security and delivery modules ([tool.mutmut] in pyproject.toml): the
# score of each module and every surviving mutant. Not part of `make test`: it takes a while.
# tests/mutation_run.py is `mutmut run` with one allowance, explained in its docstring.
mutation: system-deps $(VENV)/.test-installed
	$(BIN)/pip install --quiet -e '.[mutation]'
	rm -rf mutants
	$(BIN)/python tests/mutation_run.py --max-children 8 >.mutation.log 2>&1 \
	  || { tail -n 40 .mutation.log; exit 1; }
	$(BIN)/python tests/mutation_report.py

# The same, going on from the results of an earlier run in mutants/: mutmut runs the mutants
# that have no result yet, and again those of every function changed since.
mutation-resume: system-deps $(VENV)/.test-installed
	$(BIN)/pip install --quiet -e '.[mutation]'
	$(BIN)/python tests/mutation_run.py --max-children 8 >>.mutation.log 2>&1 \
	  || { tail -n 40 .mutation.log; exit 1; }
	$(BIN)/python tests/mutation_report.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .fuzz mutants .mutation.log

docs: $(VENV)/.test-installed
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html

# The load generator of benchmarks/over_http.py, from the system's packages when missing.
bench-deps: system-deps
	@command -v wrk >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq wrk >/dev/null; }

# Every benchmark runs even when one misses a target; the status says whether all held.
bench: bench-deps $(VENV)/.test-installed
	@status=0; \
	$(BIN)/python benchmarks/inprocess.py || status=1; \
	$(BIN)/python benchmarks/over_http.py || status=1; \
	$(BIN)/python benchmarks/hostile.py || status=1; \
	$(BIN)/python benchmarks/queue_latency.py || status=1; \
	exit $$status

# The chaos soak (benchmarks/chaos.py): workers SIGKILLed while callbacks arrive and are
# redelivered; what was lost and what ran twice, per store and mode. Not part of `make test`
# (it is a measurement, a few minutes long); a short soak is.
chaos: system-deps $(VENV)/.test-installed
	$(BIN)/python benchmarks/chaos.py
