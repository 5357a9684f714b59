# Two commands work on a fresh machine with only Python 3.11 and make:
#   make demo   the main job, against the embedded simulator
#   make test   lint, format check, strict types, tests
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest bench soak clean venv

venv: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Re-install only when pyproject.toml changed.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,dashboard,prometheus,redis]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/upbit-ws demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy --strict src

pytest: $(STAMP)
	$(BIN)/pytest

test: lint typecheck pytest

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
