# Two commands for a fresh machine: `make run` and `make test`. Everything else is optional.
# `make` alone lists the targets: each public one has a `## ` line right above it.
SHELL := /bin/bash
.DEFAULT_GOAL := help
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
# The key of the tags on cache entries and verification replies: the same for both services.
$(DISTRIBUTED): export REDIS_SIGNING_KEY ?= dev-redis-signing-key-change-me-0123456789
# The machine's Redis as it usually runs for development: no password, no TLS. Set
# REDIS_USERNAME / REDIS_PASSWORD (and REDIS_SSL=true, REDIS_SSL_CA_CERTS) for a secured one.
$(DISTRIBUTED): export REDIS_USERNAME ?=
$(DISTRIBUTED): export REDIS_PASSWORD ?=
$(DISTRIBUTED): export REDIS_SSL ?= false
$(DISTRIBUTED): export REDIS_SSL_CA_CERTS ?=
# The targets apply migrations before the server starts, as the images do.
$(DISTRIBUTED): export MIGRATE_ON_START ?= false
# The order service's docs, opened in a browser on this machine, log in at the user service:
# its login URL for the browser, and the user service lets those pages call it (CORS).
DEV_USER_SERVICE_URL ?= http://127.0.0.1:8001
DEV_ORDER_SERVICE_ORIGINS ?= http://127.0.0.1:8002,http://localhost:8002

.PHONY: help run test lint format run-user-service run-order-service dev-databases clean

## This list of targets (also what `make` alone prints)
help:
	@echo "make TARGET, one of:"
	@awk '/^## / { doc = substr($$0, 4); next } \
	     /^[a-z][a-z0-9-]*:/ { if (doc != "") { split($$1, name, ":"); printf "  %-18s %s\n", name[1], doc } } \
	     { doc = "" }' $(firstword $(MAKEFILE_LIST))

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
	$(BIN)/uvicorn app.main:app --host $(HOST) --port $(PORT) --no-access-log --log-config servicekit/uvicorn-logging.json

## Distributed: the User Service on :8001 (migrations first, as in its image)
run-user-service: PORT ?= 8001
run-user-service: export DATABASE_URL ?= $(DEV_DATABASE_BASE)/user_service
run-user-service: export CORS_ALLOW_ORIGINS ?= $(DEV_ORDER_SERVICE_ORIGINS)
run-user-service: $(STAMP)
	$(BIN)/python -m user_service.migrate
	$(BIN)/uvicorn user_service.main:app --host $(HOST) --port $(PORT) --no-access-log --log-config servicekit/uvicorn-logging.json

## Distributed: the Order Service on :8002 (migrations first, as in its image)
run-order-service: PORT ?= 8002
run-order-service: export DATABASE_URL ?= $(DEV_DATABASE_BASE)/order_service
run-order-service: export USER_SERVICE_URL ?= $(DEV_USER_SERVICE_URL)
run-order-service: export PUBLIC_TOKEN_URL ?= $(DEV_USER_SERVICE_URL)/auth/token
run-order-service: $(STAMP)
	$(BIN)/python -m order_service.migrate
	$(BIN)/uvicorn order_service.main:app --host $(HOST) --port $(PORT) --no-access-log --log-config servicekit/uvicorn-logging.json

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

## The whole suite: unit, integration, contract, faults, fuzz, browser, deploy files offline
test: $(STAMP) $(TOOLS_STAMP)
	$(BIN)/pytest

## ruff check, ruff format --check, mypy (strict), import contracts
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports

## ruff format and ruff check --fix, in place
format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Remove the virtual environment, ./data, test artifacts and tool caches
clean:
	rm -rf $(VENV) $(TOOLS_VENV) data test-artifacts .pytest_cache .mypy_cache .ruff_cache

# Benchmarks (never part of `make test`): `make bench`, `make bench-quick`, `make bench ARGS=...`
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP) bench/requirements.txt
	$(BIN)/python -m pip install --quiet -r bench/requirements.txt
	touch $(BENCH_STAMP)

.PHONY: bench bench-quick
## Benchmarks, the full run (docs/benchmarks.md); options: ARGS=...
bench: $(BENCH_STAMP)
	$(BIN)/python -m bench $(ARGS)

## Benchmarks, a short run to try the suite
bench-quick: $(BENCH_STAMP)
	$(BIN)/python -m bench --quick $(ARGS)
