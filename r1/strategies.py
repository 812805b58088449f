"""Sharded data parallelism as a Lightning strategy: FSDP2 (`torch.distributed.fsdp.fully_shard`).

`strategy=fsdp` shards each decoder layer (the model's `_no_split_modules` class, e.g.
LlamaDecoderLayer, or `layer_classes`) and then the rest of the model, over all ranks. It is
Lightning's ModelParallelStrategy (FSDP2 + tensor parallel) with tensor parallelism off; the
modules call `shard()` for each network they hold (policy, reference, critic) from their
`configure_model` hook. FSDP2 works on CPU (gloo) too, so it is tested here on two processes.
DDP and DeepSpeed come straight from Lightning (conf/strategy/*.yaml).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from lightning.pytorch.strategies import ModelParallelStrategy

from r1.checks import ConfigError
from r1.models.loading import resolve_dtype


class FSDPStrategy(ModelParallelStrategy):
    def __init__(
        self,
        layer_classes: Sequence[str] | None = None,
        param_dtype: str | None = "bfloat16",
        reduce_dtype: str | None = "float32",
        reshard_after_forward: bool = True,
        activation_checkpointing: bool = False,
        cpu_offload: bool = False,
        **kwargs,
    ):
        """layer_classes: class names wrapped as one FSDP unit each (null: the model's
        `_no_split_modules`). param_dtype / reduce_dtype: FSDP2 mixed precision, the dtype
        weights are gathered and computed in / gradients are reduced in (null: the parameters'
        own). reshard_after_forward: free gathered layers after their forward (ZeRO-3-like;
        false keeps them until backward, ZeRO-2-like: faster, more memory).
        activation_checkpointing: recompute each layer's activations in backward.
        cpu_offload: keep the sharded parameters, gradients and optimizer state in CPU memory."""
        kwargs.setdefault("save_distributed_checkpoint", False)  # one resumable .ckpt file
        super().__init__(data_parallel_size="auto", tensor_parallel_size=1, **kwargs)
        self.layer_classes = list(layer_classes) if layer_classes else None
        self.param_dtype = resolve_dtype(param_dtype) if param_dtype else None
        self.reduce_dtype = resolve_dtype(reduce_dtype) if reduce_dtype else None
        self.reshard_after_forward = reshard_after_forward
        self.activation_checkpointing = activation_checkpointing
        self.cpu_offload = cpu_offload

    def setup_environment(self) -> None:
        # Every rank in one data-parallel group (ModelParallelStrategy's "auto" would make the
        # ranks of a node a tensor-parallel group).
        self._data_parallel_size = self.num_nodes * self.num_processes
        self._tensor_parallel_size = 1
        super().setup_environment()

    def shard(self, model: torch.nn.Module, like: torch.nn.Module | None = None) -> None:
        """Apply fully_shard to `model`'s decoder layers, then to `model` itself (in place).
        `like`: the network whose layer classes to use (a critic built on the policy's)."""
        from torch.distributed.fsdp import (
            CPUOffloadPolicy,
            FSDPModule,
            MixedPrecisionPolicy,
            OffloadPolicy,
            fully_shard,
        )

        if isinstance(model, FSDPModule):
            return  # already sharded (validation before fit, then fit)
        classes = set(self.layer_classes or getattr(like or model, "_no_split_modules", None) or [])
        layers = [m for m in model.modules() if type(m).__name__ in classes]
        if not layers:
            raise ConfigError(
                f"strategy.layer_classes={sorted(classes)} matches no module of "
                f"{type(model).__name__}; name its decoder-layer class (e.g. LlamaDecoderLayer)"
            )
        if self.activation_checkpointing and hasattr(model, "gradient_checkpointing_enable"):
            model.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False}
            )
        settings = {
            "mesh": self.device_mesh["data_parallel"],
            "mp_policy": MixedPrecisionPolicy(
                param_dtype=self.param_dtype, reduce_dtype=self.reduce_dtype
            ),
            "offload_policy": CPUOffloadPolicy() if self.cpu_offload else OffloadPolicy(),
        }
        for layer in layers:
            fully_shard(layer, reshard_after_forward=self.reshard_after_forward, **settings)
        # The root's parameters (embeddings, final norm, LM head) are used at both ends of
        # the forward: keep them gathered in between.
        fully_shard(model, reshard_after_forward=False, **settings)
