"""RLModule: what GRPO and PPO share, the policy update on one generation batch.

One training step, top to bottom (`training_step`):
1. `producer.produce(batch)` (r1.rollout.producer): generate G completions per prompt,
   score them, refill for dynamic sampling, compute advantages -> ScoredRollout;
2. `prepare`: what the update needs once per batch, without gradients (old and reference
   log-probs; PPO: values, GAE advantages, returns);
3. `inner_updates` (mu) epochs over `minibatches` (GRPO: the whole batch; PPO: shuffled
   ones), one optimizer step each, accumulated over `micro_batches` of
   `micro_batch_prompts` prompts whose loss denominators are the minibatch's over all ranks,
   so splitting changes no gradient; non-finite steps are skipped (r1.modules.guards);
4. the engine samples from the new weights from the next step on.

With `rollout.async_steps=1` (one-step-off-policy, r1.rollout.asynchronous) a step trains on
the batch the previous step generated, while a background thread generates this step's from
a copy of the weights before the update; see `off_policy_step`.

The loss per token is the registered policy loss (module.policy_loss: ppo_clip | gspo |
cispo), times the truncated importance weight (module.is_correction), plus kl_coef x the KL
estimate (module.kl_estimator), minus entropy_coef x the entropy; aggregated with
module.loss_aggregation. Subclasses supply the advantages and any extra loss (PPO's critic).

Metrics mean the same in every stage: train/kl is the mean per-token k3 estimate of
KL(pi_old || pi_ref) over completion tokens, pi_old being the policy that generated the batch
(measured whatever kl_estimator the loss uses); train/clip_ratio, train/entropy are token
means over each optimizer step's tokens, averaged over the steps; train/loss is the
optimizer steps' mean loss.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from r1 import malloc
from r1.algorithms.importance import IS_LEVELS, ratio_stats, truncated_importance_weights
from r1.algorithms.objectives import (
    AGGREGATIONS,
    KL_ESTIMATORS,
    POLICY_LOSSES,
    aggregate_loss,
    k3,
    kl_estimate,
)
from r1.checks import ConfigError, check_choice, check_float, check_int
from r1.eval.behaviour import behaviour_metrics
from r1.eval.metrics import REFLECTION_WORDS, reflection_stats
from r1.models.forward import (
    LOGIT_CHUNK_TOKENS,
    completion_logprobs,
    layer_checkpointing,
    switchable_checkpointing,
)
from r1.modules.base import ReasoningModule
from r1.modules.parallel import reduce_metrics, uses_deepspeed
from r1.modules.val_benchmarks import ValBenchmarks
from r1.rewards import CompositeReward
from r1.rollout.asynchronous import OffPolicyRollouts, PendingRollout, sampler_copy
from r1.rollout.config import RolloutConfig
from r1.rollout.hf import HFRolloutEngine
from r1.rollout.producer import RolloutProducer, ScoredRollout, reset_peak_memory
from r1.rollout.types import Rollout, sampling_params, select_groups

log = logging.getLogger(__name__)

PENDING_KEY = "r1_pending_rollout"  # the checkpoint entry of an async run's generated batch
PROGRESS_BAR = ("train/reward", "rollout/tokens_per_s")  # with val/accuracy


@dataclass
class UpdateBatch:
    """One generation batch on the device, with what `prepare` computed once.

    mask: [N, C] completion tokens that enter the loss; advantages: [N] or [N, C];
    old_logprobs: [N, C] or None (then the current policy's, detached: mu = 1);
    ref_logprobs: [N, C] or None (no KL); token_share: world size / completion tokens of the
    whole batch over all ranks (token sums -> global means)."""

    rollout: Rollout
    mask: torch.Tensor
    advantages: torch.Tensor
    old_logprobs: torch.Tensor | None = None
    ref_logprobs: torch.Tensor | None = None
    kl_coef: float = 0.0
    token_share: torch.Tensor | float = 1.0
    kl: float = 0.0  # train/kl, summed over the first epoch's micro-batches
    mismatch: list = field(default_factory=list)  # (ratios, mask): rollout/is_ratio_*
    extra: dict[str, Any] = field(default_factory=dict)  # a subclass's own tensors


class RLModule(ReasoningModule):
    MIN_GROUP_SIZE = (1, "samples per prompt")

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        optimizer: Callable[..., torch.optim.Optimizer],
        reward: CompositeReward,
        engine: Callable[..., Any] | None = None,
        group_size: int = 8,
        sampling: Mapping[str, Any] | None = None,
        policy_loss: str = "ppo_clip",
        loss_aggregation: str = "seq_mean_token_mean",
        clip_low: float = 0.2,
        clip_high: float = 0.2,
        dual_clip: float | None = None,
        kl_coef: float = 0.0,
        kl_estimator: str = "k3",
        entropy_coef: float = 0.0,
        inner_updates: int = 1,
        micro_batch_prompts: int | None = None,
        micro_batch_tokens: int | None = None,
        checkpoint_above_tokens: int | None = None,
        release_large_blocks: bool = True,
        mask_truncated: bool = False,
        max_grad_norm: float | None = 1.0,
        shared_prefix: bool = True,
        logit_chunk_tokens: int | None = LOGIT_CHUNK_TOKENS,
        reflection_words: Sequence[str] | None = None,
        sample_table_every: int = 0,
        is_correction: str | None = None,
        is_cap: float = 2.0,
        val_benchmarks: Mapping[str, Any] | None = None,
        **base: Any,
    ):
        super().__init__(model, tokenizer, optimizer, reward=reward, **base)
        check_int("module.group_size", group_size, *self.MIN_GROUP_SIZE)
        check_int("module.inner_updates", inner_updates, 1)
        check_float("module.kl_coef", kl_coef, 0.0)
        self.entropy_coef = check_float("module.entropy_coef", entropy_coef, 0.0)
        check_float("module.clip_low", clip_low, 0.0, 1.0)
        check_float("module.clip_high", clip_high, 0.0)
        if max_grad_norm is not None:
            check_float("module.max_grad_norm", max_grad_norm, 0.0, exclusive_minimum=True)
        if micro_batch_prompts is not None:
            check_int("module.micro_batch_prompts", micro_batch_prompts, 1)
        if micro_batch_tokens is not None:
            check_int("module.micro_batch_tokens", micro_batch_tokens, 1)
        self.micro_batch_tokens = micro_batch_tokens
        if checkpoint_above_tokens is not None:
            check_int("module.checkpoint_above_tokens", checkpoint_above_tokens, 1)
        self.checkpoint_above_tokens = checkpoint_above_tokens
        self.release_large_blocks = release_large_blocks
        self.switchable_checkpointing = False  # set up in setup()
        check_choice("module.policy_loss", policy_loss, POLICY_LOSSES)
        check_choice("module.loss_aggregation", loss_aggregation, AGGREGATIONS)
        check_choice("module.kl_estimator", kl_estimator, KL_ESTIMATORS)
        if is_correction is not None:
            check_choice("module.is_correction", is_correction, IS_LEVELS)
        check_float("module.is_cap", is_cap, 0.0, exclusive_minimum=True)
        if logit_chunk_tokens is not None:
            check_int("module.logit_chunk_tokens", logit_chunk_tokens, 1)
        self.logit_chunk_tokens = logit_chunk_tokens
        self.policy_loss_fn = POLICY_LOSSES[policy_loss]
        self.loss_settings: dict[str, Any] = {"clip_low": clip_low, "clip_high": clip_high}
        if dual_clip is not None:
            if "dual_clip" not in inspect.signature(self.policy_loss_fn).parameters:
                raise ConfigError(
                    f"module.dual_clip={dual_clip} applies to policy_loss=ppo_clip only, "
                    f"not {policy_loss!r}; set it to null"
                )
            check_float("module.dual_clip", dual_clip, 1.0, exclusive_minimum=True)
            self.loss_settings["dual_clip"] = dual_clip
        self.policy_loss, self.loss_aggregation = policy_loss, loss_aggregation
        self.automatic_optimization = False  # mu updates per generation batch
        self.engine_factory = engine or HFRolloutEngine
        settings = engine if isinstance(engine, RolloutConfig) else None
        self.async_steps = settings.async_steps if settings else 0
        self.max_staleness = settings.max_staleness if settings else 1
        if self.async_steps and is_correction is None:
            # Off-policy samples: the loss is weighted by min(pi_trainer / pi_sampler, is_cap).
            is_correction = "token"
        self.is_level, self.is_cap = is_correction, is_cap
        self.group_size = group_size
        self.sampling = sampling_params(sampling)
        self.kl_coef, self.kl_estimator = kl_coef, kl_estimator
        self.inner_updates, self.micro_batch_prompts = inner_updates, micro_batch_prompts
        self.mask_truncated = mask_truncated
        self.max_grad_norm, self.shared_prefix = max_grad_norm, shared_prefix
        self.reflection_words = tuple(reflection_words or REFLECTION_WORDS)
        # benchmark presets scored every N steps (val/<name>/pass@1); off without names
        self.val_benchmarks = (
            ValBenchmarks(**val_benchmarks)
            if val_benchmarks and val_benchmarks.get("names")
            else None
        )
        self._benchmarked_at: int | None = None
        self.sample_table_every = check_int("module.sample_table_every", sample_table_every, 0)
        self.ref_model: torch.nn.Module | None = None  # only loaded when kl_coef > 0
        self.engine = None
        self.producer: RolloutProducer | None = None
        self.rollouts: OffPolicyRollouts | None = None  # async_steps=1, from on_train_start
        self.pending: PendingRollout | None = None  # async: the batch the next step trains on
        self._staleness_warned = False
        # train/reward and its terms, one value per logged step of this process (the summary
        # compares the first steps with the last)
        self.reward_history: dict[str, list[float]] = {}
        self._logged_step_metrics: set[str] = set()

    # -- what subclasses supply -------------------------------------------------------------
    def make_producer(self, engine) -> RolloutProducer:
        """Generates and scores each batch. By default it computes no advantages (zeros):
        `prepare` does (PPO: its critic's GAE; on-policy distillation: the teacher's)."""
        return RolloutProducer(
            engine,
            self.reward,
            self.sampling,
            self.group_size,
            advantage=None,
            sample_every=self.sample_table_every,
        )

    def prepare(self, scored: ScoredRollout, batch: UpdateBatch) -> None:
        """Fill `batch` (advantages, extras) once per generation batch, without gradients."""

    def micro_batch_loss(
        self, batch: UpdateBatch, keep: torch.Tensor, epoch: int, denominators
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The loss of the prompts `keep` and its stats: the policy term alone, aggregated
        (GRPO, on-policy distillation; PPO adds its critic's)."""
        num_sequences, num_tokens, share = denominators
        rows = keep.repeat_interleave(self.group_size)
        part = select_groups(batch.rollout, keep)
        logprobs, entropy = self._logprobs(self.model, part, self.entropy_coef > 0)
        per_token, stats = self.policy_term(batch, part, rows, logprobs, entropy, epoch, share)
        loss = self.world_size * aggregate_loss(
            per_token,
            batch.mask[rows],
            self.loss_aggregation,
            num_sequences=num_sequences,
            num_tokens=num_tokens,
            max_tokens=self.sampling.max_new_tokens,
        )
        return loss, stats

    def minibatches(self, num_prompts: int) -> list[torch.Tensor]:
        """Boolean prompt masks [B], one optimizer step each (default: the whole batch)."""
        return [torch.ones(num_prompts, dtype=torch.bool)]

    def finish(self, batch: UpdateBatch, metrics: dict[str, float]) -> None:
        """Add the subclass's own metrics after the update."""

    # -- setup --------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        if self.async_steps and self.world_size > 1:
            raise ConfigError(
                f"rollout.async_steps={self.async_steps} runs in one process (one device) for "
                f"now, not {self.world_size}; set rollout.async_steps=0"
            )
        if uses_deepspeed(self._trainer) and self.micro_batch_tokens is not None:
            log.info(
                "module.micro_batch_tokens=%s is not applied under DeepSpeed (its engine steps "
                "after every backward): data.batch_size bounds the step's memory",
                self.micro_batch_tokens,
            )
            self.micro_batch_tokens = None
        if self.checkpoint_above_tokens is not None and not uses_deepspeed(self._trainer):
            self.switchable_checkpointing = switchable_checkpointing(self.model)
            long_groups = (
                self.group_size * self.sampling.max_new_tokens > self.checkpoint_above_tokens
            )
            if long_groups and self.release_large_blocks:
                # the recompute's saved layer inputs would fragment the tuned heap (9 GB
                # instead of 3 for one 8 x 1,024-token group's forward and backward)
                malloc.return_large_blocks()
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

    def configure_callbacks(self):
        # The earliest hook that sees the trainer (its precision), before any logger writes:
        # the engine is built here, so one that cannot start (rollout=vllm without vLLM) fails
        # before anything is written. The module registers no callback.
        if self.producer is None and not self.async_steps:
            self.engine = self.engine_factory(
                model=self.model, tokenizer=self.tokenizer, autocast_dtype=self.autocast_dtype
            )
            self.producer = self.make_producer(self.engine)
        return []

    @property
    def autocast_dtype(self) -> str | None:
        precision = str(self.trainer.precision) if self._trainer else ""
        return "bfloat16" if "bf16" in precision else "float16" if "16" in precision else None

    def networks(self) -> list[torch.nn.Module]:
        return super().networks() + ([self.ref_model] if self.ref_model is not None else [])

    def on_train_start(self) -> None:
        super().on_train_start()
        reset_peak_memory()
        if self.async_steps:
            if self.rollouts is None:  # the copy is made here, where the policy is on its device
                weights = sampler_copy(self.model)
                engine = self.engine_factory(
                    model=weights, tokenizer=self.tokenizer, autocast_dtype=self.autocast_dtype
                )
                self.rollouts = OffPolicyRollouts(self.make_producer(engine), weights)
            return
        self.engine.update_weights(self.model)  # a resumed run restored the weights since

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        """module.val_benchmarks: score the presets' subsets with the current weights at step
        0 and after every every_n_steps optimizer steps, logged at this step."""
        step = self.global_step
        if self.val_benchmarks is None or step == self._benchmarked_at:
            return
        if not self.val_benchmarks.due(step):
            return
        self._benchmarked_at = step
        engine = self.engine or HFRolloutEngine(
            model=self.model, tokenizer=self.tokenizer, autocast_dtype=self.autocast_dtype
        )
        metrics = self.val_benchmarks.evaluate(engine, self.tokenizer, self.val_sampling)
        # Straight to the loggers, at the logging step of this batch's training metrics: a
        # value self.log'ed in this hook is logged again at every later step of the epoch.
        at = self.trainer.fit_loop.epoch_loop._batches_that_stepped
        for logger in self.trainer.loggers:
            logger.log_metrics(metrics, step=at)

    def on_train_end(self) -> None:
        if self.rollouts is not None:
            self.rollouts.close()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        # An async run's batch generated for the next step: with it a resumed run continues
        # exactly where the interrupted one stood (no thread runs between steps).
        if self.pending is not None:
            checkpoint[PENDING_KEY] = self.pending.state_dict()
        # Frozen networks (the reference: the starting policy; a distillation teacher) are
        # rebuilt from their config on resume, except where the strategy loads the weights
        # itself, strictly, before any hook runs (FSDP, DeepSpeed): there they stay in the
        # checkpoint.
        strategy = self._trainer.strategy if self._trainer is not None else None
        if hasattr(strategy, "shard") or uses_deepspeed(self._trainer):
            return
        prefixes = tuple(f"{name}." for name in self.frozen_networks())
        checkpoint["state_dict"] = {
            k: v for k, v in checkpoint["state_dict"].items() if not k.startswith(prefixes)
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        if PENDING_KEY in checkpoint:
            if self.async_steps:
                self.pending = PendingRollout.from_state_dict(checkpoint[PENDING_KEY])
            else:
                log.warning(
                    "the checkpoint holds a batch an async run generated for its next step; "
                    "this run is synchronous (rollout.async_steps=0) and does not train on it"
                )
        if "state_dict" in checkpoint:  # (sharded: loaded)
            frozen = {
                f"{name}.{k}": v
                for name, network in self.frozen_networks().items()
                for k, v in network.state_dict().items()
            }
            checkpoint["state_dict"] = {**checkpoint["state_dict"], **frozen}

    def frozen_networks(self) -> dict[str, torch.nn.Module]:
        """Attribute name -> network for the networks no optimizer updates and no checkpoint
        needs to hold (rebuilt from config)."""
        return {"ref_model": self.ref_model} if self.ref_model is not None else {}

    # -- forwards -----------------------------------------------------------------------------
    def _logprobs(self, model, part: Rollout, entropy_grad: bool = False):
        return completion_logprobs(
            model,
            part.prompt_ids,
            part.prompt_mask,
            part.completion_ids,
            part.completion_mask,
            self.group_size,
            temperature=self.sampling.temperature or 1.0,
            shared_prefix=self.shared_prefix,
            entropy_grad=entropy_grad,
            logit_chunk_tokens=self.logit_chunk_tokens,
        )

    def micro_batches(self, keep: torch.Tensor, row_tokens: int) -> list[torch.Tensor]:
        """The prompts of `keep` [B] in micro-batches of at most micro_batch_prompts prompts
        and at most micro_batch_tokens padded tokens (G rows of `row_tokens` each per prompt),
        but at least one prompt: a group is never split. The token budget is what bounds the
        training forward's activations as completions grow (they, not the logits, are most of
        a long step's memory)."""
        chosen = keep.nonzero().flatten()
        size = self.micro_batch_prompts or max(len(chosen), 1)
        if self.micro_batch_tokens is not None:
            size = min(size, max(1, self.micro_batch_tokens // (self.group_size * row_tokens)))
        masks = []
        for start in range(0, len(chosen), size):
            part = torch.zeros_like(keep)
            part[chosen[start : start + size]] = True
            masks.append(part)
        return masks

    def checkpointing_for(self, tokens: int):
        """Activation checkpointing for a micro-batch of `tokens` padded tokens: on above
        module.checkpoint_above_tokens (a group longer than the token budget, which never
        splits a group), off below, where it would only cost time."""
        if not self.switchable_checkpointing:
            return contextlib.nullcontext()
        return layer_checkpointing(self.model, tokens > self.checkpoint_above_tokens)

    @torch.no_grad()
    def logprobs_of(self, model, rollout: Rollout) -> torch.Tensor:
        """[N, C] log-probs under `model`, no gradient, micro-batch by micro-batch."""
        everything = torch.ones(rollout.num_prompts, dtype=torch.bool, device=self.device)
        return torch.cat(
            [
                self._logprobs(model, select_groups(rollout, keep))[0]
                for keep in self.micro_batches(everything, row_tokens(rollout))
            ]
        )

    def reference_logprobs(self, rollout: Rollout) -> torch.Tensor:
        if hasattr(self.model, "disable_adapter"):  # LoRA: the reference is the base model
            with self.model.disable_adapter():
                return self.logprobs_of(self.model, rollout)
        return self.logprobs_of(self.ref_model, rollout)

    def denominators(self, mask: torch.Tensor, rows: torch.Tensor):
        """(sequences, tokens, world / tokens) of the rows of one optimizer step over every
        rank. Data-parallel gradients are averaged over ranks, so each rank's share of the
        global loss is scaled by their number (see `scaled`)."""
        gather = self.all_gather if self.world_size > 1 else (lambda tensor: tensor)
        num_tokens = gather(mask[rows].sum()).sum().clamp(min=1)
        num_sequences = gather(torch.tensor(float(int(rows.sum())), device=self.device)).sum()
        return num_sequences, num_tokens, float(self.world_size) / num_tokens

    # -- the loss pieces both stages share ----------------------------------------------------
    def policy_term(
        self,
        batch: UpdateBatch,
        part: Rollout,
        rows: torch.Tensor,
        logprobs: torch.Tensor,
        entropy: torch.Tensor,
        epoch: int,
        share,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Per-token policy loss [n, C] of the rows `rows` (already forwarded: `logprobs`,
        `entropy`), and their stats: clipped fraction, entropy."""
        m = batch.mask[rows]
        old = batch.old_logprobs[rows] if batch.old_logprobs is not None else logprobs.detach()
        per_token, clipped = self.policy_loss_fn(
            logprobs, old, batch.advantages[rows], m, **self.loss_settings
        )
        if epoch == 0 or self.is_level is not None:  # measured once, applied always
            weights, ratios = truncated_importance_weights(
                old, part.sampling_logprobs, m, self.is_level or "token", self.is_cap
            )
            if epoch == 0:
                batch.mismatch.append((ratios, m))
            if self.is_level is not None:
                per_token = per_token * weights
        if batch.ref_logprobs is not None:
            ref = batch.ref_logprobs[rows]
            if epoch == 0:
                batch.kl += float((k3(old, ref) * m).sum() * batch.token_share)
            if self.kl_in_loss:
                per_token = per_token + batch.kl_coef * kl_estimate(
                    logprobs, ref, self.kl_estimator
                )
        if self.entropy_coef:
            per_token = per_token - self.entropy_coef * entropy
        stats = {
            "train/clip_ratio": float((clipped.float() * m).sum() * share),
            "train/entropy": float((entropy.detach() * m).sum() * share),
        }
        return per_token, stats

    @property
    def kl_in_loss(self) -> bool:
        return True

    # -- one step -----------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        if self.async_steps:
            self.off_policy_step(batch)
        else:
            self.update(self.producer.produce(batch, self.global_step))

    def off_policy_step(self, batch: dict[str, Any]) -> None:
        """rollout.async_steps=1: train on the batch generated last step while the producer
        thread generates `batch` from the weights before this update; every prompt batch is
        trained on once, one step after it arrives.

        The first step (and one after a batch could not be started) only generates: the
        pipeline fills. A batch is started beside the update only when the update's optimizer
        steps keep it within rollout.max_staleness, and not beside the run's last update (it
        would be discarded); otherwise it is generated after the update, from the new weights.
        """
        started = time.perf_counter()
        rollouts, pending, self.pending = self.rollouts, self.pending, None
        if pending is None:
            self.pending = rollouts.generate(batch, self.model, self.global_step)
            # Lightning counts this batch as a logging step, though nothing trained: uncounted,
            # so metrics of optimizer step k are logged at step k as in a synchronous run.
            self.trainer.fit_loop.epoch_loop._batches_that_stepped -= 1
            return
        scored = pending.scored
        # Shuffles drawn here, before the thread starts: the update then draws no randomness.
        plan = [self.minibatches(scored.rollout.num_prompts) for _ in range(self.inner_updates)]
        steps = sum(len(epoch) for epoch in plan)
        max_steps = self.trainer.max_steps if self._trainer is not None else -1
        last = max_steps > 0 and self.global_step + steps >= max_steps
        beside = steps <= self.max_staleness and not last
        if steps > self.max_staleness and not self._staleness_warned:
            self._staleness_warned = True
            log.warning(
                "a generation batch takes %d optimizer steps, more than rollout.max_staleness="
                "%d: batches are generated after each update, without overlap; set "
                "rollout.max_staleness=%d for one-step-off-policy rollouts",
                steps,
                self.max_staleness,
                steps,
            )
        scored.metrics["rollout/staleness"] = float(self.global_step - pending.sampled_at)
        if beside:
            rollouts.start(batch, self.model, self.global_step)
        try:
            metrics, num_prompts = self.train_on(scored, plan)
        except BaseException:
            rollouts.wait()
            raise
        waiting = time.perf_counter()
        if beside:
            self.pending = rollouts.result()
        elif not (max_steps > 0 and self.global_step >= max_steps):
            self.pending = rollouts.generate(batch, self.model, self.global_step)
        metrics["rollout/wait_s"] = time.perf_counter() - waiting if beside else 0.0
        metrics["perf/step_s"] = time.perf_counter() - started
        self.log_metrics(metrics, num_prompts)

    def update(self, scored: ScoredRollout) -> None:
        """The policy update on one scored generation batch, then its metrics logged."""
        self.log_metrics(*self.train_on(scored))

    def train_on(
        self, scored: ScoredRollout, plan: list[list[torch.Tensor]] | None = None
    ) -> tuple[dict[str, float], int]:
        """The policy update on one scored generation batch -> (metrics, prompts). plan: the
        minibatch masks of each epoch, drawn in advance (else drawn epoch by epoch)."""
        if scored.samples:
            self.record_samples(scored.samples)
        rollout = scored.rollout.to(self.device)
        mask = rollout.completion_mask.float()
        if self.mask_truncated:
            mask = mask * rollout.finished.float()[:, None]
        everything = torch.ones(mask.shape[0], dtype=torch.bool, device=self.device)
        batch = UpdateBatch(
            rollout,
            mask,
            scored.advantages.to(self.device),
            kl_coef=self.kl_coef,
            token_share=self.denominators(mask, everything)[2],
        )
        if self.kl_coef > 0:
            batch.ref_logprobs = self.reference_logprobs(rollout)
        self.prepare(scored, batch)

        optimizer, scheduler = self.optimizers(), self.lr_schedulers()
        totals: dict[str, float] = {}
        steps = 0
        for epoch in range(self.inner_updates):
            for keep in plan[epoch] if plan else self.minibatches(rollout.num_prompts):
                keep = keep.to(self.device)
                optimizer.zero_grad()
                denominators = self.denominators(mask, keep.repeat_interleave(self.group_size))
                width = row_tokens(rollout)
                micros = self.micro_batches(keep, width)
                step: dict[str, float] = {}
                for i, micro in enumerate(micros):
                    with self.checkpointing_for(int(micro.sum()) * self.group_size * width):
                        loss, stats = self.micro_batch_loss(batch, micro, epoch, denominators)
                        # DDP all-reduces once per optimizer step: in the last micro-batch's
                        # backward
                        with self.gradient_sync(i == len(micros) - 1):
                            self.manual_backward(loss)
                    for name, value in {"train/loss": float(loss.detach()), **stats}.items():
                        step[name] = step.get(name, 0.0) + value
                grad_norm = self._clip_gradients(optimizer)
                if not self.nonfinite.allows(step["train/loss"], grad_norm, self.global_step):
                    optimizer.zero_grad(set_to_none=True)  # skip: weights and moments unchanged
                    continue
                optimizer.step()
                scheduler.step()
                # An autocast region that caches (a caller's, or the HF engine's, which now runs
                # inside the step) keeps each weight's bf16 copy until the outermost region
                # exits: dropped here, no later forward can see pre-step weights. (Lightning's
                # own bf16-mixed region does not cache.)
                torch.clear_autocast_cache()
                steps += 1
                step["train/grad_norm"] = float("nan") if grad_norm is None else grad_norm
                for name, value in step.items():
                    totals[name] = totals.get(name, 0.0) + value
        if self.engine is not None:  # (None: driven without a trainer, as tests do)
            self.engine.update_weights(self.model)

        metrics = dict(scored.metrics)
        metrics.update(
            {
                f"train/{k}": v
                for k, v in reflection_stats(rollout.texts, self.reflection_words).items()
            }
        )
        metrics.update(self.behaviour(scored))
        metrics["train/skipped_steps"] = float(self.nonfinite.skipped)
        metrics.update(
            {
                f"rollout/{k}": v
                for k, v in ratio_stats(
                    torch.cat([r.flatten() for r, _ in batch.mismatch]),
                    torch.cat([m.flatten() for _, m in batch.mismatch]),
                ).items()
            }
        )
        n = steps or float("nan")  # every step skipped: nothing else to report
        for name in {"train/loss", "train/clip_ratio", "train/entropy", "train/grad_norm", *totals}:
            metrics[name] = totals.get(name, 0.0) / n
        metrics["train/kl"] = batch.kl if batch.ref_logprobs is not None else math.nan
        metrics["train/lr"] = optimizer.param_groups[0]["lr"]
        self.finish(batch, metrics)
        metrics["perf/step_s"] = time.perf_counter() - scored.started
        return metrics, rollout.num_prompts

    def behaviour(self, scored: ScoredRollout) -> dict[str, float]:
        """train/ behaviour metrics of the trained rollout (r1.eval.behaviour), split by the
        outcome and level the producer recorded for each row."""
        rollout = scored.rollout
        correct = scored.correct.tolist() if scored.correct is not None else []
        metrics = behaviour_metrics(
            rollout.texts,
            rollout.completion_lengths.tolist(),
            correct=[None if c != c else c == 1.0 for c in correct] or None,
            levels=scored.levels or None,
            words=self.reflection_words,
        )
        return {f"train/{name}": value for name, value in metrics.items()}

    def record_samples(self, rows: list[dict[str, Any]]) -> None:
        """The sample table: appended to <run dir>/samples.jsonl; also a W&B table when W&B
        logs."""
        trainer = self._trainer
        if trainer is None:
            return
        if trainer.is_global_zero:
            path = Path(trainer.default_root_dir) / "samples.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a") as f:
                f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        columns = list(rows[0])
        for logger in trainer.loggers:
            if hasattr(logger, "log_table"):
                data = [[row[c] for c in columns] for row in rows]
                logger.log_table(key="train/samples", columns=columns, data=data)

    def log_metrics(self, metrics: Mapping[str, float], num_prompts: int) -> None:
        """Log this step's metrics, reduced over data-parallel ranks first (see
        r1.modules.parallel.reduce_metrics). NaN is no signal this step (a term whose task had
        no prompt in the batch): it is not logged, unless the metric was logged before, then
        it is logged as NaN. Lightning logs a step metric's last value again on every step
        until the epoch ends, so without the NaN a stale value would stand in for it."""
        if self.world_size > 1:
            metrics = reduce_metrics(self, metrics)
        for name, value in metrics.items():
            if value != value:
                if name in self._logged_step_metrics:
                    self.log(name, value, batch_size=num_prompts)
                continue
            self._logged_step_metrics.add(name)
            self.log(name, value, batch_size=num_prompts, prog_bar=name in PROGRESS_BAR)
            if name == "train/reward" or name.startswith("train/reward/"):
                self.reward_history.setdefault(name, []).append(float(value))

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


def row_tokens(rollout: Rollout) -> int:
    """Padded tokens per row in the forwards over `rollout`: prompt width + completion width."""
    return rollout.prompt_ids.shape[1] + rollout.completion_ids.shape[1]
