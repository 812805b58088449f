"""The `rollout` config group's object: it builds the engine as the engine's constructor would
(what evaluate, sample, label_steps and search_traces call), and checks its settings."""

from __future__ import annotations

import pytest

from r1.checks import ConfigError
from r1.models import load_model
from r1.rollout.config import RolloutConfig
from r1.rollout.hf import HFRolloutEngine
from r1.rollout.types import SamplingParams


def test_calling_it_builds_the_engine_with_its_settings():
    model, tokenizer = load_model("tiny", seed=0)
    rollout = RolloutConfig("r1.rollout.hf.HFRolloutEngine", max_prompts_per_chunk=3)
    engine = rollout(model=model, tokenizer=tokenizer, autocast_dtype=None)
    assert isinstance(engine, HFRolloutEngine) and engine.max_prompts_per_chunk == 3
    assert engine.generate([[5, 6]], SamplingParams(max_new_tokens=2), n=2).num_prompts == 1
    assert (rollout.async_steps, rollout.max_staleness) == (0, 1)


def test_an_unknown_engine_setting_is_named_with_the_valid_ones():
    with pytest.raises(ConfigError, match="rollout.chunk is not a setting of .*valid: model"):
        RolloutConfig("r1.rollout.hf.HFRolloutEngine", chunk=3)
