# the_flip: `make run` to use it, `make test` to check it. Both set up what is missing first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
PORT ?= 8000
DATA_DIR ?= $(CURDIR)/data
export PORT DATA_DIR
export PATH := $(BIN):$(PATH)

MANAGE := $(BIN)/python manage.py

.PHONY: help install ffmpeg axe setup run web worker test lint format bench clean

help:
	@echo "make run     set up what is missing, then serve http://127.0.0.1:$(PORT) (web + worker)"
	@echo "make test    set up what is missing, then run the linters and the whole test suite"
	@echo "make web     only the web (gunicorn);  make worker   only the huey consumer"
	@echo "make format  apply ruff's formatting and safe fixes"

# The virtualenv is rebuilt when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	@touch $@

install: $(VENV)/.installed ffmpeg

ffmpeg:
	@if command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing ffmpeg with apt-get..."; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ffmpeg; \
	else \
		echo "ffmpeg is missing. Install it: sudo apt-get install ffmpeg (Debian/Ubuntu), brew install ffmpeg (macOS)."; \
		exit 1; \
	fi

# axe-core for the browser tests' accessibility check, when npm is here (else those skip).
AXE_JS := tests/browser/.axe/node_modules/axe-core/axe.min.js
axe:
	@[ -s $(AXE_JS) ] || ! command -v npm >/dev/null || \
		npm install --prefix tests/browser/.axe --no-audit --no-fund --silent axe-core@4

# Database tables, queue tables, static files and a secret key that stays in DATA_DIR.
setup: install
	@mkdir -p "$(DATA_DIR)"
	@[ -s "$(DATA_DIR)/secret_key" ] || $(BIN)/python -c "import secrets; print(secrets.token_urlsafe(50))" > "$(DATA_DIR)/secret_key"
	@chmod 600 "$(DATA_DIR)/secret_key"
	@$(MANAGE) migrate --noinput -v0
	@$(MANAGE) setup_queue -v0
	@$(MANAGE) collectstatic --noinput -v0
	@$(MANAGE) check_ffmpeg >/dev/null

run: setup
	@echo "the_flip on http://127.0.0.1:$(PORT)  (first time? $(VENV)/bin/python manage.py createsuperuser)"
	exec $(BIN)/supervisord --configuration deploy/supervisord.conf

web: setup
	exec $(BIN)/gunicorn --config deploy/gunicorn.conf.py the_flip.wsgi:application

worker: setup
	exec $(MANAGE) run_worker --max-tasks 0

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The whole suite on SQLite; then, when TEST_DATABASE_URL names a PostgreSQL database (.ci/run
# sets it), again on PostgreSQL, minus what never touches Django's database (the pure
# pipeline tests, the container, which keeps its own SQLite), the `postgres` tests (they
# bring their own server and ran already) and the `bucket` tests: media in an S3 bucket is a
# focused subset that ran in the first pass (tests/test_roles.py: on PostgreSQL already).
test: setup axe lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	@if [ -n "$$TEST_DATABASE_URL" ]; then \
		echo "== again with DATABASE_URL=$$TEST_DATABASE_URL"; \
		DATABASE_URL="$$TEST_DATABASE_URL" $(BIN)/python -m pytest -p no:cacheprovider \
			--ignore=tests/pipeline -m "not postgres and not docker and not bucket" $(PYTEST_ARGS); \
	fi

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
