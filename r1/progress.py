"""The console progress bar: Lightning's rich bar, labelled with the run's real budget.

RL stages train for a number of optimizer steps (`max_epochs=-1`), where Lightning's own
label reads "Epoch 0/-2". This one reads "Step 7/60" (or "Epoch 2/3" for epoch budgets),
counting the steps of earlier parts of a resumed run too.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import RichProgressBar


class BudgetProgressBar(RichProgressBar):
    def _get_train_description(self, current_epoch: int) -> str:
        trainer = self.trainer
        if trainer.max_steps is not None and trainer.max_steps > 0:
            text = f"Step {trainer.global_step}/{trainer.max_steps}"
        elif trainer.max_epochs is not None and trainer.max_epochs > 0:
            text = f"Epoch {current_epoch + 1}/{trainer.max_epochs}"
        else:
            text = f"Epoch {current_epoch + 1}"
        return f"{text:{len(self.validation_description)}}"

    def on_train_batch_end(self, trainer, pl_module, outputs: Any, batch: Any, batch_idx: int):
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        if self.progress is not None and self.train_progress_bar_id is not None:
            description = self._get_train_description(trainer.current_epoch)
            self.progress.update(self.train_progress_bar_id, description=description)
