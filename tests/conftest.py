from __future__ import annotations

import sys
from pathlib import Path

import pytest

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
