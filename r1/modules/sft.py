"""Supervised fine-tuning (cold start, rejection-sampling SFT, distillation)."""

from __future__ import annotations

import math
from typing import Any

import torch

from r1.algorithms.losses import IGNORE_INDEX, head_token_nll, next_token_nll
from r1.models.forward import LOGIT_CHUNK_TOKENS, head_replaced
from r1.modules.base import ReasoningModule


class SFTModule(ReasoningModule):
    """Next-token loss on completion tokens only (prompt tokens carry IGNORE_INDEX labels).
    Validation adds the teacher-forced `val/loss` to the held-out generation metrics."""

    def completion_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        input_ids, labels = batch["input_ids"], batch["labels"]  # [B, T]
        targets = labels[:, 1:]  # the token each position predicts
        inputs = {
            "input_ids": input_ids,
            "attention_mask": batch.get("attention_mask"),
            "position_ids": batch.get("position_ids"),
            "use_cache": False,  # also required for packed rows to be masked block-diagonally
        }
        labelled = (targets != IGNORE_INDEX).any(0).nonzero()
        start = int(labelled[0]) if len(labelled) else 0
        # The LM head only runs where some row has a label: on short-answer data most of the
        # sequence is prompt, and the vocabulary projection is a large share of the compute.
        keep = torch.arange(start, input_ids.shape[1] - 1, device=input_ids.device)
        labelled_tokens = int((targets != IGNORE_INDEX).sum())
        if labelled_tokens > LOGIT_CHUNK_TOKENS:
            # Only the labelled positions' logits, a chunk at a time (r1.models.forward).
            def nll(hidden: torch.Tensor, project) -> torch.Tensor:
                return head_token_nll(hidden, project, targets[:, start:], LOGIT_CHUNK_TOKENS)

            with head_replaced(self.model, nll):
                per_token = self.model(**inputs, logits_to_keep=keep).logits
            return per_token.sum() / labelled_tokens
        output = self.model(**inputs, logits_to_keep=keep)
        return next_token_nll(output.logits, targets[:, start:])

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor | None:
        loss = self.completion_loss(batch)
        self._step_loss = float(loss.detach())
        self.log("train/skipped_steps", float(self.nonfinite.skipped))
        if not math.isfinite(self._step_loss):
            self.nonfinite.allows(self._step_loss, None, self.global_step)
            return None  # Lightning skips the backward pass and the update
        self.log("train/loss", loss, prog_bar=True)
        self.log_batch_size(batch)
        self.log("train/lr", self.optimizers().param_groups[0]["lr"])
        return loss

    def log_batch_size(self, batch: dict[str, torch.Tensor]) -> None:
        self.log("train/completion_tokens", (batch["labels"] != IGNORE_INDEX).sum().float())

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        grads = [p.grad for p in self.model.parameters() if p.grad is not None]
        if not grads:
            return
        grad_norm = float(torch.nn.utils.get_total_norm(grads))
        if not self.nonfinite.allows(self._step_loss, grad_norm, self.global_step):
            for p in self.model.parameters():
                p.grad = None  # the optimizer skips parameters without a gradient

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        if "labels" in batch:
            # (over every row of the batch, shard padding included)
            loss = float(self.completion_loss(batch))
            self.accumulate_val({"val/loss": loss}, len(batch["problems"]))
        super().validation_step(batch, batch_idx)
