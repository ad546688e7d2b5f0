# the_flip: `make run` to use it, `make test` to check it. Both set up what is missing first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
PORT ?= 8000
DATA_DIR ?= $(CURDIR)/data
ROLE ?= all
export PORT DATA_DIR ROLE
export PATH := $(BIN):$(PATH)

MANAGE := $(BIN)/python manage.py

.PHONY: help install ffmpeg nginx axe setup role run web worker test lint format bench clean

help:
	@echo "make run     set up what is missing, then serve http://127.0.0.1:$(PORT) (web + worker)"
	@echo "             ROLE=web make run: only the web (nginx + gunicorn); ROLE=worker: only the worker"
	@echo "make test    set up what is missing, then run the linters and the whole test suite"
	@echo "make web     = ROLE=web make run;  make worker   = ROLE=worker make run"
	@echo "make format  apply ruff's formatting and safe fixes"

# The virtualenv is rebuilt when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	@touch $@

install: $(VENV)/.installed ffmpeg nginx

# $(call system_package,PACKAGE,TEST): nothing when the shell TEST passes; else, as root with
# apt-get, install PACKAGE; else say how to install it.
define system_package
	@if $(2); then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing $(1) with apt-get..."; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(1); \
	else \
		echo "$(1) is missing. Install it: sudo apt-get install $(1) (Debian/Ubuntu), brew install $(1) (macOS)."; \
		exit 1; \
	fi
endef

ffmpeg:
	$(call system_package,ffmpeg,command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null)

# nginx sits in front of gunicorn (deploy/nginx.conf); Debian installs it in /usr/sbin.
nginx:
	$(call system_package,nginx,command -v nginx >/dev/null || [ -x /usr/sbin/nginx ])

# axe-core for the browser tests' accessibility check, when npm is here (else those skip).
AXE_JS := tests/browser/.axe/node_modules/axe-core/axe.min.js
axe:
	@[ -s $(AXE_JS) ] || ! command -v npm >/dev/null || \
		npm install --prefix tests/browser/.axe --no-audit --no-fund --silent axe-core@4

# An unknown ROLE is refused before anything else happens.
role:
	@deploy/start --check

# Database tables, queue tables, static files and a secret key that stays in DATA_DIR.
setup: role install
	@mkdir -p "$(DATA_DIR)"
	@[ -s "$(DATA_DIR)/secret_key" ] || $(BIN)/python -c "import secrets; print(secrets.token_urlsafe(50))" > "$(DATA_DIR)/secret_key"
	@chmod 600 "$(DATA_DIR)/secret_key"
	@$(MANAGE) migrate --noinput -v0
	@$(MANAGE) setup_queue -v0
	@$(MANAGE) collectstatic --noinput -v0
	@$(MANAGE) check_ffmpeg >/dev/null

# deploy/start runs what ROLE names: all (nginx, gunicorn, worker under supervisord), web
# (nginx, gunicorn) or worker (the worker alone). Ctrl-C stops it.
run: setup
	@[ "$(ROLE)" = worker ] || echo "the_flip on http://127.0.0.1:$(PORT)  (first time? $(VENV)/bin/python manage.py createsuperuser)"
	exec deploy/start

web:
	@$(MAKE) --no-print-directory run ROLE=web

worker:
	@$(MAKE) --no-print-directory run ROLE=worker

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The whole suite on SQLite; then, when TEST_DATABASE_URL names a PostgreSQL database (.ci/run
# sets it), again on PostgreSQL, minus what never touches Django's database (the pure
# pipeline tests, the container and the live stacks (`own_database`), which keep their own
# SQLite), the `postgres` tests (they bring their own server and ran already) and the `bucket`
# tests: media in an S3 bucket is a focused subset that ran in the first pass
# (tests/test_roles.py: on PostgreSQL already).
test: setup axe lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	@if [ -n "$$TEST_DATABASE_URL" ]; then \
		echo "== again with DATABASE_URL=$$TEST_DATABASE_URL"; \
		DATABASE_URL="$$TEST_DATABASE_URL" $(BIN)/python -m pytest -p no:cacheprovider \
			--ignore=tests/pipeline -m "not postgres and not docker and not bucket and not own_database" $(PYTEST_ARGS); \
	fi

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
