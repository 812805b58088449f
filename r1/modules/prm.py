"""Training a process reward model (`stage=prm`) on Math-Shepherd step labels."""

from __future__ import annotations

from typing import Any

import torch

from r1.algorithms.losses import step_bce
from r1.models.prm import prm_from_policy, step_logits
from r1.modules.base import unpadded_rows
from r1.modules.sft import SFTModule


class PRMModule(SFTModule):
    """The policy's backbone with a new one-output head (r1.models.prm), trained with binary
    cross-entropy at step ends. The loop, LR schedule and non-finite guard are SFT's; the
    loss and the validation differ. Held-out metrics, on questions never trained on:
    - val/loss: the step loss;
    - val/step_accuracy: steps where score >= 0.5 agrees with label >= 0.5;
    - val/solution_accuracy: solutions where the min step score >= 0.5 agrees with the outcome
      (the last step's label: the final answer right), i.e. the PRM used as a verifier;
    - val/mean_score: the mean step score.
    """

    def __init__(self, model: torch.nn.Module, tokenizer: Any, optimizer, **base: Any):
        super().__init__(prm_from_policy(model), tokenizer, optimizer, **base)

    def completion_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return step_bce(step_logits(self.model, batch), batch["step_labels"], batch["step_mask"])

    def log_batch_size(self, batch: dict[str, torch.Tensor]) -> None:
        self.log("train/steps", batch["step_mask"].sum().float())

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        logits = step_logits(self.model, batch)
        # rows that only pad this rank's shard are left out (r1.data.datamodule.shard_for_rank)
        real = torch.tensor(unpadded_rows(batch, list(range(len(logits)))), dtype=torch.long)
        logits, labels, mask = logits[real], batch["step_labels"][real], batch["step_mask"][real]
        steps = int(mask.sum())
        scores = torch.sigmoid(logits)
        agree = ((scores >= 0.5) == (labels >= 0.5)) & mask
        weakest = torch.where(mask, scores, torch.ones_like(scores)).min(1).values
        last = mask.sum(1) - 1
        outcome = labels.gather(1, last.clamp(min=0)[:, None])[:, 0] >= 0.5
        self.accumulate_val(
            {
                "val/loss": float(step_bce(logits, labels, mask)),
                "val/step_accuracy": float(agree.sum()) / max(steps, 1),
                "val/mean_score": float((scores * mask).sum()) / max(steps, 1),
            },
            steps,
        )
        self.accumulate_val(
            {"val/solution_accuracy": float(((weakest >= 0.5) == outcome).float().mean())},
            len(logits),
        )
