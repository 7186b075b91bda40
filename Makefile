# meterhub: `make demo` and `make test` do all set-up on a fresh Debian 12/13 machine (as root).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
VENV := .venv
MHUB := $(VENV)/bin/meterhub
PYTEST_ARGS ?=

.PHONY: help install services demo stop test test-all reliability soak lint format bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/'

install:  ## virtualenv in .venv with meterhub and its dev tools (console script .venv/bin/meterhub)
	@bash deploy/bootstrap.sh

services: install  ## install and start PostgreSQL+TimescaleDB and Mosquitto, apply migrations
	@$(MHUB) services up
	@$(MHUB) db migrate

demo: services  ## set up everything and run the demo (API on MHUB_API_PORT, default 8000)
	@bash deploy/browser.sh
	@bash deploy/demo.sh start

stop:  ## stop the demo and the local services
	@bash deploy/demo.sh stop
	@$(MHUB) services down

lint: install  ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

format: install  ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: services lint  ## lint, then the test suite (bounded soak/fuzz) against the real services
	@bash deploy/browser.sh
	$(VENV)/bin/pytest -m "not slow" $(PYTEST_ARGS)

test-all: services lint  ## everything, including the long soak and fuzz runs
	@bash deploy/browser.sh
	$(VENV)/bin/pytest $(PYTEST_ARGS)

reliability: services  ## the fault suite at full length: a table of readings per scenario, a JSON line
	$(VENV)/bin/pytest tests/reliability -q $(PYTEST_ARGS)

SOAK_ARGS ?=
soak: services  ## 10,000 terminals through every path for 30 min (SOAK_ARGS="--terminals N --minutes M")
	$(VENV)/bin/python bench/soak.py $(SOAK_ARGS)

BENCH_ARGS ?=
bench: services  ## the benchmarks (BENCH_ARGS=--quick for a short run); see README Performance
	@for b in ingest backfill api collect alerts; do echo "== bench/$$b.py"; $(VENV)/bin/python bench/$$b.py $(BENCH_ARGS) || exit 1; done

clean:  ## stop everything and delete .venv, .run and caches
	-@bash deploy/demo.sh stop 2>/dev/null
	-@[ -x $(MHUB) ] && $(MHUB) services down
	rm -rf $(VENV) .run .mypy_cache .ruff_cache .pytest_cache .hypothesis build dist *.egg-info
