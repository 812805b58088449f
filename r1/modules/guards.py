"""Numerical guard: an optimizer step whose loss or gradient norm is nan/inf is skipped (the
weights and optimizer state stay as they were), counted, and logged; too many in a row stop
the run with a message that says what to look at."""

from __future__ import annotations

import logging
import math

from r1.checks import check_int

log = logging.getLogger(__name__)


class NonFiniteError(RuntimeError):
    """The loss or gradient was non-finite in too many consecutive steps."""


class NonFiniteGuard:
    def __init__(self, max_consecutive: int = 3):
        self.max_consecutive = check_int("module.max_nonfinite_steps", max_consecutive, 1)
        self.skipped = 0  # over the whole run
        self.consecutive = 0

    def allows(self, loss: float, grad_norm: float | None, step: int) -> bool:
        """True when the step may be taken. `grad_norm=None`: not measured (an fp16 grad
        scaler skips overflowing steps itself)."""
        if math.isfinite(loss) and (grad_norm is None or math.isfinite(grad_norm)):
            self.consecutive = 0
            return True
        self.skipped += 1
        self.consecutive += 1
        log.warning(
            "step %d skipped: loss=%s, gradient norm=%s (%d in a row, %d in this run)",
            step,
            loss,
            grad_norm,
            self.consecutive,
            self.skipped,
        )
        if self.consecutive >= self.max_consecutive:
            raise NonFiniteError(
                f"training stopped at step {step}: the loss or gradient norm was non-finite "
                f"(loss={loss}, gradient norm={grad_norm}) in {self.consecutive} consecutive "
                "steps. Usual causes: a learning rate too high (module.optimizer.lr), fp16 "
                "overflow (try trainer.precision=bf16-mixed or 32-true), or broken data. "
                "module.max_nonfinite_steps sets how many in a row are tolerated."
            )
        return False

    def state_dict(self) -> dict[str, int]:
        return {"skipped": self.skipped, "consecutive": self.consecutive}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.skipped, self.consecutive = state["skipped"], state["consecutive"]
