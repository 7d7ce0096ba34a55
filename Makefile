# The README's two commands: `make run` (install, fetch weights, start the app) and
# `make test` (install + test dependencies, fetch weights, run the whole suite). `.ci/run` calls `make test`.
# `make test-fast` is the tier to run while working: ruff, then the engines and the API (no browser,
# no soak, nothing marked slow), in about a minute.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test test-fast lint install install-test weights bench clean screenshots

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.installed: requirements.txt | $(PY)
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.installed-test: requirements-dev.txt $(VENV)/.installed
	$(PY) -m pip install -q -r requirements-dev.txt
	command -v chromium >/dev/null || ($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium)
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

weights: install
	$(PY) -m weights fetch
	$(PY) -m web fetch

run: weights
	$(PY) app.py

test: install-test weights
	$(PY) -m pytest

lint: install-test
	$(PY) -m ruff check .

test-fast: lint weights
	$(PY) -m pytest -q -m "not browser and not soak and not slow"

bench: weights
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache tests/artifacts

# Refresh the README's screenshots (docs/screenshot-*.png) from the browser tests.
screenshots: install-test weights
	ATELIER_UPDATE_SCREENSHOTS=1 $(PY) -m pytest -m browser
