# Two commands for a fresh machine: `make run` and `make test`. Everything else is optional.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The deployment checks' tools (checkov, kubernetes-validate), apart from the project's pins.
TOOLS_VENV := .venv-tools
TOOLS_STAMP := $(TOOLS_VENV)/.installed
HOST ?= 127.0.0.1

# Distributed deployment, without Docker: development defaults, each overridable from the
# environment or the command line (`make run-user-service PORT=9001`).
PG_HOST ?= 127.0.0.1
PG_PORT ?= 5432
PG_USER ?= postgres
DEV_DATABASE_BASE ?= postgresql+asyncpg://$(PG_USER)@$(PG_HOST):$(PG_PORT)
DISTRIBUTED := run-user-service run-order-service
$(DISTRIBUTED): export REDIS_HOST ?= 127.0.0.1
$(DISTRIBUTED): export REDIS_PORT ?= 6379
$(DISTRIBUTED): export INTERNAL_API_TOKEN ?= dev-internal-token-change-me
# The targets apply migrations before the server starts, as the images do.
$(DISTRIBUTED): export MIGRATE_ON_START ?= false

.PHONY: run test lint format typecheck imports run-user-service run-order-service dev-databases clean

$(STAMP): requirements.txt requirements-dev.txt user_service/requirements.txt order_service/requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

$(TOOLS_STAMP): requirements-tools.txt
	test -x $(TOOLS_VENV)/bin/python || $(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install --quiet -r requirements-tools.txt
	touch $(TOOLS_STAMP)

## Single process on http://127.0.0.1:8000, SQLite files in ./data
run: PORT ?= 8000
run: $(STAMP)
	$(BIN)/uvicorn app.main:app --host $(HOST) --port $(PORT) --no-access-log

## Distributed: the User Service on :8001 (migrations first, as in its image)
run-user-service: PORT ?= 8001
run-user-service: export DATABASE_URL ?= $(DEV_DATABASE_BASE)/user_service
run-user-service: $(STAMP)
	$(BIN)/python -m user_service.migrate
	$(BIN)/uvicorn user_service.main:app --host $(HOST) --port $(PORT) --no-access-log

## Distributed: the Order Service on :8002 (migrations first, as in its image)
run-order-service: PORT ?= 8002
run-order-service: export DATABASE_URL ?= $(DEV_DATABASE_BASE)/order_service
run-order-service: export USER_SERVICE_URL ?= http://127.0.0.1:8001
run-order-service: $(STAMP)
	$(BIN)/python -m order_service.migrate
	$(BIN)/uvicorn order_service.main:app --host $(HOST) --port $(PORT) --no-access-log

## The two development databases on the local Postgres (user_service, order_service), if missing
dev-databases:
	@for db in user_service order_service; do \
	  if psql -h $(PG_HOST) -p $(PG_PORT) -U $(PG_USER) -d postgres -tAc \
	       "SELECT 1 FROM pg_database WHERE datname = '$$db'" | grep -q 1; then \
	    echo "database $$db: exists"; \
	  else \
	    createdb -h $(PG_HOST) -p $(PG_PORT) -U $(PG_USER) $$db && echo "database $$db: created"; \
	  fi; \
	done

## The whole suite: unit, integration (real SQLite, Postgres, Redis), contract, faults, and the
## deployment files checked offline (tests/deploy/: kubectl kustomize, checkov, schemas)
test: $(STAMP) $(TOOLS_STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) $(TOOLS_VENV) data .pytest_cache .mypy_cache .ruff_cache

## Benchmarks (never part of `make test`): `make bench`, `make bench-quick`, `make bench ARGS=...`
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP) bench/requirements.txt
	$(BIN)/python -m pip install --quiet -r bench/requirements.txt
	touch $(BENCH_STAMP)

.PHONY: bench bench-quick
bench: $(BENCH_STAMP)
	$(BIN)/python -m bench $(ARGS)

bench-quick: $(BENCH_STAMP)
	$(BIN)/python -m bench --quick $(ARGS)
