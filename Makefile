# The two commands: `make demo` and `make test`. Everything else is a step they take.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test setup system-deps lint docs bench clean

demo: setup
	$(BIN)/thanthien demo

test: setup
	$(BIN)/ruff check .
	$(BIN)/pytest

setup: system-deps $(STAMP)

system-deps:
	@bash scripts/system-deps.sh

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[edge,hub,dev]'
	@touch $(STAMP)

lint: setup
	$(BIN)/ruff check .

docs: setup
	$(BIN)/thanthien protocol docs > docs/protocol.md

bench: setup
	$(BIN)/thanthien bench all

clean:
	rm -rf $(VENV) var .pytest_cache
