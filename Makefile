# One entry point for people and CI. Only python3 (3.11+) with venv and pip is needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install install-dev demo run simulate test lint typecheck check bench lock clean \
	catalogs-extract catalogs-update catalogs-compile

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python  ## runtime dependencies from the hashed lock (the code runs from the checkout)
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(MAKE) --no-print-directory catalogs-compile

install-dev: $(BIN)/python  ## runtime + test/lint tools
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	$(MAKE) --no-print-directory catalogs-compile

demo: install  ## the playground: the bot in a web chat on http://127.0.0.1:8080, nothing to configure
	$(BIN)/python -m bot demo $(DEMO_ARGS)

run: install  ## start the bot in the foreground (long polling by default)
	$(BIN)/python -m bot

simulate: install  ## a local SMSC simulator on 127.0.0.1:8081 (demo/demo)
	$(BIN)/python -m bot simulate-smsc --port 8081

test: install-dev  ## the whole check: lint, types, tests
	$(BIN)/ruff check bot handlers storage tests bench
	$(BIN)/ruff format --check bot handlers storage tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest

bench: install-dev
	$(BIN)/python -m bench

LOCALES := bot/locales

catalogs-extract:  ## collect every translatable text into bot/locales/messages.pot
	$(BIN)/pybabel -q extract -F babel.cfg -k N_ -c "Translators:" \
		--no-location --sort-output --project smsc-tasks-bot -o $(LOCALES)/messages.pot .

catalogs-update: catalogs-extract  ## merge the template into the ru and en .po files
	$(BIN)/pybabel -q update -i $(LOCALES)/messages.pot -d $(LOCALES) --no-fuzzy-matching --ignore-obsolete

catalogs-compile:  ## build the .mo files the bot loads (not committed; make install runs this)
	$(BIN)/pybabel -q compile --statistics -d $(LOCALES) 2>&1 | grep -v "^$$" || true
	@test -f $(LOCALES)/ru/LC_MESSAGES/messages.mo && test -f $(LOCALES)/en/LC_MESSAGES/messages.mo

lock:  ## re-pin after editing pyproject.toml (needs uv)
	uv pip compile pyproject.toml --generate-hashes --python-version 3.11 -o requirements.lock
	uv pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 -o requirements-dev.lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
