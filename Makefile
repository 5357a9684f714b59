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

.PHONY: demo test test-stress lint typecheck pytest bench soak soak-24h clean venv lock docs qt-runtime redis-server

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
	$(BIN)/ruff check src tests benchmarks tools examples
	$(BIN)/ruff format --check src tests benchmarks tools examples

typecheck: $(STAMP)
	$(BIN)/mypy --strict src

# Two workers (pytest-xdist): the suite takes about 3.5 minutes instead of 6 on two cores. Every
# test is written for a loaded machine (make test-stress runs it beside a busy loop, the same way).
PYTEST_WORKERS ?= 2
PYTEST_PARALLEL := -n $(PYTEST_WORKERS) --dist loadgroup

pytest: $(STAMP) qt-runtime redis-server
	$(BIN)/pytest $(PYTEST_PARALLEL) $$(cat $(QT_SKIP) 2>/dev/null)

# Qt's system libraries, for the qt extra's tests. PySide6's wheels bundle Qt itself but not
# what Qt links from the system (libEGL, libGL, libxkbcommon, fontconfig...). Without them
# `import PySide6.QtGui` fails, and pytest-qt imports it when pytest starts, so the whole run
# would fail. qt-runtime starts an offscreen QApplication; if that fails it installs the
# packages with apt-get when it runs as root (CI), and otherwise writes the pytest options
# that leave Qt out to $(QT_SKIP) and says so once.
QT_APT_PACKAGES := libegl1 libgl1 libxkbcommon0 libfontconfig1 libfreetype6 libglib2.0-0 \
	libdbus-1-3 fonts-dejavu-core
QT_SKIP := $(VENV)/.qt-skip
QT_PROBE ?= QT_QPA_PLATFORM=offscreen $(BIN)/python -c \
	"from PySide6.QtWidgets import QApplication; QApplication([])"

qt-runtime: $(STAMP)
	@rm -f $(QT_SKIP)
	@if ! $(QT_PROBE) >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "qt-runtime: installing Qt's system libraries: $(QT_APT_PACKAGES)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends $(QT_APT_PACKAGES) >/dev/null; \
	  fi; \
	  if ! $(QT_PROBE) >/dev/null 2>&1; then \
	    echo "qt-runtime: Qt cannot start here (missing system libraries; as root with" \
	      "apt-get they are installed: $(QT_APT_PACKAGES)). SKIPPING the Qt tests (tests/qt)."; \
	    echo "-p no:pytestqt --ignore=tests/qt" > $(QT_SKIP); \
	  fi; \
	fi

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
test-stress: $(STAMP) qt-runtime redis-server
	$(BIN)/python tools/stress.py --runs $(STRESS_RUNS) -- $(PYTEST_PARALLEL) $$(cat $(QT_SKIP) 2>/dev/null)

# The API reference and the notes in docs/, built into site/; any warning fails the build.
docs: $(STAMP)
	$(BIN)/mkdocs build --strict

# Long measurements; figures go into the README. Each prints a markdown table.
bench: $(STAMP)
	$(BIN)/python benchmarks/decode.py
	$(BIN)/python benchmarks/flood.py --seconds 8 --parse
	$(BIN)/python benchmarks/throughput.py
	$(BIN)/python benchmarks/peers.py
	$(BIN)/python benchmarks/change_latency.py
	$(BIN)/python benchmarks/recovery.py

# The chaos soak (tests/scenarios/test_soak.py): UPBIT_WS_SOAK_SECONDS (default 600),
# UPBIT_WS_SOAK_SEED replays a run; its report is printed and written as JSON.
SOAK_REPORT ?= benchmarks/results/soak-$(shell date +%Y%m%d-%H%M%S).json
soak: $(STAMP)
	# pytest's log capture keeps every record in memory; off, so RSS measures the library.
	UPBIT_WS_SOAK_REPORT=$${UPBIT_WS_SOAK_REPORT:-$(SOAK_REPORT)} \
	$(BIN)/pytest tests/scenarios/test_soak.py -m soak -o addopts='-ra --strict-markers' \
		-p no:logging -s

# The 24-hour soak, resumable: one JSON line a minute goes to SOAK_PROGRESS; run the same
# command again after an interruption and it continues the counts (a new segment) until the
# segments add up to 24 h. Then: .venv/bin/python benchmarks/soak_report.py $(SOAK_PROGRESS)
SOAK_PROGRESS ?= benchmarks/results/soak-24h.jsonl
soak-24h: $(STAMP)
	UPBIT_WS_SOAK_PROGRESS=$(SOAK_PROGRESS) UPBIT_WS_SOAK_SECONDS=86400 \
	$(BIN)/pytest tests/scenarios/test_soak.py -m soak -o addopts='-ra --strict-markers' \
		-p no:logging -s
	$(BIN)/python benchmarks/soak_report.py $(SOAK_PROGRESS)

clean:
	rm -rf $(VENV) site .mypy_cache .pytest_cache .ruff_cache .hypothesis build src/*.egg-info
