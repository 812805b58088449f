"""GRPO (DeepSeekMath, used for DeepSeek-R1-Zero): group-relative advantages, PPO's clipped
ratio objective, optional KL to a frozen reference, no value model.

One training step = one generation batch of B prompts x G samples (RolloutProducer), then
`inner_updates` (mu) optimizer steps on the whole batch (r1.modules.rl.RLModule).
Simplifications, written down:
- the advantage is one number per sequence, applied to every token (outcome reward), unless
  a process reward gives per-step rewards (module.advantage=grpo_process);
- with mu = 1 the "old" policy is the current one (ratio 1, no clipping can happen); with
  mu > 1 old log-probs are recomputed once, before the first update, by the training forward;
- the KL term is added to the loss per token (the paper's form), not folded into the reward;
- "old" means the trainer's forward: when another engine samples (vLLM), its log-probs differ a
  little; `rollout/is_ratio_*` measure that, and `is_correction` weights the loss by the
  truncated ratio (r1.algorithms.importance).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from r1.algorithms.advantages import ADVANTAGES
from r1.checks import ConfigError, check_choice
from r1.modules.rl import RLModule, UpdateBatch
from r1.rollout.producer import RolloutProducer, ScoredRollout


class GRPOModule(RLModule):
    def __init__(
        self,
        *args: Any,
        advantage: str = "grpo",
        dynamic_sampling: bool = False,
        process_reward: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ):
        check_choice("module.advantage", advantage, ADVANTAGES)
        if ADVANTAGES.trait(advantage, "group_baseline", True):
            self.MIN_GROUP_SIZE = (2, "GRPO advantages are relative to the group")
        super().__init__(*args, **kwargs)
        per_step = bool(ADVANTAGES.trait(advantage, "per_step", False))
        if per_step != (process_reward is not None):
            raise ConfigError(
                f"module.advantage={advantage!r} and module.process_reward go together: "
                "per-step advantages (grpo_process) need a process reward model "
                "(module.process_reward={path: <stage=prm checkpoint>}), the others none"
            )
        if dynamic_sampling and self.group_size < 2:
            raise ConfigError(
                f"module.dynamic_sampling=true drops groups whose rewards are all equal, and a "
                f"group of module.group_size={self.group_size} always is one; set "
                "module.dynamic_sampling=false"
            )
        if process_reward is not None and dynamic_sampling:
            raise ConfigError(
                "module.process_reward (dense per-step PRM rewards) needs "
                "module.dynamic_sampling=false"
            )
        self.advantage, self.dynamic_sampling = advantage, dynamic_sampling
        self.process_reward = dict(process_reward) if process_reward is not None else None

    def make_producer(self, engine) -> RolloutProducer:
        return RolloutProducer(
            engine,
            self.reward,
            self.sampling,
            self.group_size,
            advantage=self.advantage,
            dynamic_sampling=self.dynamic_sampling,
            prompt_source=self.trainer.datamodule if self.dynamic_sampling else None,
            step_scorer=self._process_rewards(),
            sample_every=self.sample_table_every,
        )

    def _process_rewards(self):
        """Dense per-step rewards from a PRM (module.process_reward: load_prm's arguments plus
        batch_size, max_length), or None for one outcome reward per completion."""
        if self.process_reward is None:
            return None
        from r1.models.prm import PRMScorer, ProcessRewards, load_prm

        settings = dict(self.process_reward)
        batch_size, max_length = settings.pop("batch_size", 16), settings.pop("max_length", 1024)
        model, tokenizer = load_prm(**settings, device=str(self.device))
        return ProcessRewards(PRMScorer(model, tokenizer, batch_size, max_length))

    def prepare(self, scored: ScoredRollout, batch: UpdateBatch) -> None:
        if self.inner_updates > 1:
            batch.old_logprobs = self.logprobs_of(self.model, batch.rollout)
