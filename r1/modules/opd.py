"""On-policy distillation (`stage=opd`): the student samples, a frozen teacher scores every
sampled token, and the student is trained by policy gradient with each token's advantage the
negative reverse KL estimate (r1.algorithms.distillation). Against SFT on the teacher's traces
(`stage=sft` on `scripts/sample.py`'s output), the student learns from its own mistakes, where
its samples leave the teacher's distribution, with a signal on every token.

One step: the student samples B prompts x G completions (the rollout engine); the reward is
measured (train/reward, train/reward/<term>) but not trained on; the teacher's and the
student's log-probs of the sampled tokens give the advantages; then `inner_updates` optimizer
steps of the clipped policy loss, as in GRPO. Simplifications, written down:
- the teacher shares the student's tokenizer (checked: same vocabulary), as in both references;
- the teacher scores at the student's sampling temperature, so the two distributions compared
  are the ones the student samples from and the teacher's at the same temperature;
- no KL to a reference by default (module.kl_coef=0): the teacher is the anchor;
- train/teacher_tokens counts the tokens the teacher has read so far (prompts and completions,
  padding excluded): the teacher compute an SFT-distillation arm is matched against.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from r1.algorithms.distillation import reverse_kl, reverse_kl_advantages
from r1.checks import ConfigError
from r1.modules.rl import RLModule, UpdateBatch
from r1.rollout.producer import ScoredRollout


class OPDModule(RLModule):
    def __init__(self, *args: Any, teacher: Mapping[str, Any], **kwargs: Any):
        """teacher: r1.models.load_model's arguments (name or path, dtype)."""
        super().__init__(*args, **kwargs)
        if not isinstance(teacher, Mapping) or not (teacher.get("path") or teacher.get("name")):
            raise ConfigError(
                f"module.teacher={teacher!r}: on-policy distillation needs a teacher, e.g. "
                "module.teacher.path=<a trained run>/checkpoint"
            )
        self.teacher_spec = dict(teacher)
        self.teacher_model: torch.nn.Module | None = None
        self.teacher_tokens = 0  # read by the teacher so far (saved with the loop state)

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if self.teacher_model is None:
            from r1.models import load_model

            teacher, tokenizer = load_model(**self.teacher_spec)
            if tokenizer.get_vocab() != self.tokenizer.get_vocab():
                raise ConfigError(
                    f"module.teacher {self.teacher_spec}: its tokenizer's vocabulary differs "
                    "from the student's; on-policy distillation compares the two models' "
                    "log-probs of the same tokens"
                )
            self.teacher_model = teacher.eval().requires_grad_(False).to(self.device)

    def frozen_networks(self) -> dict[str, torch.nn.Module]:
        frozen = super().frozen_networks()
        if self.teacher_model is not None:
            frozen["teacher_model"] = self.teacher_model
        return frozen

    def networks(self) -> list[torch.nn.Module]:
        teacher = [self.teacher_model] if self.teacher_model is not None else []
        return super().networks() + teacher

    def prepare(self, scored: ScoredRollout, batch: UpdateBatch) -> None:
        rollout = batch.rollout
        student = self.logprobs_of(self.model, rollout)
        teacher = self.logprobs_of(self.teacher_model, rollout)
        batch.advantages = reverse_kl_advantages(student, teacher, batch.mask)
        if self.inner_updates > 1:
            batch.old_logprobs = student
        batch.extra["reverse_kl"] = reverse_kl(student, teacher, batch.mask)
        # each prompt is read once per group with shared_prefix, else once per sample
        prompt_tokens = int(rollout.prompt_mask.sum()) * (
            1 if self.shared_prefix else self.group_size
        )
        self.teacher_tokens += prompt_tokens + int(rollout.completion_mask.sum())

    def finish(self, batch: UpdateBatch, metrics: dict[str, float]) -> None:
        metrics["train/reverse_kl"] = batch.extra["reverse_kl"]
        metrics["train/teacher_tokens"] = float(self.teacher_tokens)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["opd_teacher_tokens"] = self.teacher_tokens

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        self.teacher_tokens = int(checkpoint.get("opd_teacher_tokens", 0))
