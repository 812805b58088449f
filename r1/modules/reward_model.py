"""Training an outcome reward model (`stage=rm`) on preference pairs or labelled responses."""

from __future__ import annotations

from typing import Any

import torch

from r1.algorithms.losses import bradley_terry_loss, pointwise_bce
from r1.checks import ConfigError
from r1.data.preferences import OBJECTIVES
from r1.models.reward_model import reward_model_from_policy, sequence_scores
from r1.modules.base import unpadded_rows
from r1.modules.sft import SFTModule


class RewardModelModule(SFTModule):
    """The policy's backbone with a new one-output head read at the last token
    (r1.models.reward_model: a sequence classifier, which the `reward_model` reward term loads
    from the run's checkpoint). The loop, LR schedule and non-finite guard are SFT's.

    objective=pairwise: Bradley-Terry on (prompt, chosen, rejected); a batch holds the chosen
    answers then the rejected ones, scored in one forward. Held-out metrics, on questions
    never trained on:
    - val/loss: the Bradley-Terry loss;
    - val/pair_accuracy: pairs where score(chosen) > score(rejected) (a tie is a miss);
      val/pair_accuracy/<violation>: the same over the pairs whose rejected answer breaks
      that rule (where the data says which);
    - val/margin: the mean of score(chosen) - score(rejected).
    objective=pointwise (a safety classifier): binary cross-entropy of sigmoid(score) against
    each response's 0/1 label. Held-out: val/loss; val/accuracy, the share where
    sigmoid(score) >= 0.5 agrees with the label; val/accuracy/<violation> (`none`: the
    responses that break no rule).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        optimizer,
        objective: str = "pairwise",
        **base: Any,
    ):
        if objective not in OBJECTIVES:
            raise ConfigError(
                f"module.objective={objective!r} (stage=rm sets it from rm.objective) is not "
                f"valid; choose one of: {', '.join(OBJECTIVES)}"
            )
        reward_model = reward_model_from_policy(model, tokenizer.pad_token_id)
        super().__init__(reward_model, tokenizer, optimizer, **base)
        self.objective = objective

    def _check_batch(self, batch: dict[str, Any]) -> None:
        given = "pointwise" if "labels" in batch else "pairwise"
        if given != self.objective:
            raise ConfigError(
                f"module.objective={self.objective} but the data gives {given} rows; set "
                "rm.objective, which both the data and the module follow"
            )

    def completion_loss(self, batch: dict[str, Any]) -> torch.Tensor:
        self._check_batch(batch)
        scores = sequence_scores(self.model, batch)
        if self.objective == "pointwise":
            return pointwise_bce(scores, batch["labels"])
        pairs = len(batch["violations"])
        return bradley_terry_loss(scores[:pairs], scores[pairs:])

    def log_batch_size(self, batch: dict[str, Any]) -> None:
        name = "train/pairs" if self.objective == "pairwise" else "train/responses"
        self.log(name, float(len(batch["violations"])))

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._check_batch(batch)
        scores = sequence_scores(self.model, batch)
        count = len(batch["violations"])
        # rows that only pad this rank's shard are left out (r1.data.datamodule.shard_for_rank)
        real = unpadded_rows(batch, list(range(count)))
        violations = [batch["violations"][i] for i in real]
        index = torch.tensor(real, dtype=torch.long, device=scores.device)
        if self.objective == "pointwise":
            logits, labels = scores[index], batch["labels"][index]
            right = ((torch.sigmoid(logits) >= 0.5) == (labels >= 0.5)).float()
            self.accumulate_val(
                {
                    "val/loss": float(pointwise_bce(logits, labels)),
                    "val/accuracy": float(right.mean()),
                },
                len(real),
            )
            self._by_violation("val/accuracy", right, violations)
            return
        chosen, rejected = scores[:count][index], scores[count:][index]
        wins = (chosen > rejected).float()
        self.accumulate_val(
            {
                "val/loss": float(bradley_terry_loss(chosen, rejected)),
                "val/pair_accuracy": float(wins.mean()),
                "val/margin": float((chosen - rejected).mean()),
            },
            len(real),
        )
        self._by_violation("val/pair_accuracy", wins, violations)

    def _by_violation(self, name: str, hits: torch.Tensor, violations: list[str]) -> None:
        """`name`/<violation>: the mean of `hits` over the rows of each known violation."""
        for violation in sorted(set(violations) - {""}):
            rows = [i for i, v in enumerate(violations) if v == violation]
            self.accumulate_val({f"{name}/{violation}": float(hits[rows].mean())}, len(rows))
