# The commands people type. CI runs `CMDB_REQUIRE_NEO4J=1 make test` (see .ci/run).
SHELL := bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help setup run demo test test-fast lint format neo4j neo4j-stop bench bench-full clean

help:
	@echo "make run         set up, load the demo topology into ./.cmdb and show it"
	@echo "make test        set up, start Neo4j (scripts/neo4j.sh), lint, run every test"
	@echo "make lint        ruff, mypy --strict, import-linter"
	@echo "make neo4j       start a local Neo4j 5.26 Community server (jars from Maven Central)"
	@echo "make neo4j-stop  stop it"
	@echo "make bench       quick benchmark (100k CIs); make bench-full for 1M CIs"

# Reinstall when pyproject.toml changes.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/cmdb demo

# Until the GraphQL API lands, "the service" is the CLI: load the demo and show a CI.
run: demo
	@echo; $(BIN)/cmdb show svc-shop

neo4j:
	@bash scripts/neo4j.sh start

neo4j-stop:
	@bash scripts/neo4j.sh stop

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy graph impact importers api benchmarks
	$(BIN)/lint-imports

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Neo4j tests find the server themselves (tests/conftest.py); starting it here first makes
# a failure to start visible before the suite runs.
test: setup
	@bash scripts/neo4j.sh start || [ "$${CMDB_REQUIRE_NEO4J:-0}" != 1 ]
	$(MAKE) --no-print-directory lint
	$(BIN)/pytest -q -p no:cacheprovider --cov --cov-report=term:skip-covered

test-fast: setup
	$(BIN)/pytest -q -p no:cacheprovider -m "not neo4j and not slow"

# bench: 100k CIs, every peer including Neo4j, five warm runs of each measure (the minutes it
# takes are in docs/benchmarks.md). CMDB_BENCH_NEO4J=0 leaves Neo4j out.
bench: setup
	@uri=$$(bash scripts/neo4j.sh start) || echo "bench: no Neo4j server; its peers will say skipped"; \
	NEO4J_URI="$${NEO4J_URI:-$${uri:-bolt://127.0.0.1:7687}}" $(BIN)/python -m benchmarks --size 100000

bench-full: setup
	@uri=$$(bash scripts/neo4j.sh start) || echo "bench: no Neo4j server; its peers will say skipped"; \
	NEO4J_URI="$${NEO4J_URI:-$${uri:-bolt://127.0.0.1:7687}}" $(BIN)/python -m benchmarks --size 1000000 --full

clean:
	rm -rf .cmdb .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov
