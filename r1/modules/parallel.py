"""Metrics of data-parallel RL steps: each rank logs its own shard's numbers, reduced here.

Gradients need no help: Lightning's DDP re-arms its reducer for every manual backward
(`optimizer.toggle_model(sync_grad=False)` skips the all-reduce on all but the last micro-batch),
FSDP2 reduce-scatters in every backward, and DeepSpeed's engine reduces in its own step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch


def uses_deepspeed(trainer) -> bool:
    """True under Lightning's DeepSpeedStrategy (checked by name: DeepSpeed is optional)."""
    return trainer is not None and type(trainer.strategy).__name__.startswith("DeepSpeed")


SUMMED = ("rollout/tokens",)  # counts add up over ranks
MAXED = ("perf/peak_mem_gb", "perf/step_s", "rollout/s", "rollout/is_ratio_max")


def names_on_every_rank(names: Sequence[str]) -> list[str]:
    """The sorted union of `names` over all ranks: some metrics exist only where the data has
    them (a difficulty level's length), and gathered tensors need one layout everywhere."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return sorted(names)
    every: list[Any] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(every, sorted(names))
    return sorted(set().union(*every))


def reduce_metrics(module, metrics: Mapping[str, float]) -> dict[str, float]:
    """The global value of each per-rank metric: the mean over the ranks that have one (NaN =
    no signal on that rank, as is a name another rank has and this one not), the sum for
    counts, the max for peaks and times (the slowest rank sets the pace), and generation
    throughput = all tokens / the slowest rank's rollout time. One all_gather for all of
    them, after one for the names."""
    names = names_on_every_rank(list(metrics))
    local = torch.tensor([float(metrics.get(n, math.nan)) for n in names], dtype=torch.float64)
    gathered = module.all_gather(local.to(module.device)).cpu()  # [world, K]
    reduced = {}
    for i, name in enumerate(names):
        column = gathered[:, i]
        finite = column[~torch.isnan(column)]
        if finite.numel() == 0:
            reduced[name] = math.nan
        elif name in SUMMED:
            reduced[name] = float(finite.sum())
        elif name in MAXED:
            reduced[name] = float(finite.max())
        else:
            reduced[name] = float(finite.mean())
    if {"rollout/tokens", "rollout/s", "rollout/tokens_per_s"} <= set(reduced):
        reduced["rollout/tokens_per_s"] = reduced["rollout/tokens"] / max(
            reduced["rollout/s"], 1e-9
        )
    return reduced
