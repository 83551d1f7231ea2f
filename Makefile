# The two commands: `make demo` and `make test`. Everything else is a step they take.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Exact versions (with hashes) of every package the extras edge, hub and dev pull in;
# make lock refreshes it from pyproject.toml.
LOCK := requirements.lock
LOCK_OPTIONS := --extra edge --extra hub --extra dev --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links --quiet --output-file $(LOCK)
# Test processes (pytest-xdist): most tests wait on brokers and timers, not on the CPU. On two
# cores -n 2 took 315 s, -n 4 276 s, -n 6 244 s but timing tests (camera latency) began to fail.
WORKERS ?= 4

.PHONY: demo test setup system-deps lint docs bench clean lock lock-upgrade pi-check

demo: setup
	$(BIN)/thanthien demo

test: setup
	@start=$$(date +%s); \
	$(BIN)/ruff check . && $(BIN)/pytest -n $(WORKERS); status=$$?; \
	echo "make test: wall time $$(( $$(date +%s) - start )) s"; exit $$status

setup: system-deps $(STAMP)

system-deps:
	@bash scripts/system-deps.sh

$(STAMP): $(LOCK) pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

# After changing dependencies in pyproject.toml: keeps every pin that still fits.
lock: $(STAMP)
	$(BIN)/pip-compile $(LOCK_OPTIONS) pyproject.toml

# Every package to the newest release pyproject.toml allows.
lock-upgrade: $(STAMP)
	$(BIN)/pip-compile --upgrade $(LOCK_OPTIONS) pyproject.toml

lint: setup
	$(BIN)/ruff check .

docs: setup
	$(BIN)/thanthien protocol docs > docs/protocol.md

bench: setup
	$(BIN)/thanthien bench all

# The edge install on the Pi's platform (an arm64 bookworm root through qemu-user-static), a release
# rolled out to it and kept; outside the 10-minute suite. Needs root; README "make pi-check".
pi-check: setup
	@command -v debootstrap >/dev/null && test -e /usr/bin/qemu-aarch64-static || \
	  apt-get install -y -qq --no-install-recommends debootstrap qemu-user-static
	$(BIN)/python scripts/pi_check.py

clean:
	rm -rf $(VENV) var .pytest_cache
