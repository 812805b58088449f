"""One-step-off-policy rollouts (`rollout.async_steps=1`): a background thread generates and
scores the next batch from its own copy of the policy while the trainer updates on the current
one. Plain Python and torch (no Lightning); the RL module drives it once per step:

    rollouts.start(batch, model, step)   # copy the trainer's weights in, generate in the thread
    ...the trainer updates on the previous batch...
    pending = rollouts.result()          # wait: the batch to train on next step

The thread runs only between `start` and `result`, inside one training step, so nothing else
(validation, checkpoints, the data loader) ever runs beside it. Determinism: the engine draws
its samples from the global torch RNG; while the thread runs, the trainer's update draws
nothing from it (no dropout, minibatch shuffles drawn before `start`), so the thread's draws
come in the same order in every run with the same seed.
"""

from __future__ import annotations

import copy
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, fields
from typing import Any

import torch

from r1.rollout.producer import PromptBatch, RolloutProducer, ScoredRollout
from r1.rollout.types import Rollout


@dataclass
class PendingRollout:
    """A scored batch waiting to be trained on, and the optimizer step of the weights that
    sampled it (staleness when trained = the trainer's step then - sampled_at)."""

    scored: ScoredRollout
    sampled_at: int

    def state_dict(self) -> dict[str, Any]:
        """Tensors and plain Python values only: checkpoints load with weights_only=True."""
        scored = {f.name: getattr(self.scored, f.name) for f in fields(ScoredRollout)}
        scored["rollout"] = {f.name: getattr(self.scored.rollout, f.name) for f in fields(Rollout)}
        return {"scored": scored, "sampled_at": self.sampled_at}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> PendingRollout:
        scored = dict(state["scored"])
        scored["rollout"] = Rollout(**scored["rollout"])
        return cls(ScoredRollout(**scored), int(state["sampled_at"]))


def sampler_copy(model: torch.nn.Module) -> torch.nn.Module:
    """The producer's own copy of the policy, on the policy's device, without gradients."""
    mirror = copy.deepcopy(model)
    for p in mirror.parameters():
        p.grad = None
    return mirror.requires_grad_(False).eval()


class OffPolicyRollouts:
    """producer: generates with an engine over `weights`, a copy of the policy (`sampler_copy`)
    that only `start` writes, in place (no allocation): the policy's trainable parameters,
    the only ones training changes."""

    def __init__(self, producer: RolloutProducer, weights: torch.nn.Module):
        self.producer, self.weights = producer, weights
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="r1-rollouts")
        self.running: Future | None = None
        self.sampled_at = 0
        device = next(weights.parameters()).device
        # On a GPU the thread decodes on its own stream, so its kernels can run beside the
        # trainer's instead of queueing behind them on the default stream.
        self.stream = torch.cuda.Stream(device) if device.type == "cuda" else None

    @torch.no_grad()
    def sync(self, model: torch.nn.Module) -> None:
        mirror = dict(self.weights.named_parameters())
        for name, param in model.named_parameters():
            if param.requires_grad:
                mirror[name].copy_(param)

    def start(self, batch: PromptBatch, model: torch.nn.Module, step: int) -> None:
        """Copy `model`'s weights in (optimizer step `step`) and generate `batch` in the thread."""
        if self.running is not None:
            raise RuntimeError("a background rollout is already running; call result() first")
        self.sync(model)
        if self.stream is not None:
            self.stream.wait_stream(torch.cuda.current_stream(self.stream.device))
        self.sampled_at = step
        self.running = self.executor.submit(self._produce, batch, step)

    def _produce(self, batch: PromptBatch, step: int) -> ScoredRollout:
        with torch.cuda.stream(self.stream) if self.stream is not None else nullcontext():
            return self.producer.produce(batch, step)

    def result(self) -> PendingRollout:
        """Wait for the batch `start` began (its exception, if it raised)."""
        if self.running is None:
            raise RuntimeError("no background rollout is running")
        running, self.running = self.running, None
        return PendingRollout(running.result(), self.sampled_at)

    def generate(self, batch: PromptBatch, model: torch.nn.Module, step: int) -> PendingRollout:
        """`batch` from `model`'s current weights, waited for (no overlap)."""
        self.start(batch, model, step)
        return self.result()

    def wait(self) -> None:
        """Let a running batch finish and drop it (after an error in the trainer's update)."""
        if self.running is not None:
            running, self.running = self.running, None
            running.exception()

    def close(self) -> None:
        self.wait()
        self.executor.shutdown(wait=True)
