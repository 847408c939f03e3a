# Everything a fresh machine needs: `make up` starts the line, `make test` checks it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
STATE ?= .state
SIZE ?= small

.PHONY: install up down seed test lint format typecheck clean

install: $(INSTALLED)

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

up: $(INSTALLED)
	$(BIN)/serviceline up --state-dir $(STATE) --size $(SIZE)

down: $(INSTALLED)
	$(BIN)/serviceline down --state-dir $(STATE)

seed: $(INSTALLED)
	$(BIN)/serviceline seed --size $(SIZE)

lint: $(INSTALLED)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: $(INSTALLED)
	$(BIN)/mypy serviceline services stubs systems tests

test: lint typecheck
	$(BIN)/python -m pytest

format: $(INSTALLED)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) $(STATE) .mypy_cache .ruff_cache .pytest_cache test-output
