# Everything a fresh machine needs: `make up` starts the line, `make test` checks it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
STATE ?= .state
SIZE ?= small
# what also runs on PostgreSQL: every kernel path (feed, copier, its logs and the lag measured
# from them, checksums, drift auditor), the test plugin's database backend, one end-to-end chain
# and concurrent writers over real HTTP; one fresh database per service
POSTGRES_TESTS := tests/runtime/test_postgres.py tests/owner/test_feed.py tests/consumer/test_copier.py \
	tests/runtime/test_routes.py tests/audit/test_lag.py tests/audit/test_checksums.py tests/audit/test_drift.py \
	tests/e2e/test_copy_chain.py tests/e2e/test_concurrency.py
# prepares the Docker engine and the base images where no registry is reachable (root only)
STANDIN_IMAGES ?= ../shared/tools/standin-images
# the dashboard's browser tests drive Debian's Chromium; Playwright never downloads a browser
CHROMIUM := /usr/bin/chromium
# the Prometheus end-to-end test runs Debian's Prometheus against a native line
PROMETHEUS := /usr/bin/prometheus

.PHONY: install up down seed test test-postgres bench compose compose-smoke lint format typecheck clean

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
	$(BIN)/mypy serviceline lines tests bench

# the whole suite on SQLite, then the PostgreSQL part; the compose smoke test runs on its own
test: lint typecheck $(CHROMIUM) $(PROMETHEUS)
	$(BIN)/python -m pytest
	$(MAKE) test-postgres

$(CHROMIUM):
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-liberation

$(PROMETHEUS):
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus

test-postgres: $(INSTALLED)
	$(BIN)/python -m pytest --database postgresql $(POSTGRES_TESTS)

# speed and memory, each benchmark printing its table; never part of `make test`
bench: $(INSTALLED)
	$(BIN)/python bench/bench_copy.py
	$(BIN)/python bench/bench_drift_audit.py
	$(BIN)/python bench/bench_follow.py
	$(BIN)/python bench/bench_seed.py

# docker-compose.yml and the PostgreSQL init script, written again from the topology
compose: $(INSTALLED)
	$(BIN)/serviceline compose

compose-smoke: $(INSTALLED)
	if [ -e $(STANDIN_IMAGES) ]; then $(STANDIN_IMAGES); fi
	$(BIN)/python -m pytest --compose tests/e2e/test_compose_smoke.py tests/e2e/test_compose_declared.py

format: $(INSTALLED)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) $(STATE) .mypy_cache .ruff_cache .pytest_cache test-output
