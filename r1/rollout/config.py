"""The `rollout` config group (conf/rollout/): which engine generates, its settings, and how RL
training runs it (`rollout.async_steps`, `rollout.max_staleness`).

    rollout = RolloutConfig("r1.rollout.hf.HFRolloutEngine", max_prompts_per_chunk=64)
    engine = rollout(model=model, tokenizer=tokenizer, autocast_dtype="bfloat16")

Calling it builds the engine, as the engine's constructor would, so the scripts that only
generate (evaluate, sample, label_steps, search_traces) use it unchanged; they ignore the two
training settings.
"""

from __future__ import annotations

import importlib
from typing import Any

from r1.checks import ConfigError, check_int, check_targets

ASYNC_ENGINES = ("r1.rollout.hf.HFRolloutEngine",)


class RolloutConfig:
    """engine: the engine's class (import path); settings: its constructor's settings, checked
    against its signature here (an unknown or mistyped one names the key).

    async_steps: 0 = each step generates its batch, then trains on it (the default);
      1 = one-step-off-policy: the next batch is generated in a background thread, from a copy
      of the weights, while the trainer updates on the current one (r1.rollout.asynchronous).
    max_staleness: with async_steps=1, at most this many optimizer steps between the weights
      that sampled a batch and the weights that train on it; a batch that would be staler is
      generated after the update instead, without overlap.
    """

    def __init__(self, engine: str, async_steps: int = 0, max_staleness: int = 1, **settings: Any):
        self.engine, self.settings = engine, settings
        self.async_steps, self.max_staleness = async_steps, max_staleness
        check_int("rollout.async_steps", async_steps, 0)
        if async_steps > 1:
            raise ConfigError(
                f"rollout.async_steps={async_steps} is not supported: 0 (synchronous) or 1 "
                "(one-step-off-policy: the next batch is generated while this one trains)"
            )
        check_int("rollout.max_staleness", max_staleness, 1)
        if async_steps and engine not in ASYNC_ENGINES:
            raise ConfigError(
                f"rollout.async_steps={async_steps} runs with rollout=hf only (its producer "
                f"thread samples from its own copy of the weights); {engine} is not supported: "
                "set rollout.async_steps=0"
            )
        check_targets({"_target_": engine, **settings}, "rollout")
        module, _, name = engine.rpartition(".")
        self.engine_class = getattr(importlib.import_module(module), name)

    def __call__(self, **kwargs: Any):
        return self.engine_class(**self.settings, **kwargs)

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in self.settings.items())
        return (
            f"RolloutConfig({self.engine}, async_steps={self.async_steps}, "
            f"max_staleness={self.max_staleness}{', ' if settings else ''}{settings})"
        )
