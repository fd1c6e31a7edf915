# make run   : install what is needed, migrate, serve on http://127.0.0.1:$(PORT)
# make test  : the whole suite on PostgreSQL + Redis (throwaway servers), then on SQLite + in-process broker
# make bench : the SSE load benchmark (see bench/README.md)
# make screenshots : docs/screenshots/*.png, the main pages at 375 and 1280 px, light and dark
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
export FLASK_APP := wsgi

.PHONY: run test test-services test-embedded lint bench clean screenshots

$(BIN)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	touch $@

run: $(BIN)/.installed
	CHATROOM_ENV=$${CHATROOM_ENV:-development} $(BIN)/flask db upgrade
	CHATROOM_ENV=$${CHATROOM_ENV:-development} HOST=$${HOST:-127.0.0.1} PORT=$(PORT) WEB_CONCURRENCY=$${WEB_CONCURRENCY:-1} \
		$(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

test: $(BIN)/.installed
	tests/run.sh

lint: $(BIN)/.installed
	$(BIN)/ruff check chatroom tests bench config.py wsgi.py gunicorn.conf.py
	$(BIN)/ruff format --check chatroom tests bench config.py wsgi.py gunicorn.conf.py
	$(BIN)/mypy chatroom

bench: $(BIN)/.installed
	bench/run.sh

clean:
	rm -rf $(VENV) .services instance .pytest_cache

screenshots: $(BIN)/.installed
	$(BIN)/python tests/screenshots.py
