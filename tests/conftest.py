from __future__ import annotations

import os
import sys
from pathlib import Path

# One torch thread per test process and per run it starts: `make test` runs two pytest
# workers on two cores, and each one's runs with a thread per core oversubscribed them (torch's
# threads wait for each other at every op): 18% less CPU time, measured on the heaviest files.
# Set before torch is imported here; the scripts the tests start inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny():
    """(model, tokenizer) of the tiny random model; shared, so tests must not train it."""
    from r1.models import load_model

    return load_model("tiny", seed=0)


@pytest.fixture(scope="session")
def tokenizer(tiny):
    return tiny[1]


# Test-only reward terms must be importable by module name in spawned reward workers.
sys.path.insert(0, str(ROOT / "tests" / "support"))
