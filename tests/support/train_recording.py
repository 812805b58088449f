"""scripts/train.py that also records, per rank, what the multi-process tests check: the
prompts of each training batch, the metrics before they are reduced over ranks, the held-out
items each validation scored, and the gathered weights at the end. Files go to $R1_RECORD_DIR/rank<r>.jsonl and params_rank<r>.pt.
Lightning relaunches sys.argv[0] for the other ranks, so they run this wrapper too."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def record(rank: int, row: dict) -> None:
    path = Path(os.environ["R1_RECORD_DIR"]) / f"rank{rank}.jsonl"
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


def inject() -> None:
    import torch

    from r1.models.gather import full_state_dict
    from r1.modules import GRPOModule

    training_step, log_metrics = GRPOModule.training_step, GRPOModule.log_metrics
    validation_end = GRPOModule.on_validation_epoch_end

    def recorded_validation_end(self):
        items = self._val_totals["val/accuracy"][1]  # held-out items this rank scored
        record(self.global_rank, {"validation_items": items})
        return validation_end(self)

    def recorded_step(self, batch, batch_idx):
        record(self.global_rank, {"step": self.global_step, "prompts": batch["prompts"]})
        return training_step(self, batch, batch_idx)

    def recorded_metrics(self, metrics, num_prompts):
        record(self.global_rank, {"step": self.global_step - 1, "metrics": dict(metrics)})
        return log_metrics(self, metrics, num_prompts)

    def on_train_end(self):
        sharded = type(next(self.model.parameters())).__name__ == "DTensor"
        record(self.global_rank, {"sharded": sharded})
        state = full_state_dict(self.model)  # collective under FSDP: every rank gathers
        torch.save(state, Path(os.environ["R1_RECORD_DIR"]) / f"params_rank{self.global_rank}.pt")

    GRPOModule.training_step = recorded_step
    GRPOModule.log_metrics = recorded_metrics
    GRPOModule.on_train_end = on_train_end
    GRPOModule.on_validation_epoch_end = recorded_validation_end


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    inject()
    # Imported and called rather than run with runpy, which would set sys.argv[0] to
    # train.py, and Lightning would launch the other rank without the recording.
    spec = importlib.util.spec_from_file_location("__main__", ROOT / "scripts" / "train.py")
    spec.loader.exec_module(importlib.util.module_from_spec(spec))  # runs its main()
