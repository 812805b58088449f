"""PPO with a learned critic: the baseline DeepSeek-R1 replaced with GRPO. Same data,
rollout producer, rewards, loggers, checkpoints and update loop (r1.modules.rl.RLModule) as
GRPO; the advantage comes from a value model.

One training step = B prompts x G samples (G = group_size, kept for an equal sample budget
with GRPO; the samples are treated independently). Then:
1. old log-probs, reference log-probs and values are computed once, without gradients;
2. per-token rewards: the sequence reward on the last token, minus kl_coef * KL (k1, per token)
   when `kl_in_reward` (the classic RLHF form; the coefficient may be adaptive), else the KL is
   a loss term as in GRPO;
3. GAE(gamma, lambda) over completion tokens -> advantages (whitened) and returns;
4. `inner_updates` passes (PPO epochs; GRPO's mu) over shuffled minibatches of
   `minibatch_prompts` prompts (a prompt's G samples stay together, so the shared-prefix
   forward still applies): the registered policy loss (shared with GRPO) + vf_coef * clipped
   value loss, one optimizer step per minibatch. Lightning's `trainer.max_steps` counts
   optimizer steps: inner_updates x minibatches per generation batch.
"""

from __future__ import annotations

from typing import Any

import torch

from r1.algorithms.objectives import aggregate_loss
from r1.algorithms.ppo import (
    AdaptiveKLController,
    clipped_value_loss,
    explained_variance,
    gae,
    token_rewards,
    whiten,
)
from r1.checks import ConfigError, check_float, check_int
from r1.models.value import ValueModel
from r1.modules.rl import RLModule, UpdateBatch
from r1.rollout.producer import ScoredRollout
from r1.rollout.types import select_groups


class PPOModule(RLModule):
    def __init__(
        self,
        *args: Any,
        gamma: float = 1.0,
        lam: float = 0.95,
        whiten_advantages: bool = True,
        vf_coef: float = 0.1,
        value_clip: float = 0.2,
        minibatch_prompts: int | None = None,
        kl_in_reward: bool = True,
        adaptive_kl_target: float | None = None,
        adaptive_kl_horizon: int = 10_000,
        critic_lr: float | None = None,
        critic_model: Any = None,
        dynamic_sampling: bool = False,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        if dynamic_sampling:  # (accepted as false: experiments shared with GRPO set it)
            raise ConfigError(
                "module.dynamic_sampling=true drops groups with equal rewards, a GRPO device; "
                "PPO's critic gives such samples a signal: set it to false"
            )
        self.gamma = check_float("module.gamma", gamma, 0.0, 1.0)
        self.lam = check_float("module.lam", lam, 0.0, 1.0)
        self.vf_coef = check_float("module.vf_coef", vf_coef, 0.0)
        self.value_clip = check_float("module.value_clip", value_clip, 0.0, exclusive_minimum=True)
        if minibatch_prompts is not None:
            check_int("module.minibatch_prompts", minibatch_prompts, 1)
        self.minibatch_prompts = minibatch_prompts
        self.whiten_advantages, self.kl_in_reward = whiten_advantages, kl_in_reward
        self.kl_controller = (
            AdaptiveKLController(self.kl_coef, adaptive_kl_target, adaptive_kl_horizon)
            if adaptive_kl_target
            else None
        )
        self.critic_lr = critic_lr
        self.critic_model = critic_model  # None: a copy of the policy backbone
        self.critic: ValueModel | None = None

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if self.critic is None:
            if self.critic_model is None:
                self.critic = ValueModel.from_policy(self.model)
            else:
                self.critic = ValueModel.from_model(self.critic_model[0])

    def networks(self) -> list[torch.nn.Module]:
        return super().networks() + [self.critic]

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return super().trainable_parameters() + list(self.critic.parameters())

    def parameter_groups(self) -> list[dict[str, Any]]:
        critic: dict[str, Any] = {"params": list(self.critic.parameters())}
        if self.critic_lr is not None:
            critic["lr"] = self.critic_lr
        return [{"params": super().trainable_parameters()}, critic]

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        if self.kl_controller is not None:
            checkpoint["kl_coef"] = self.kl_controller.coef

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        if self.kl_controller is not None and "kl_coef" in checkpoint:
            self.kl_controller.coef = checkpoint["kl_coef"]

    @property
    def kl_in_loss(self) -> bool:
        return not self.kl_in_reward

    def _values(self, rollout) -> torch.Tensor:
        return self.critic(
            rollout.prompt_ids,
            rollout.prompt_mask,
            rollout.completion_ids,
            rollout.completion_mask,
            rollout.group_size,
        )

    def minibatches(self, num_prompts: int) -> list[torch.Tensor]:
        """Boolean prompt masks [B] of shuffled minibatches (the global torch RNG, so a
        resumed run shuffles alike)."""
        size = self.minibatch_prompts or num_prompts
        order = torch.randperm(num_prompts)
        batches = []
        for start in range(0, num_prompts, size):
            keep = torch.zeros(num_prompts, dtype=torch.bool)
            keep[order[start : start + size]] = True
            batches.append(keep)
        return batches

    @torch.no_grad()
    def prepare(self, scored: ScoredRollout, batch: UpdateBatch) -> None:
        rollout, mask = batch.rollout, batch.mask
        batch.old_logprobs = self.logprobs_of(self.model, rollout)
        old_values = self._values(rollout)
        k1 = batch.old_logprobs - batch.ref_logprobs if batch.ref_logprobs is not None else None
        batch.kl_coef = self.kl_controller.coef if self.kl_controller else self.kl_coef
        sequence_rewards = torch.nan_to_num(scored.rewards.to(self.device))
        rewards = token_rewards(
            sequence_rewards, mask, k1 if self.kl_in_reward else None, batch.kl_coef
        )
        advantages, returns = gae(rewards, old_values, mask, self.gamma, self.lam)
        batch.advantages = whiten(advantages, mask) if self.whiten_advantages else advantages
        batch.extra.update(old_values=old_values, returns=returns, k1=k1)

    def micro_batch_loss(self, batch: UpdateBatch, keep: torch.Tensor, epoch: int, denominators):
        num_sequences, num_tokens, share = denominators
        rows = keep.repeat_interleave(self.group_size)
        part = select_groups(batch.rollout, keep)
        m = batch.mask[rows]
        logprobs, entropy = self._logprobs(self.model, part, self.entropy_coef > 0)
        policy, stats = self.policy_term(batch, part, rows, logprobs, entropy, epoch, share)
        old_values = batch.extra["old_values"]
        values = self._values(part)
        value, value_clipped = clipped_value_loss(
            values, old_values[rows], batch.extra["returns"][rows], self.value_clip
        )
        policy_loss = self.world_size * aggregate_loss(
            policy,
            m,
            self.loss_aggregation,
            num_sequences=num_sequences,
            num_tokens=num_tokens,
            max_tokens=self.sampling.max_new_tokens,
        )
        value_loss = self.world_size * aggregate_loss(value, m, "token_mean", num_tokens=num_tokens)
        log_ratio = (logprobs.detach() - batch.old_logprobs[rows]) * m
        stats.update(
            {
                "train/policy_loss": float(policy_loss.detach()),
                "train/value_loss": float(value_loss.detach()),
                "train/value_clipfrac": float((value_clipped.float() * m).sum() * share),
                "train/approx_kl": float((0.5 * log_ratio.pow(2)).sum() * share),
            }
        )
        return policy_loss + self.vf_coef * value_loss, stats

    def finish(self, batch: UpdateBatch, metrics: dict[str, float]) -> None:
        mask, k1 = batch.mask, batch.extra["k1"]
        if self.kl_controller is not None and k1 is not None:
            mean_k1 = float((k1 * mask).sum() / mask.sum().clamp(min=1))
            self.kl_controller.update(mean_k1, n_steps=batch.rollout.completion_ids.shape[0])
        old_values, returns = batch.extra["old_values"], batch.extra["returns"]
        metrics.update(
            {
                "train/kl_coef": batch.kl_coef,
                "train/explained_variance": explained_variance(old_values, returns, mask),
                "train/value_mean": float((old_values * mask).sum() / mask.sum().clamp(min=1)),
            }
        )
