# One entry point for people and CI. Only python3 (3.11+) with venv and pip is needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install install-dev demo run simulate test lint typecheck check bench lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python  ## runtime dependencies from the hashed lock (the code runs from the checkout)
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock

install-dev: $(BIN)/python  ## runtime + test/lint tools
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock

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

lock:  ## re-pin after editing pyproject.toml (needs uv)
	uv pip compile pyproject.toml --generate-hashes --python-version 3.11 -o requirements.lock
	uv pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 -o requirements-dev.lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
