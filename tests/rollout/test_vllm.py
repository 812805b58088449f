"""The vLLM engine against a fake with vLLM's interface (tests/support/fake_vllm): weights
reach it under the right names and shapes, in the right order with sleep/wake; sampling
settings are mapped; outputs become a Rollout; a GRPO run trains through it."""

from __future__ import annotations

import sys
from pathlib import Path

import lightning as L
import pytest
import torch

import r1.rollout.vllm as vllm_engine
from r1.checks import ConfigError
from r1.models import load_model
from r1.rollout.types import SamplingParams

FAKE = Path(__file__).resolve().parents[1] / "support" / "fake_vllm"


@pytest.fixture
def fake_vllm(monkeypatch):
    monkeypatch.syspath_prepend(str(FAKE))
    monkeypatch.delitem(sys.modules, "vllm", raising=False)
    monkeypatch.setattr(vllm_engine, "cuda_available", lambda: True)
    import vllm

    vllm.LLM.events = []
    vllm.LLM.instances = []
    yield vllm
    sys.modules.pop("vllm", None)


def engine_for(model, tokenizer, **settings):
    return vllm_engine.VLLMRolloutEngine(model, tokenizer, **settings)


def test_missing_vllm_says_how_to_install(monkeypatch, tiny):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import fails
    with pytest.raises(ConfigError, match=r"pip install '\.\[vllm\]'"):
        engine_for(*tiny)


def test_no_gpu_is_refused_before_training(fake_vllm, monkeypatch, tiny):
    monkeypatch.setattr(vllm_engine, "cuda_available", lambda: False)
    with pytest.raises(ConfigError, match="needs a CUDA GPU.*rollout=hf"):
        engine_for(*tiny)


def test_sleep_level_2_cannot_keep_weights_between_syncs(fake_vllm, tiny):
    with pytest.raises(ConfigError, match="sync_every=2 with rollout.sleep_level=2"):
        engine_for(*tiny, sleep_mode=True, sleep_level=2, sync_every=2)


def test_engine_settings_and_sampling_mapping(fake_vllm, tiny):
    model, tokenizer = tiny
    engine = engine_for(model, tokenizer, gpu_memory_utilization=0.4, seed=7)
    params = SamplingParams(max_new_tokens=5, temperature=0.7, top_p=0.9, stop=("</answer>",))
    engine.generate([[1, 2, 3]], params, n=3)
    init = fake_vllm.LLM.events[0][1]
    assert init["load_format"] == "dummy" and init["logprobs_mode"] == "processed_logprobs"
    assert init["gpu_memory_utilization"] == 0.4 and init["seed"] == 7
    assert init["tensor_parallel_size"] == 1 and init["enable_sleep_mode"] is False
    mapped = [e for e in fake_vllm.LLM.events if e[0] == "generate"][0][2]
    assert (mapped.n, mapped.temperature, mapped.top_p, mapped.top_k) == (3, 0.7, 0.9, -1)
    assert mapped.max_tokens == 5 and mapped.stop == ["</answer>"] and mapped.logprobs == 0
    assert mapped.include_stop_str_in_output


def test_every_weight_arrives_by_name_and_shape_and_generation_uses_it(fake_vllm, tiny):
    model, tokenizer = load_model("tiny", seed=5)
    engine = engine_for(model, tokenizer)
    engine.update_weights(model)  # what RolloutCallback does at train start
    params = SamplingParams(max_new_tokens=6, temperature=0)
    rollout = engine.generate([[5, 6, 7], [8, 9]], params, n=2)
    pushed = [e[1:] for e in fake_vllm.LLM.events if e[0] == "load_weights"]
    assert pushed == [(n, tuple(p.shape)) for n, p in model.named_parameters()]
    served = fake_vllm.LLM.instances[0].hf_model
    assert all(torch.equal(p, served.state_dict()[n]) for n, p in model.state_dict().items())
    # greedy with the pushed weights = greedy with the policy itself
    from r1.rollout.hf import HFRolloutEngine

    expected = HFRolloutEngine(model, tokenizer).generate([[5, 6, 7], [8, 9]], params, n=2)
    assert rollout.texts == expected.texts
    assert torch.equal(rollout.completion_ids, expected.completion_ids)
    assert (
        rollout.group_size == 2 and rollout.sampling_logprobs.shape == rollout.completion_ids.shape
    )
    events = [e[0] for e in fake_vllm.LLM.events]
    assert events.index("reset_prefix_cache") > max(
        i for i, e in enumerate(events) if e == "load_weights"
    )


def test_sleep_mode_order_and_level_2_repush(fake_vllm, tiny):
    model, tokenizer = tiny
    engine = engine_for(model, tokenizer, sleep_mode=True, sleep_level=2)
    for _ in range(2):
        engine.update_weights(model)  # train start, then an optimizer step
        engine.generate([[1, 2]], SamplingParams(max_new_tokens=3), n=2)
    # A dynamic-sampling refill: a second generation in the same step, after a level-2 sleep
    # discarded the weights: they are pushed again.
    engine.generate([[1, 2]], SamplingParams(max_new_tokens=3), n=2)
    kinds = []
    for event in fake_vllm.LLM.events:
        kind = event[0] if event[0] != "wake_up" else f"wake_up{list(event[1])}"
        if kind != "load_weights" or kinds[-1] != "load_weights":
            kinds.append(kind)
    one_round = [
        "wake_up['weights']",
        "load_weights",
        "reset_prefix_cache",
        "wake_up['kv_cache']",
        "generate",
        "sleep",
    ]
    assert kinds == ["init", "sleep", *one_round, *one_round, *one_round]


def test_sync_every_k_steps(fake_vllm, tiny):
    model, tokenizer = tiny
    engine = engine_for(model, tokenizer, sync_every=2)
    engine.update_weights(model)  # train start: always pushed (the engine holds dummy weights)
    pushes = []
    for _ in range(4):
        before = sum(e[0] == "reset_prefix_cache" for e in fake_vllm.LLM.events)
        engine.generate([[1, 2]], SamplingParams(max_new_tokens=2), n=2)
        pushes.append(sum(e[0] == "reset_prefix_cache" for e in fake_vllm.LLM.events) - before)
        engine.update_weights(model)  # an optimizer step
    assert pushes == [1, 0, 1, 0]


def test_lora_weights_are_pushed_merged(fake_vllm):
    model, tokenizer = load_model("tiny", lora={"r": 4, "lora_alpha": 8})
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.5)
    engine = engine_for(model, tokenizer)
    engine.update_weights(model)
    engine.generate([[1, 2]], SamplingParams(max_new_tokens=2), n=2)
    import copy

    merged = copy.deepcopy(model).merge_and_unload().state_dict()
    served = fake_vllm.LLM.instances[0].hf_model.state_dict()
    for name, tensor in merged.items():
        torch.testing.assert_close(served[name], tensor)


def test_grpo_trains_through_the_vllm_engine(fake_vllm, tmp_path):
    """Two GRPO steps with rollout=vllm (fake engine): the engine samples, receives the new
    weights after each step, and ends holding exactly the trained policy."""
    from compose import compose_config
    from hydra.utils import instantiate

    cfg = compose_config(
        [
            "stage=grpo",
            "model=tiny",
            "rollout=vllm",
            "trainer.accelerator=cpu",
            "trainer.max_steps=2",
            "trainer.precision=32-true",
            "data.num_train=8",
            "data.num_val=2",
            "data.batch_size=2",
            "module.group_size=2",
            "module.sampling.max_new_tokens=6",
            "module.max_new_tokens=4",
            "module.optimizer.lr=1e-3",
            "module.is_correction=token",
            "module.dynamic_sampling=false",  # one generate call per step, no refills
            "reward=repetition",
            "logger=csv",
        ],
        tmp_path,
    )
    model, tokenizer = instantiate(cfg.model)
    datamodule = instantiate(cfg.data, tokenizer=tokenizer)
    module = instantiate(cfg.module, model=model, tokenizer=tokenizer)
    assert module.engine_factory.engine_class is vllm_engine.VLLMRolloutEngine
    trainer = L.Trainer(
        default_root_dir=tmp_path,
        accelerator="cpu",
        max_steps=2,
        precision="32-true",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        use_distributed_sampler=False,
    )
    trainer.fit(module, datamodule)
    assert isinstance(module.engine, vllm_engine.VLLMRolloutEngine)
    generations = [e for e in fake_vllm.LLM.events if e[0] == "generate"]
    pushes = sum(e[0] == "reset_prefix_cache" for e in fake_vllm.LLM.events)
    assert len(generations) == 2 and pushes == 2  # train start + after step 1
    module.engine.generate([[1]], SamplingParams(max_new_tokens=1), n=2)  # pushes step 2's
    served = fake_vllm.LLM.instances[0].hf_model.state_dict()
    assert all(torch.equal(p.detach(), served[n]) for n, p in model.named_parameters())
    ratio = trainer.callback_metrics["rollout/is_ratio_mean"]
    assert abs(float(ratio) - 1.0) < 1e-3  # the fake samples with the trainer's numerics
