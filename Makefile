# make run         : install the runtime set, migrate, serve on http://127.0.0.1:$(PORT)
# make test        : the whole suite on PostgreSQL + Redis (throwaway servers), then on SQLite + in-process broker
# make lint        : ruff (lint and format check), mypy, and the import contracts of chatroom/ (lint-imports)
# make format      : ruff check --fix, then ruff format (fixes first: the formatter has the last word)
# make bench       : the SSE load benchmark (see bench/README.md)
# make screenshots : docs/screenshots/*.png, the main pages at 375 and 1280 px, light and dark
# make assets      : static/js/min/*.js, our scripts minified by terser (run after editing static/js/*.js)
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

.PHONY: run test lint format bench screenshots assets clean

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

# Each minified file starts with the SHA-256 of its source; chatroom/assets.py serves it only while that still
# matches (else the source, slimmed) and tests/test_assets.py fails, so a stale file is never served or committed.
TERSER := tests/node_modules/.bin/terser
$(TERSER): tests/package-lock.json
	cd tests && npm ci --no-audit --no-fund --loglevel=error
	touch $@

assets: $(TERSER)
	mkdir -p static/js/min
	for source in static/js/*.js; do \
		name=$$(basename $$source); \
		{ echo "/* sha256 $$(sha256sum $$source | cut -d' ' -f1) */"; \
		  $(TERSER) $$source --compress --mangle --ecma 2020 --comments false; echo; } > static/js/min/$$name; \
	done

clean:
	rm -rf $(VENV) .services instance .pytest_cache .ruff_cache .mypy_cache .import_linter_cache
