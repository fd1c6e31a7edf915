# make run         : install the runtime set, migrate, serve on http://127.0.0.1:$(PORT)
# make test        : the whole suite on PostgreSQL + Redis (throwaway servers), then on SQLite + in-process broker
# make lint        : ruff (lint and format check), mypy, and the import contracts of chatroom/ (lint-imports)
# make format      : ruff check --fix, then ruff format (fixes first: the formatter has the last word)
# make bench       : the SSE load benchmark (see bench/README.md)
# make screenshots : docs/screenshots/*.png, the main pages at 375 and 1280 px, light and dark
# make clean       : remove the virtualenv, the throwaway services' data, the SQLite instance and caches
#
# requirements.txt is what a PaaS dyno installs (runtime only); requirements-dev.txt adds tests and tooling.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
PY_SOURCES := chatroom tests bench config.py wsgi.py gunicorn.conf.py
export FLASK_APP := wsgi

.PHONY: run test lint format bench screenshots clean

# One stamp per set: each is rebuilt when one of the files it installs from changes.
$(BIN)/.installed-runtime: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(BIN)/.installed-dev: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

run: $(BIN)/.installed-runtime
	CHATROOM_ENV=$${CHATROOM_ENV:-development} $(BIN)/flask db upgrade
	CHATROOM_ENV=$${CHATROOM_ENV:-development} HOST=$${HOST:-127.0.0.1} PORT=$(PORT) WEB_CONCURRENCY=$${WEB_CONCURRENCY:-1} \
		$(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

test: $(BIN)/.installed-dev
	tests/run.sh

lint: $(BIN)/.installed-dev
	$(BIN)/ruff check $(PY_SOURCES)
	$(BIN)/ruff format --check $(PY_SOURCES)
	$(BIN)/mypy chatroom
	$(BIN)/lint-imports

format: $(BIN)/.installed-dev
	$(BIN)/ruff check --fix $(PY_SOURCES)
	$(BIN)/ruff format $(PY_SOURCES)

bench: $(BIN)/.installed-runtime
	bench/run.sh

screenshots: $(BIN)/.installed-dev
	$(BIN)/python tests/screenshots.py

clean:
	rm -rf $(VENV) .services instance .pytest_cache .ruff_cache .mypy_cache .import_linter_cache
