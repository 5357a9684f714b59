# Two commands work on a fresh machine with only Python 3.11 and make:
#   make demo   the main job, against the embedded simulator
#   make test   lint, format check, strict types, tests
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# uv reads the lock. The bootstrap installs the version the lock itself names.
UV_VERSION := $(shell awk '/^name = "uv"$$/ { getline; gsub(/"/, "", $$3); print $$3 }' uv.lock)
UV := UV_PROJECT_ENVIRONMENT=$(VENV) $(BIN)/uv

.PHONY: demo test test-stress lint typecheck pytest bench soak clean venv lock redis-server

venv: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(BIN)/uv: | $(BIN)/python
	$(BIN)/python -m pip install --quiet 'uv==$(UV_VERSION)'

# Exactly what uv.lock names, every extra included; --locked refuses a lock that no longer
# matches pyproject.toml (run `make lock`). Re-runs only when either file changed.
$(STAMP): pyproject.toml uv.lock | $(BIN)/uv
	$(UV) sync --locked --all-extras --inexact --quiet
	touch $(STAMP)

# Refresh the lock on purpose: newest versions within pyproject.toml's ranges.
lock: | $(BIN)/uv
	$(UV) lock --upgrade

demo: $(STAMP)
	$(BIN)/upbit-ws demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks tools
	$(BIN)/ruff format --check src tests benchmarks tools

typecheck: $(STAMP)
	$(BIN)/mypy --strict src

pytest: $(STAMP) redis-server
	$(BIN)/pytest

# The relay tests (tests/relay/) start their own redis-server on a free port. Debian's package
# is installed when missing and we are root; otherwise they skip, saying why. Installing it may
# also start a system service on 6379: harmless, the tests never use it.
redis-server:
	@if command -v redis-server >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing redis-server (Debian package) for the relay tests"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; } \
			>/dev/null 2>&1 || echo "apt-get could not install redis-server: relay tests will skip"; \
	else echo "redis-server not found and cannot install it (needs root and apt-get): relay tests will skip"; fi

test: lint typecheck pytest

# The suite STRESS_RUNS times while a busy loop holds one of the two cores: run it after
# touching anything timing-related (keepalive, backoff, pacing, recovery, a test that waits).
STRESS_RUNS ?= 5
test-stress: $(STAMP)
	$(BIN)/python tools/stress.py --runs $(STRESS_RUNS)

# Long measurements; figures go into the README. Each prints a markdown table.
bench: $(STAMP)
	$(BIN)/python benchmarks/decode.py
	$(BIN)/python benchmarks/flood.py --seconds 8 --parse
	$(BIN)/python benchmarks/throughput.py
	$(BIN)/python benchmarks/change_latency.py
	$(BIN)/python benchmarks/recovery.py

soak: $(STAMP)
	# pytest's log capture keeps every record in memory; off, so RSS measures the library.
	$(BIN)/pytest -m soak -o addopts='-ra --strict-markers' -p no:logging -s

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis build src/*.egg-info
