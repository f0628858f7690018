# The commands the README names. Each one creates what it needs (.venv, packages) first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=
ASL_VALIDATOR_VERSION := 4.0.0

.PHONY: install test test-scale test-fast lint format demo synth bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[infra,dev,report]"
	# npm tools the tests use: the ASL validator checks the state machine definition.
	npm install --silent --no-audit --no-fund --prefix $(VENV)/npm asl-validator@$(ASL_VALIDATOR_VERSION)
	touch $(STAMP)

## make test: the whole suite (unit, functional on moto, infra, local end to end).
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: the suite is broken"; exit 1; fi; exit $$rc

## make test-scale: the tests of thousands of groups (minutes each; not in make test).
test-scale: $(STAMP)
	$(BIN)/python -m pytest -m scale -rA $(PYTEST_ARGS)

## make test-fast: the unit tier only (no network, seconds).
test-fast: $(STAMP)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## make demo: the best real job the project can run on one machine.
demo: $(STAMP)
	$(BIN)/python examples/demo.py

## make synth: write cdk.out/ with no AWS credentials and no Docker.
synth: $(STAMP)
	$(BIN)/python -m infra.app

bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf cdk.out .pytest_cache .mypy_cache .ruff_cache build/demo
