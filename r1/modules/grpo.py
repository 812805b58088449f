"""GRPO (DeepSeekMath, used for DeepSeek-R1-Zero): group-relative advantages, PPO's clipped
ratio objective, optional KL to a frozen reference, no value model.

One training batch = one generation batch of B prompts x G samples (made by RolloutCallback),
then `inner_updates` (mu) optimizer steps on it. Simplifications, written down:
- the advantage is one number per sequence, applied to every token (outcome reward);
- with mu = 1 the "old" policy is the current one (ratio 1, no clipping can happen); with
  mu > 1 old log-probs are recomputed once, before the first update, by the training forward;
- the KL term is added to the loss per token (the paper's form), not folded into the reward;
- "old" means the trainer's forward: when another engine samples (vLLM), its log-probs differ a
  little; `rollout/is_ratio_*` measure that, and `is_correction` weights the loss by the
  truncated ratio (r1.algorithms.importance).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from r1.algorithms.advantages import ESTIMATORS
from r1.algorithms.importance import IS_LEVELS, ratio_stats, truncated_importance_weights
from r1.algorithms.kl import KL_ESTIMATORS, kl_estimate
from r1.algorithms.losses import AGGREGATIONS, aggregate_loss, clipped_policy_loss
from r1.checks import ConfigError, check_choice, check_float, check_int
from r1.eval.metrics import REFLECTION_WORDS
from r1.models.forward import completion_logprobs
from r1.modules.base import ReasoningModule
from r1.modules.parallel import reduce_metrics, uses_deepspeed
from r1.rewards import CompositeReward
from r1.rollout.callback import RolloutCallback, ScoredRollout
from r1.rollout.hf import HFRolloutEngine
from r1.rollout.types import sampling_params

PROGRESS_BAR = ("train/reward", "rollout/tokens_per_s")  # with val/accuracy


class GRPOModule(ReasoningModule):
    MIN_GROUP_SIZE = (2, "GRPO advantages are relative to the group")

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        optimizer: Callable[..., torch.optim.Optimizer],
        reward: CompositeReward,
        engine: Callable[..., Any] | None = None,
        group_size: int = 8,
        sampling: Mapping[str, Any] | None = None,
        advantage: str | None = "grpo",
        loss_aggregation: str = "seq_mean_token_mean",
        clip_low: float = 0.2,
        clip_high: float = 0.2,
        dual_clip: float | None = None,
        kl_coef: float = 0.0,
        kl_estimator: str = "k3",
        inner_updates: int = 1,
        micro_batch_prompts: int | None = None,
        mask_truncated: bool = False,
        dynamic_sampling: bool = False,
        max_grad_norm: float | None = 1.0,
        shared_prefix: bool = True,
        reflection_words: Sequence[str] | None = None,
        sample_table_every: int = 0,
        is_correction: str | None = None,
        is_cap: float = 2.0,
        process_reward: Mapping[str, Any] | None = None,
        **base: Any,
    ):
        super().__init__(model, tokenizer, optimizer, reward=reward, **base)
        check_int("module.group_size", group_size, *self.MIN_GROUP_SIZE)
        check_int("module.inner_updates", inner_updates, 1)
        check_float("module.kl_coef", kl_coef, 0.0)
        check_float("module.clip_low", clip_low, 0.0, 1.0)
        check_float("module.clip_high", clip_high, 0.0)
        if dual_clip is not None:
            check_float("module.dual_clip", dual_clip, 1.0, exclusive_minimum=True)
        if max_grad_norm is not None:
            check_float("module.max_grad_norm", max_grad_norm, 0.0, exclusive_minimum=True)
        if micro_batch_prompts is not None:
            check_int("module.micro_batch_prompts", micro_batch_prompts, 1)
        if advantage is not None:  # None: no group advantages (PPO's come from its critic)
            check_choice("module.advantage", advantage, ESTIMATORS)
        check_choice("module.loss_aggregation", loss_aggregation, AGGREGATIONS)
        check_choice("module.kl_estimator", kl_estimator, KL_ESTIMATORS)
        if is_correction is not None:
            check_choice("module.is_correction", is_correction, IS_LEVELS)
        check_float("module.is_cap", is_cap, 0.0, exclusive_minimum=True)
        self.is_level, self.is_cap = is_correction, is_cap
        if process_reward is not None and (advantage != "grpo" or dynamic_sampling):
            raise ConfigError(
                "module.process_reward (dense per-step PRM rewards) needs module.advantage=grpo "
                f"and module.dynamic_sampling=false, got advantage={advantage!r}, "
                f"dynamic_sampling={dynamic_sampling}"
            )
        self.process_reward = dict(process_reward) if process_reward is not None else None
        self.automatic_optimization = False  # mu updates per generation batch
        self.engine_factory = engine or HFRolloutEngine
        self.group_size = group_size
        self.sampling = sampling_params(sampling)
        self.advantage, self.loss_aggregation = advantage, loss_aggregation
        self.clip_low, self.clip_high, self.dual_clip = clip_low, clip_high, dual_clip
        self.kl_coef, self.kl_estimator = kl_coef, kl_estimator
        self.inner_updates, self.micro_batch_prompts = inner_updates, micro_batch_prompts
        self.mask_truncated, self.dynamic_sampling = mask_truncated, dynamic_sampling
        self.max_grad_norm, self.shared_prefix = max_grad_norm, shared_prefix
        self.reflection_words = tuple(reflection_words or REFLECTION_WORDS)
        self.sample_table_every = check_int("module.sample_table_every", sample_table_every, 0)
        self.ref_model: torch.nn.Module | None = None  # only loaded when kl_coef > 0
        self.engine = None

    def configure_callbacks(self):
        precision = str(self.trainer.precision) if self._trainer else ""
        autocast = "bfloat16" if "bf16" in precision else "float16" if "16" in precision else None
        self.engine = self.engine_factory(
            model=self.model, tokenizer=self.tokenizer, autocast_dtype=autocast
        )
        return [
            RolloutCallback(
                self.engine,
                self.reward,
                self.sampling,
                self.group_size,
                self.advantage,
                self.dynamic_sampling,
                reflection_words=self.reflection_words,
                sample_every=self.sample_table_every,
                step_rewards=self._process_rewards(),
            )
        ]

    def _process_rewards(self):
        """Dense per-step rewards from a PRM (module.process_reward: load_prm's arguments plus
        batch_size, max_length), or None for one outcome reward per completion."""
        if self.process_reward is None:
            return None
        from r1.models.loading import load_prm
        from r1.search.prm import PRMScorer, ProcessRewards

        settings = dict(self.process_reward)
        batch_size, max_length = settings.pop("batch_size", 16), settings.pop("max_length", 1024)
        model, tokenizer = load_prm(**settings, device=str(self.device))
        return ProcessRewards(PRMScorer(model, tokenizer, batch_size, max_length))

    def setup(self, stage: str) -> None:
        if uses_deepspeed(self._trainer) and self.micro_batch_prompts is not None:
            raise ConfigError(
                f"module.micro_batch_prompts={self.micro_batch_prompts} is not supported with "
                "DeepSpeed (its engine steps after every backward); set it to null and bound "
                "memory with data.batch_size instead"
            )
        if (
            self.kl_coef > 0
            and self.ref_model is None
            and not hasattr(self.model, "disable_adapter")
        ):
            self.ref_model = copy.deepcopy(self.model).eval().requires_grad_(False)

    def networks(self) -> list[torch.nn.Module]:
        return super().networks() + ([self.ref_model] if self.ref_model is not None else [])

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        # The reference is the starting policy, rebuilt from the model config on resume,
        # except where the strategy loads the weights itself, strictly, before any hook runs
        # (FSDP, DeepSpeed): there it stays in the checkpoint.
        strategy = self._trainer.strategy if self._trainer is not None else None
        if hasattr(strategy, "shard") or uses_deepspeed(self._trainer):
            return
        checkpoint["state_dict"] = {
            k: v for k, v in checkpoint["state_dict"].items() if not k.startswith("ref_model.")
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        if self.ref_model is not None and "state_dict" in checkpoint:  # (sharded: loaded)
            reference = {f"ref_model.{k}": v for k, v in self.ref_model.state_dict().items()}
            checkpoint["state_dict"] = {**checkpoint["state_dict"], **reference}

    def _logprobs(self, model, rollout, rows: slice, prompts: slice):
        return completion_logprobs(
            model,
            rollout.prompt_ids[prompts],
            rollout.prompt_mask[prompts],
            rollout.completion_ids[rows],
            rollout.completion_mask[rows],
            self.group_size,
            temperature=self.sampling.temperature or 1.0,
            shared_prefix=self.shared_prefix,
        )

    @torch.no_grad()
    def _reference_logprobs(self, rollout, chunks) -> torch.Tensor:
        if hasattr(self.model, "disable_adapter"):  # LoRA: the reference is the base model
            with self.model.disable_adapter():
                return torch.cat([self._logprobs(self.model, rollout, r, p)[0] for r, p in chunks])
        return torch.cat([self._logprobs(self.ref_model, rollout, r, p)[0] for r, p in chunks])

    def _chunks(self, num_prompts: int) -> list[tuple[slice, slice]]:
        """(rows, prompts) slices of the micro-batches; groups are never split."""
        size = self.micro_batch_prompts or num_prompts
        return [
            (
                slice(b * self.group_size, min(b + size, num_prompts) * self.group_size),
                slice(b, min(b + size, num_prompts)),
            )
            for b in range(0, num_prompts, size)
        ]

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        scored: ScoredRollout = batch["scored"]
        rollout = scored.rollout.to(self.device)
        advantages = scored.advantages.to(self.device)
        mask = rollout.completion_mask.float()
        if self.mask_truncated:
            mask = mask * rollout.finished.float()[:, None]
        chunks = self._chunks(rollout.num_prompts)
        # Denominators over the whole generation batch and all ranks, so that splitting it
        # into micro-batches or over ranks leaves the gradient unchanged. Data-parallel
        # gradients are averaged over ranks, so each rank's share of the global loss is scaled
        # by their number.
        num_tokens = self.all_gather(mask.sum()).sum().clamp(min=1)
        num_sequences = self.all_gather(
            torch.tensor(float(mask.shape[0]), device=self.device)
        ).sum()
        share = float(self.world_size) / num_tokens  # token sums -> global means
        old_logprobs = None
        if self.inner_updates > 1:
            with torch.no_grad():
                old_logprobs = torch.cat(
                    [self._logprobs(self.model, rollout, r, p)[0] for r, p in chunks]
                )
        ref_logprobs = self._reference_logprobs(rollout, chunks) if self.kl_coef > 0 else None

        optimizer, scheduler = self.optimizers(), self.lr_schedulers()
        totals = {"loss": 0.0, "kl": 0.0, "clipped": 0.0, "entropy": 0.0, "grad_norm": 0.0}
        mismatch = []  # (ratios, mask) per micro-batch of the first update: rollout/is_ratio_*
        updates = 0
        for update in range(self.inner_updates):
            optimizer.zero_grad()
            step = {"loss": 0.0, "kl": 0.0, "clipped": 0.0, "entropy": 0.0}
            for i, (rows, prompts) in enumerate(chunks):
                logprobs, entropy = self._logprobs(self.model, rollout, rows, prompts)
                old = old_logprobs[rows] if old_logprobs is not None else logprobs.detach()
                per_token, clipped = clipped_policy_loss(
                    logprobs, old, advantages[rows], self.clip_low, self.clip_high, self.dual_clip
                )
                m = mask[rows]
                if update == 0 or self.is_level is not None:  # measured once, applied always
                    weights, ratios = truncated_importance_weights(
                        old,
                        rollout.sampling_logprobs[rows],
                        m,
                        self.is_level or "token",
                        self.is_cap,
                    )
                    if update == 0:
                        mismatch.append((ratios, m))
                    if self.is_level is not None:
                        per_token = per_token * weights
                if ref_logprobs is not None:
                    kl = kl_estimate(logprobs, ref_logprobs[rows], self.kl_estimator)
                    per_token = per_token + self.kl_coef * kl
                    step["kl"] += float((kl.detach() * m).sum() * share)
                loss = self.world_size * aggregate_loss(
                    per_token,
                    m,
                    self.loss_aggregation,
                    num_sequences=num_sequences,
                    num_tokens=num_tokens,
                    max_tokens=self.sampling.max_new_tokens,
                )
                # DDP all-reduces once per optimizer step: in the last micro-batch's backward.
                with self.gradient_sync(i == len(chunks) - 1):
                    self.manual_backward(loss)
                step["loss"] += float(loss.detach())
                step["clipped"] += float((clipped.float() * m).sum() * share)
                step["entropy"] += float((entropy * m).sum() * share)
            grad_norm = self._clip_gradients(optimizer)
            if not self.nonfinite.allows(step["loss"], grad_norm, self.global_step):
                optimizer.zero_grad(set_to_none=True)  # skip: weights and moments unchanged
                continue
            optimizer.step()
            scheduler.step()
            updates += 1
            for name, value in step.items():
                totals[name] += value
            totals["grad_norm"] += float("nan") if grad_norm is None else grad_norm

        metrics = dict(scored.metrics)
        metrics["train/skipped_steps"] = float(self.nonfinite.skipped)
        metrics.update(
            {
                f"rollout/{k}": v
                for k, v in ratio_stats(
                    torch.cat([r.flatten() for r, _ in mismatch]),
                    torch.cat([m.flatten() for _, m in mismatch]),
                ).items()
            }
        )
        if not updates:  # every update of this batch was skipped: nothing else to report
            updates = float("nan")
        metrics.update(
            {
                "train/loss": totals["loss"] / updates,
                "train/clip_ratio": totals["clipped"] / updates,
                "train/entropy": totals["entropy"] / updates,
                "train/kl": totals["kl"] / updates,
                "train/lr": optimizer.param_groups[0]["lr"],
                "train/grad_norm": totals["grad_norm"] / updates,
                "perf/step_s": time.perf_counter() - scored.started,
            }
        )
        self.log_metrics(metrics, rollout.num_prompts)

    def log_metrics(self, metrics: Mapping[str, float], num_prompts: int) -> None:
        """Log this step's metrics, reduced over data-parallel ranks first (see
        r1.modules.parallel.reduce_metrics); NaN (no signal) is not logged."""
        if self.world_size > 1:
            metrics = reduce_metrics(self, metrics)
        for name, value in metrics.items():
            if value == value:
                self.log(name, value, batch_size=num_prompts, prog_bar=name in PROGRESS_BAR)

    def _clip_gradients(self, optimizer) -> float | None:
        """Clip to max_grad_norm and return the norm before clipping (None when an fp16 grad
        scaler is active: gradients are still scaled, Lightning unscales and clips them, and
        the scaler skips overflowing steps). Lightning refuses to clip for fused optimizers
        under autocast, although bf16 and fp32 scale no gradients."""
        if uses_deepspeed(self._trainer):
            return None  # the engine clips (config gradient_clipping) inside its step
        params = [p for p in self.trainable_parameters() if p.grad is not None]
        plugin = self._trainer.precision_plugin if self._trainer is not None else None
        if getattr(plugin, "scaler", None) is not None:
            if self.max_grad_norm:
                self.clip_gradients(
                    optimizer, gradient_clip_val=self.max_grad_norm, gradient_clip_algorithm="norm"
                )
            return None
        return float(torch.nn.utils.clip_grad_norm_(params, self.max_grad_norm or float("inf")))

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def parameter_groups(self) -> list[dict[str, Any]]:
        return [{"params": self.trainable_parameters()}]

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.parameter_groups())
        total = (
            self.trainer.max_steps
            if self.trainer.max_steps and self.trainer.max_steps > 0
            else int(self.trainer.estimated_stepping_batches) * self.inner_updates
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": self.lr_scheduler(optimizer, total), "interval": "step"},
        }
