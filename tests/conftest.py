from __future__ import annotations

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
