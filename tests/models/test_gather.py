"""Full weights under checkpoint names: plain, LoRA (merged out of place), ZeRO-3 (faked)."""

from __future__ import annotations

import copy
import sys
import types
from contextlib import contextmanager

import pytest
import torch

from r1.models import load_model
from r1.models.gather import full_parameters, full_state_dict, hf_name


@pytest.mark.parametrize(
    "wrapped, plain",
    [
        ("model.layers.0.mlp.up_proj.weight", "model.layers.0.mlp.up_proj.weight"),
        ("module._orig_mod.model.norm.weight", "model.norm.weight"),
        (
            "model.layers._fsdp_wrapped_module.0._checkpoint_wrapped_module.mlp.weight",
            "model.layers.0.mlp.weight",
        ),
        ("base_model.model.lm_head.modules_to_save.default.weight", "lm_head.weight"),
        ("base_model.model.lm_head.original_module.weight", None),
    ],
)
def test_wrapper_names_map_to_checkpoint_names(wrapped, plain):
    assert hf_name(wrapped) == plain


def test_plain_model_yields_every_weight_once_under_its_checkpoint_name():
    model, _ = load_model("tiny")
    state = full_state_dict(model)
    expected = dict(model.named_parameters())  # tied LM head listed once, as embed_tokens
    assert list(state) == list(expected)
    assert all(torch.equal(state[n], expected[n].detach()) for n in state)


def test_lora_weights_are_merged_out_of_place():
    model, _ = load_model("tiny", lora={"r": 4, "lora_alpha": 8})
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.5)  # B starts at zero: make the adapters count
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    merged = copy.deepcopy(model).merge_and_unload().state_dict()
    state = full_state_dict(model)
    assert not any("lora_" in n or "base_layer" in n for n in state)
    changed = 0
    for name, tensor in state.items():
        torch.testing.assert_close(tensor, merged[name])
        base = f"base_model.model.{name.removesuffix('.weight')}.base_layer.weight"
        changed += base in before and not torch.equal(tensor, before[base])
    assert changed > 0  # some weights really carry their adapter
    untouched = {n: p.detach() for n, p in model.named_parameters()}
    assert all(torch.equal(before[n], untouched[n]) for n in before)


def test_zero3_partitions_are_gathered_module_by_module(monkeypatch):
    """DeepSpeed ZeRO-3 parameters carry `ds_id`; they are read inside
    deepspeed.zero.GatheredParameters(params, modifier_rank=None), one module at a time."""
    events = []

    @contextmanager
    def gathered_parameters(params, modifier_rank=None):
        events.append(("gather", [p.ds_id for p in params], modifier_rank))
        yield
        events.append(("release",))

    fake = types.ModuleType("deepspeed")
    fake.zero = types.SimpleNamespace(GatheredParameters=gathered_parameters)
    monkeypatch.setitem(sys.modules, "deepspeed", fake)
    model, _ = load_model("tiny")
    for i, param in enumerate(model.parameters()):
        param.ds_id = i
    names = []
    for name, _ in full_parameters(model):
        names.append(name)
        assert events[-1][0] == "gather"  # read while gathered
    assert names == [n for n, _ in model.named_parameters()]
    gathers = [e for e in events if e[0] == "gather"]
    assert all(rank is None for *_, rank in gathers)
    assert sorted(i for e in gathers for i in e[1]) == list(range(len(names)))
    assert len(gathers) > 1  # per module, never the whole model at once
