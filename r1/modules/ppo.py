"""PPO with a learned critic: the baseline DeepSeek-R1 replaced with GRPO. Same data, rollout
callback, rewards, loggers and checkpoints as GRPO; the advantage comes from a value model.

One training batch = B prompts x G samples (G = group_size, kept for an equal sample budget
with GRPO; the samples are treated independently). Then:
1. old log-probs, reference log-probs and values are computed once, without gradients;
2. per-token rewards: the sequence reward on the last token, minus kl_coef * KL (k1, per token)
   when `kl_in_reward` (the classic RLHF form; the coefficient may be adaptive), else the KL is
   a loss term as in GRPO;
3. GAE(gamma, lambda) over completion tokens -> advantages (whitened) and returns;
4. `inner_updates` passes (PPO epochs; GRPO's mu) over shuffled minibatches of
   `minibatch_prompts` prompts (a prompt's G samples stay together, so the shared-prefix
   forward still applies): clipped policy loss (shared with GRPO) + vf_coef * clipped value
   loss, one optimizer step per minibatch. Lightning's `trainer.max_steps` counts optimizer
   steps: inner_updates x minibatches per generation batch, as GRPO's counts inner_updates.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from r1.algorithms.kl import kl_estimate
from r1.algorithms.losses import aggregate_loss, clipped_policy_loss
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
from r1.modules.grpo import GRPOModule
from r1.rollout.callback import ScoredRollout
from r1.rollout.types import select_groups


class PPOModule(GRPOModule):
    MIN_GROUP_SIZE = (1, "samples per prompt")

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
        **kwargs: Any,
    ):
        kwargs.setdefault("advantage", None)
        super().__init__(*args, **kwargs)
        if self.dynamic_sampling:
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

    def _values(self, rollout) -> torch.Tensor:
        return self.critic(
            rollout.prompt_ids,
            rollout.prompt_mask,
            rollout.completion_ids,
            rollout.completion_mask,
            rollout.group_size,
        )

    def _minibatches(self, num_prompts: int) -> list[torch.Tensor]:
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

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        scored: ScoredRollout = batch["scored"]
        rollout = scored.rollout.to(self.device)
        mask = rollout.completion_mask.float()
        if self.mask_truncated:
            mask = mask * rollout.finished.float()[:, None]
        chunks = self._chunks(rollout.num_prompts)  # module.micro_batch_prompts bounds memory
        with torch.no_grad():
            old_logprobs = torch.cat(
                [self._logprobs(self.model, rollout, r, p)[0] for r, p in chunks]
            )
            old_values = self._values(rollout)
            ref_logprobs = self._reference_logprobs(rollout, chunks) if self.kl_coef > 0 else None
            kl = old_logprobs - ref_logprobs if ref_logprobs is not None else None  # k1
            kl_coef = self.kl_controller.coef if self.kl_controller else self.kl_coef
            sequence_rewards = torch.nan_to_num(scored.rewards.to(self.device))
            rewards = token_rewards(
                sequence_rewards, mask, kl if self.kl_in_reward else None, kl_coef
            )
            advantages, returns = gae(rewards, old_values, mask, self.gamma, self.lam)
            if self.whiten_advantages:
                advantages = whiten(advantages, mask)

        optimizer, scheduler = self.optimizers(), self.lr_schedulers()
        sums = dict.fromkeys(
            ("loss", "policy_loss", "value_loss", "clipped", "value_clipped", "entropy"), 0.0
        )
        sums.update(approx_kl=0.0, grad_norm=0.0)
        steps = 0
        group = self.group_size
        for _ in range(self.inner_updates):
            for keep in self._minibatches(rollout.num_prompts):
                rows = keep.to(self.device).repeat_interleave(group)
                part = select_groups(rollout, keep.to(self.device))
                m = mask[rows]
                logprobs, entropy = self._logprobs(self.model, part, slice(None), slice(None))
                policy, clipped = clipped_policy_loss(
                    logprobs,
                    old_logprobs[rows],
                    advantages[rows],
                    self.clip_low,
                    self.clip_high,
                    self.dual_clip,
                )
                if ref_logprobs is not None and not self.kl_in_reward:
                    policy = policy + kl_coef * kl_estimate(
                        logprobs, ref_logprobs[rows], self.kl_estimator
                    )
                values = self._values(part)
                value, value_clipped = clipped_value_loss(
                    values, old_values[rows], returns[rows], self.value_clip
                )
                policy_loss = aggregate_loss(
                    policy, m, self.loss_aggregation, max_tokens=self.sampling.max_new_tokens
                )
                value_loss = aggregate_loss(value, m, "token_mean")
                loss = policy_loss + self.vf_coef * value_loss
                optimizer.zero_grad()
                self.manual_backward(loss)
                grad_norm = self._clip_gradients(optimizer)
                if not self.nonfinite.allows(float(loss.detach()), grad_norm, self.global_step):
                    optimizer.zero_grad(set_to_none=True)
                    continue
                optimizer.step()
                scheduler.step()
                steps += 1
                tokens = m.sum().clamp(min=1)
                sums["loss"] += float(loss.detach())
                sums["policy_loss"] += float(policy_loss.detach())
                sums["value_loss"] += float(value_loss.detach())
                sums["clipped"] += float((clipped.float() * m).sum() / tokens)
                sums["value_clipped"] += float((value_clipped.float() * m).sum() / tokens)
                sums["entropy"] += float((entropy * m).sum() / tokens)
                log_ratio = (logprobs.detach() - old_logprobs[rows]) * m
                sums["approx_kl"] += float((0.5 * log_ratio.pow(2)).sum() / tokens)
                sums["grad_norm"] += float("nan") if grad_norm is None else grad_norm

        mean_kl = float((kl * mask).sum() / mask.sum().clamp(min=1)) if kl is not None else 0.0
        if self.kl_controller is not None:
            self.kl_controller.update(mean_kl, n_steps=rollout.completion_ids.shape[0])
        n = steps or float("nan")
        metrics = dict(scored.metrics)
        metrics.update(
            {
                "train/loss": sums["loss"] / n,
                "train/policy_loss": sums["policy_loss"] / n,
                "train/value_loss": sums["value_loss"] / n,
                "train/clip_ratio": sums["clipped"] / n,
                "train/value_clipfrac": sums["value_clipped"] / n,
                "train/entropy": sums["entropy"] / n,
                "train/approx_kl": sums["approx_kl"] / n,
                "train/grad_norm": sums["grad_norm"] / n,
                "train/kl": mean_kl,
                "train/kl_coef": kl_coef,
                "train/explained_variance": explained_variance(old_values, returns, mask),
                "train/value_mean": float((old_values * mask).sum() / mask.sum().clamp(min=1)),
                "train/lr": optimizer.param_groups[0]["lr"],
                "train/skipped_steps": float(self.nonfinite.skipped),
                "perf/step_s": time.perf_counter() - scored.started,
            }
        )
        self.log_metrics(metrics, rollout.num_prompts)
