"""Supervised fine-tuning (cold start, rejection-sampling SFT, distillation)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import lightning as L
import torch

from r1.algorithms.losses import IGNORE_INDEX, next_token_nll
from r1.algorithms.schedules import warmup_cosine
from r1.eval.heldout import generate_greedy, score_completion, summarize


class SFTModule(L.LightningModule):
    """Next-token loss on completion tokens only (prompt tokens carry IGNORE_INDEX labels).

    Validation reports `val/loss` (teacher-forced) and, by greedy generation on the held-out
    prompts, `val/accuracy`, `val/accuracy_lenient`, `val/format_rate`, `val/stop_rate` and
    `val/completion_len` (see r1.eval.heldout for the exact definitions).
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
    ):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.optimizer_factory = optimizer
        self.warmup_steps = warmup_steps
        self.min_lr_ratio = min_lr_ratio
        self.max_new_tokens = max_new_tokens
        self.num_samples_kept = num_samples_kept
        self.val_samples: list[dict[str, Any]] = []  # a few (prompt, completion) pairs for reports
        self.validated_at_step: int | None = None  # global step of the last full validation

    def on_train_start(self) -> None:
        self.model.train()  # from_pretrained returns eval mode; Lightning preserves module modes

    def completion_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        input_ids, labels = batch["input_ids"], batch["labels"]  # [B, T]
        targets = labels[:, 1:]  # the token each position predicts
        labelled = (targets != IGNORE_INDEX).any(0).nonzero()
        start = int(labelled[0]) if len(labelled) else 0
        # The LM head only runs where some row has a label: on short-answer data most of the
        # sequence is prompt, and the vocabulary projection is a large share of the compute.
        keep = torch.arange(start, input_ids.shape[1] - 1, device=input_ids.device)
        output = self.model(
            input_ids=input_ids,
            attention_mask=batch.get("attention_mask"),
            position_ids=batch.get("position_ids"),
            use_cache=False,  # also required for packed rows to be masked block-diagonally
            logits_to_keep=keep,
        )
        return next_token_nll(output.logits, targets[:, start:])

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self.completion_loss(batch)
        num_tokens = (batch["labels"] != IGNORE_INDEX).sum()
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/completion_tokens", num_tokens.float())
        self.log("train/lr", self.optimizers().param_groups[0]["lr"])
        return loss

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
        n = len(problems)
        if "labels" in batch:
            self.log("val/loss", self.completion_loss(batch), batch_size=n, sync_dist=True)
        completions = generate_greedy(
            self.model,
            self.tokenizer,
            batch["prompt_ids"],
            batch["prompt_mask"],
            self.max_new_tokens,
        )
        scores = [score_completion(p, c) for p, c in zip(problems, completions)]
        for name, value in summarize(scores, completions).items():
            self.log(
                f"val/{name}", value, batch_size=n, sync_dist=True, prog_bar=name == "accuracy"
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

    def configure_optimizers(self):
        params = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = self.optimizer_factory(params)
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        schedule = partial(
            warmup_cosine,
            warmup_steps=self.warmup_steps,
            total_steps=total,
            min_ratio=self.min_lr_ratio,
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }
