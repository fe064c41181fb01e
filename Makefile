# The two commands of the README: `make demo` (main job) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

DEMO_DIR         ?= demo
DEMO_EXPERIMENTS ?= 7

.PHONY: setup demo test test-fast clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q -e '.[test]'
	touch $@

setup: $(VENV)/.installed

# A short research campaign on the bundled synthetic arena (no GPU, no API key).
demo: setup
	rm -rf $(DEMO_DIR)
	$(BIN)/autoresearch init --example synthetic $(DEMO_DIR)
	$(BIN)/autoresearch run $(DEMO_DIR) --max-experiments $(DEMO_EXPERIMENTS)
	$(BIN)/autoresearch status $(DEMO_DIR)

# Every test, the long end-to-end ones included (what CI runs).
test: setup
	$(BIN)/python -m pytest -q

# The quick subset for the edit-test loop.
test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
