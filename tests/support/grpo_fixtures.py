"""An RL module (GRPO by default) driven without a Trainer, and a fixed rollout to train it on."""

from __future__ import annotations

import torch

from r1.models import load_model
from r1.models.forward import completion_logprobs
from r1.modules import GRPOModule
from r1.rewards import CompositeReward
from r1.rollout.hf import HFRolloutEngine
from r1.rollout.types import SamplingParams


def fixed_rollout(tokenizer, group_size=2):
    engine = HFRolloutEngine(load_model("tiny", seed=3)[0], tokenizer)
    prompt = tokenizer("What is 2 + 3?", add_special_tokens=False)["input_ids"]
    torch.manual_seed(0)
    return engine.generate([prompt], SamplingParams(max_new_tokens=5), n=group_size)


def make_module(model, tokenizer, optimizer=None, module_class=GRPOModule, **kwargs):
    module = module_class(
        model,
        tokenizer,
        optimizer=optimizer or (lambda p: torch.optim.SGD(p, lr=0.5)),
        reward=CompositeReward({"accuracy": {}}, workers=0),
        group_size=2,
        **{"sampling": {"max_new_tokens": 5}, "max_grad_norm": None, **kwargs},
    )
    optimizer = module.optimizer_factory(list(model.parameters()))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0)
    module.optimizers = lambda: optimizer
    module.lr_schedulers = lambda: scheduler
    module.manual_backward = lambda loss: loss.backward()
    module.all_gather = lambda t: t
    module.log = lambda *a, **k: None
    return module


def token_logprobs(model, rollout) -> torch.Tensor:
    """[N, C] log-probs of the rollout's completion tokens under `model`, 0 on padding."""
    with torch.no_grad():
        logprobs, _ = completion_logprobs(
            model,
            rollout.prompt_ids,
            rollout.prompt_mask,
            rollout.completion_ids,
            rollout.completion_mask,
            rollout.group_size,
        )
    return logprobs * rollout.completion_mask
