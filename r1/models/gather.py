"""A model's full weights under Hugging Face names, whatever holds them: a plain module, FSDP2
shards (DTensor), DeepSpeed ZeRO-3 partitions, or a PEFT LoRA model (adapters merged).

Used to push the policy into an inference engine (vLLM) after an optimizer step and to save
a plain checkpoint at the end of a sharded run. Gathering is collective for sharded weights:
every rank must iterate, in the same order (the module order is the same on every rank).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch

# Prefixes and infixes that wrappers add to parameter names (torch.compile, DDP,
# activation-checkpoint and FSDP1 wrappers, PEFT), none of which a checkpoint loader knows.
WRAPPER_PREFIXES = ("_orig_mod.", "module.", "base_model.model.")
WRAPPER_INFIXES = (
    "_fsdp_wrapped_module.",
    "_checkpoint_wrapped_module.",
    "modules_to_save.default.",
)


def hf_name(name: str) -> str | None:
    """The checkpoint name of a parameter (what `from_pretrained` and vLLM's `load_weights`
    expect), or None for a parameter no checkpoint holds (PEFT's copy of a module that
    `modules_to_save` replaced)."""
    if "original_module." in name:
        return None
    for infix in WRAPPER_INFIXES:
        name = name.replace(infix, "")
    changed = True
    while changed:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            if name.startswith(prefix):
                name, changed = name[len(prefix) :], True
    return name


def is_lora_layer(module: torch.nn.Module) -> bool:
    return hasattr(module, "base_layer") and hasattr(module, "lora_A")


def full_parameters(model: torch.nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """(checkpoint name, full tensor) for each parameter, one module at a time, so at most one
    module's weights are gathered at once. A LoRA layer yields one merged weight
    (W + scaling * B @ A, computed out of place: the trained weights are never touched) and
    its other base-layer parameters; adapter matrices are not yielded. A yielded tensor is
    only valid until the next one is requested (ZeRO-3 frees gathered partitions): copy it."""
    lora_layers = [name for name, m in model.named_modules() if is_lora_layer(m)]
    seen: set[int] = set()  # tied weights (embeddings / LM head) are yielded once
    for module_name, module in model.named_modules():
        if any(module_name.startswith(f"{layer}.") for layer in lora_layers):
            continue  # inside a LoRA layer: handled with the layer
        if module_name in lora_layers:
            yield from _merged_lora(module_name, module, seen)
            continue
        params = [(n, p) for n, p in module.named_parameters(recurse=False) if id(p) not in seen]
        if not params:
            continue
        seen.update(id(p) for _, p in params)
        with gathered([p for _, p in params]):
            for param_name, param in params:
                name = hf_name(f"{module_name}.{param_name}" if module_name else param_name)
                if name is not None:
                    yield name, full_tensor(param)


def _merged_lora(module_name: str, layer: torch.nn.Module, seen: set[int]):
    base = layer.base_layer
    adapters = [a for a in getattr(layer, "active_adapters", []) if a in layer.lora_A]
    lora_params = [p for a in adapters for p in (layer.lora_A[a].weight, layer.lora_B[a].weight)]
    base_params = list(base.named_parameters(recurse=False))
    seen.update(id(p) for _, p in base_params)
    with gathered([p for _, p in base_params] + lora_params):
        for param_name, param in base_params:
            tensor = full_tensor(param)
            if param_name == "weight" and not getattr(layer, "merged", False):
                tensor = tensor.clone()
                for adapter in adapters:
                    delta = full_tensor(layer.lora_B[adapter].weight) @ full_tensor(
                        layer.lora_A[adapter].weight
                    )
                    if getattr(layer, "fan_in_fan_out", False):
                        delta = delta.T
                    tensor += (delta * layer.scaling[adapter]).to(tensor.dtype)
            name = hf_name(f"{module_name}.{param_name}")
            if name is not None:
                yield name, tensor


def is_sharded(model: torch.nn.Module) -> bool:
    """True if some parameter is an FSDP2 shard (DTensor) or a ZeRO-3 partition."""
    return any(hasattr(p, "full_tensor") or hasattr(p, "ds_id") for p in model.parameters())


def full_tensor(param: torch.Tensor) -> torch.Tensor:
    """The whole tensor of a plain, DTensor (FSDP2) or gathered ZeRO-3 parameter."""
    if hasattr(param, "full_tensor"):  # DTensor: all-gathers its shards
        return param.full_tensor()
    return param.data


@contextmanager
def gathered(params: Iterable[torch.nn.Parameter]):
    """ZeRO-3 partitions gathered into full tensors for the duration (read-only)."""
    partitioned = [p for p in params if hasattr(p, "ds_id")]
    if not partitioned:
        yield
        return
    import deepspeed  # only partitioned parameters lead here, so DeepSpeed is installed

    with deepspeed.zero.GatheredParameters(partitioned, modifier_rank=None):
        yield


def full_state_dict(model: torch.nn.Module, keep: bool = True) -> dict[str, torch.Tensor]:
    """Every parameter gathered, on CPU under its checkpoint name (empty where keep=False, so
    ranks other than the saving one take part in the gathering without holding a copy)."""
    state = {}
    for name, tensor in full_parameters(model):
        if keep:
            state[name] = tensor.detach().to("cpu", copy=True)
    return state


@contextmanager
def unsharded(model: torch.nn.Module):
    """FSDP2 parameters gathered once for the duration (a no-op for other models).

    Generation runs hundreds of forwards; sharded, each would all-gather every layer, and the
    ranks would have to run the same number of them (a rank whose samples all stopped early
    would hang the others). Gathered here once, the forwards inside are local, so ranks may
    stop decoding at different steps. Entering and leaving are collective."""
    from torch.distributed.fsdp import FSDPModule

    modules = [m for m in model.modules() if isinstance(m, FSDPModule)]
    if not modules:
        yield
        return
    for module in modules:
        module.unshard()
        module.set_reshard_after_forward(False, recurse=False)
    try:
        yield
    finally:
        for module in modules:
            module.set_reshard_after_forward(True, recurse=False)
            module.reshard()
