"""What every training module shares: held-out validation by generation, the LR schedule."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any

import lightning as L
import torch

from r1.algorithms.schedules import warmup_cosine
from r1.checks import check_choice, check_float, check_int
from r1.eval.heldout import (
    generate_greedy,
    reward_samples,
    score_completion,
    summarize,
    unpadded,
)
from r1.eval.runner import evaluate
from r1.modules.guards import NonFiniteGuard
from r1.rewards import CompositeReward
from r1.rewards.accuracy import ANSWER_SOURCES
from r1.rollout.hf import HFRolloutEngine
from r1.rollout.types import SamplingParams


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
    ):
        super().__init__()
        check_int("module.warmup_steps", warmup_steps, 0)
        check_float("module.min_lr_ratio", min_lr_ratio, 0.0, 1.0)
        check_int("module.max_new_tokens", max_new_tokens, 1)
        check_choice("module.answer_source", answer_source, ANSWER_SOURCES)
        self.val_k = check_int("module.val_k", val_k, 0)
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
        self.val_samples: list[dict[str, Any]] = []  # a few held-out samples for reports
        self.validated_at_step: int | None = None  # global step of the last full validation

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

    def on_validation_epoch_end(self) -> None:
        if not self.trainer.sanity_checking:
            self.validated_at_step = self.trainer.global_step

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        problems = batch["problems"]
        completions = generate_greedy(
            self.model,
            self.tokenizer,
            batch["prompt_ids"],
            batch["prompt_mask"],
            self.max_new_tokens,
        )
        scores = [score_completion(p, c, self.answer_source) for p, c in zip(problems, completions)]
        metrics = {f"val/{k}": v for k, v in summarize(scores, completions).items()}
        if self.val_k:
            metrics.update(self._sampled_metrics(batch))
        if self.reward is not None:
            samples = reward_samples(problems, batch["prompts"], completions, self.max_new_tokens)
            metrics.update(self.reward.score(samples, step=self.global_step).metrics("val"))
        for name, value in metrics.items():
            if not math.isnan(value):
                self.log(
                    name,
                    value,
                    batch_size=len(problems),
                    sync_dist=True,
                    prog_bar=name == "val/accuracy",
                )
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

    def _sampled_metrics(self, batch: dict[str, Any]) -> dict[str, float]:
        """The paper's protocol on this batch: `val_k` completions per prompt at
        temperature 0.6, top-p 0.95 -> val/pass@1 (their mean), val/pass@k, val/cons@k."""
        prompts = unpadded(batch["prompt_ids"], batch["prompt_mask"])
        report = evaluate(
            HFRolloutEngine(self.model, self.tokenizer),
            batch["problems"],
            batch["prompts"],
            prompts,
            k=self.val_k,
            params=SamplingParams(self.max_new_tokens, temperature=0.6, top_p=0.95),
            answer_source=self.answer_source,
            batch_size=len(prompts),
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
