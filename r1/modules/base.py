"""What every training module shares: held-out validation by generation, the LR schedule."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from functools import partial
from typing import Any

import lightning as L
import torch

from r1.algorithms.schedules import warmup_cosine
from r1.checks import check_choice, check_float, check_int
from r1.eval.behaviour import behaviour_totals
from r1.eval.heldout import (
    generate_greedy,
    reward_samples,
    score_completion,
    summarize,
    unpadded,
)
from r1.eval.metrics import REFLECTION_WORDS
from r1.eval.runner import evaluate
from r1.modules.guards import NonFiniteGuard
from r1.modules.parallel import names_on_every_rank
from r1.rewards import CompositeReward
from r1.rewards.accuracy import ANSWER_SOURCES
from r1.rollout.hf import HFRolloutEngine
from r1.rollout.types import sampling_params


def unpadded_rows(batch: dict[str, Any], items: list[Any]) -> list[Any]:
    """`items` (one per row of a held-out batch) without the rows that only pad this rank's
    shard (batch["padding"]; see r1.data.datamodule.shard_for_rank)."""
    padding = batch.get("padding") or [False] * len(items)
    return [item for item, pad in zip(items, padding) if not pad]


class ReasoningModule(L.LightningModule):
    """Base of the stage modules.

    Validation generates greedily on the held-out prompts and logs `val/accuracy`,
    `val/accuracy_lenient`, `val/format_rate`, `val/stop_rate`, `val/completion_len` (see
    r1.eval.heldout for the exact definitions) and, when a reward is given, `val/reward` and
    `val/reward/<term>`. Subclasses add `val/loss` where it means something.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        optimizer: Callable[..., torch.optim.Optimizer],
        warmup_steps: int = 10,
        min_lr_ratio: float = 0.1,
        max_new_tokens: int = 128,
        num_samples_kept: int = 4,
        reward: CompositeReward | None = None,
        answer_source: str = "answer_tag",
        max_nonfinite_steps: int = 3,
        val_k: int = 0,
        val_sampling: Mapping[str, Any] | None = None,
    ):
        super().__init__()
        check_int("module.warmup_steps", warmup_steps, 0)
        check_float("module.min_lr_ratio", min_lr_ratio, 0.0, 1.0)
        check_int("module.max_new_tokens", max_new_tokens, 1)
        check_choice("module.answer_source", answer_source, ANSWER_SOURCES)
        self.val_k = check_int("module.val_k", val_k, 0)
        # the k-sample held-out protocol (conf/sampling/paper.yaml: T 0.6, top-p 0.95)
        self.val_sampling = sampling_params(
            val_sampling if val_sampling is not None else {"max_new_tokens": max_new_tokens}
        )
        self.model = model
        self.nonfinite = NonFiniteGuard(max_nonfinite_steps)
        self.tokenizer = tokenizer
        self.optimizer_factory = optimizer
        self.warmup_steps = warmup_steps
        self.min_lr_ratio = min_lr_ratio
        self.max_new_tokens = max_new_tokens  # held-out generation budget
        self.num_samples_kept = num_samples_kept
        self.reward = reward
        self.answer_source = answer_source  # where val/accuracy reads the final answer
        self.reflection_words: tuple[str, ...] = REFLECTION_WORDS  # val/reflection_rate/<word>
        self.val_samples: list[dict[str, Any]] = []  # a few held-out samples for reports
        self.validated_at_step: int | None = None  # global step of the last full validation

    @property
    def world_size(self) -> int:
        """Number of data-parallel ranks (1 when not attached to a trainer)."""
        return self._trainer.world_size if self._trainer is not None else 1

    def gradient_sync(self, enabled: bool):
        """Context for a manual backward: with enabled=False, DDP keeps the gradients local
        (accumulate micro-batches, all-reduce in the last one's backward)."""
        strategy = self._trainer.strategy if self._trainer is not None else None
        if enabled or not hasattr(strategy, "block_backward_sync"):
            return nullcontext()
        return strategy.block_backward_sync()

    def networks(self) -> list[torch.nn.Module]:
        """The networks a sharding strategy shards (subclasses add reference, critic)."""
        return [self.model]

    def configure_model(self) -> None:
        # Under strategy=fsdp (r1.strategies.FSDPStrategy) each network is sharded here, after
        # setup() built the reference copy and before the optimizer sees the parameters.
        strategy = self._trainer.strategy if self._trainer is not None else None
        if hasattr(strategy, "shard"):
            for network in self.networks():
                strategy.shard(network, like=self.model)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["nonfinite_guard"] = self.nonfinite.state_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if "nonfinite_guard" in checkpoint:
            self.nonfinite.load_state_dict(checkpoint["nonfinite_guard"])

    def on_train_start(self) -> None:
        self.model.train()  # from_pretrained returns eval mode; Lightning preserves module modes

    def transfer_batch_to_device(
        self, batch: Any, device: torch.device, dataloader_idx: int
    ) -> Any:
        # Problem records are frozen dataclasses, which Lightning's device transfer rejects.
        problems = batch.pop("problems", None) if isinstance(batch, dict) else None
        batch = super().transfer_batch_to_device(batch, device, dataloader_idx)
        if problems is not None:
            batch["problems"] = problems
        return batch

    def on_validation_epoch_start(self) -> None:
        self.val_samples = []
        self._val_totals: dict[str, list[float]] = {}  # name -> [sum of value x items, items]

    def on_validation_epoch_end(self) -> None:
        # Exact means over every held-out item of every rank: weighted sums are gathered once
        # here (the names of all ranks, in one order), not synced per batch.
        names = names_on_every_rank(list(self._val_totals)) if self.world_size > 1 else None
        names = names or sorted(self._val_totals)
        totals = torch.tensor(
            [self._val_totals.get(n, [0.0, 0.0]) for n in names], dtype=torch.float64
        )
        if self.world_size > 1:
            totals = self.all_gather(totals.to(self.device)).sum(0).cpu()
        for name, (weighted, items) in zip(names, totals.tolist()):
            if items > 0:  # (the same value on every rank now; sync_dist only says so)
                self.log(name, weighted / items, prog_bar=name == "val/accuracy", sync_dist=True)
        if not self.trainer.sanity_checking:
            self.validated_at_step = self.trainer.global_step

    def accumulate_val(self, metrics: dict[str, float], items: int) -> None:
        """Add a batch's mean metrics over `items` held-out items (NaN: no signal, no weight)."""
        for name, value in metrics.items():
            value = float(value)
            totals = self._val_totals.setdefault(name, [0.0, 0.0])
            if not math.isnan(value) and items:
                totals[0] += value * items
                totals[1] += items

    @property
    def held_out_stop(self) -> tuple[str, ...]:
        """The stop strings of the RL rollouts (module.sampling.stop; none in SFT): the greedy
        held-out generation ends at them too, as the policy was trained to."""
        sampling = getattr(self, "sampling", None)
        return tuple(sampling.stop) if sampling is not None else ()

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        # Every row is generated (sharded models gather parameters collectively, so the ranks
        # run alike); rows that only pad this rank's shard are left out of the metrics.
        completions = generate_greedy(
            self.model,
            self.tokenizer,
            batch["prompt_ids"],
            batch["prompt_mask"],
            self.max_new_tokens,
            self.held_out_stop,
        )
        problems, prompts, completions = (
            unpadded_rows(batch, items)
            for items in (batch["problems"], batch["prompts"], completions)
        )
        scores = [score_completion(p, c, self.answer_source) for p, c in zip(problems, completions)]
        metrics = {f"val/{k}": v for k, v in summarize(scores, completions).items()}
        self.accumulate_behaviour(problems, completions, scores)
        if self.val_k:
            metrics.update(self._sampled_metrics(batch))
        if self.reward is not None:
            samples = reward_samples(problems, prompts, completions, self.max_new_tokens)
            metrics.update(self.reward.score(samples, step=self.global_step).metrics("val"))
        self.accumulate_val(metrics, len(problems))
        for problem, completion, score in zip(problems, completions, scores):
            if len(self.val_samples) < self.num_samples_kept:
                self.val_samples.append(
                    {
                        "question": problem.question,
                        "gold": problem.answer,
                        "completion": completion.text,
                        "correct": score.correct,
                    }
                )

    def accumulate_behaviour(self, problems, completions, scores) -> None:
        """val/ behaviour metrics (r1.eval.behaviour) of a held-out batch, each weighted by
        the completions it is a mean over (the right ones for completion_len_correct, ...)."""
        totals = behaviour_totals(
            [c.text for c in completions],
            [c.num_tokens for c in completions],
            correct=[s.correct for s in scores],
            levels=[p.meta.get("level") for p in problems],
            words=self.reflection_words,
            languages=[p.meta.get("language") for p in problems],
        )
        for name, (total, count) in totals.items():
            if count:
                self.accumulate_val({f"val/{name}": total / count}, count)

    def _sampled_metrics(self, batch: dict[str, Any]) -> dict[str, float]:
        """The paper's protocol on this batch: `val_k` completions per prompt sampled with
        `val_sampling` (the paper's T 0.6, top-p 0.95 by default) -> val/pass@1 (their mean),
        val/pass@k, val/cons@k."""

        def kept(items):
            return unpadded_rows(batch, items)

        prompts = kept(unpadded(batch["prompt_ids"], batch["prompt_mask"]))
        report = evaluate(
            HFRolloutEngine(self.model, self.tokenizer),
            kept(batch["problems"]),
            kept(batch["prompts"]),
            prompts,
            k=self.val_k,
            params=self.val_sampling,
            answer_source=self.answer_source,
            batch_size=max(len(prompts), 1),
            progress=False,
        )
        return {f"val/{name}": report.metrics[name] for name in ("pass@1", "pass@k", "cons@k")}

    def lr_scheduler(self, optimizer: torch.optim.Optimizer, total_steps: int):
        schedule = partial(
            warmup_cosine,
            warmup_steps=self.warmup_steps,
            total_steps=max(total_steps, 1),
            min_ratio=self.min_lr_ratio,
        )
        return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)

    def configure_optimizers(self):
        optimizer = self.optimizer_factory([p for p in self.model.parameters() if p.requires_grad])
        scheduler = self.lr_scheduler(optimizer, int(self.trainer.estimated_stepping_batches))
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }
