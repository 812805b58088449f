"""scripts/train.py with one injected fault, for the resume tests: the process kills itself
at a precise point, so the test does not race the training loop.

R1_FAULT=kill_in_step   SIGKILL inside training step R1_FAULT_STEP (after its generation)
R1_FAULT=kill_in_save   SIGKILL while the checkpoint of step R1_FAULT_STEP is being saved:
                        its temporary file is half written and not yet renamed
R1_FAULT=term_in_step   SIGTERM (preemption) inside training step R1_FAULT_STEP
R1_FAULT=crash_in_step  a bug: RuntimeError inside training step R1_FAULT_STEP
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def patch_training_step(module_class, step: int, signum: int | None) -> None:
    training_step = module_class.training_step  # its own, not an inherited patched one

    def faulty_step(self, batch, batch_idx):
        if self.global_step == step:
            if signum is None:
                raise RuntimeError("an injected bug")
            os.kill(os.getpid(), signum)
        return training_step(self, batch, batch_idx)

    module_class.training_step = faulty_step


def inject(fault: str, step: int) -> None:
    import r1.checkpoints as checkpoints
    from r1.modules import GRPOModule, PPOModule

    if fault in ("kill_in_step", "term_in_step", "crash_in_step"):
        signum = {"kill_in_step": signal.SIGKILL, "term_in_step": signal.SIGTERM}.get(fault)
        for module_class in (GRPOModule, PPOModule):
            patch_training_step(module_class, step, signum)
    elif fault == "kill_in_save":
        commit = checkpoints.commit

        def faulty_commit(tmp: Path, path: Path) -> None:
            if path.name == checkpoints.checkpoint_path(path.parent, step).name:
                with open(tmp, "r+b") as f:
                    f.truncate(tmp.stat().st_size // 2)
                os.kill(os.getpid(), signal.SIGKILL)
            commit(tmp, path)

        checkpoints.commit = faulty_commit
    else:
        raise ValueError(f"unknown R1_FAULT {fault!r}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    inject(os.environ["R1_FAULT"], int(os.environ["R1_FAULT_STEP"]))
    sys.argv = [str(ROOT / "scripts" / "train.py"), *sys.argv[1:]]
    runpy.run_path(sys.argv[0], run_name="__main__")
