"""Each conf/strategy option instantiates its Lightning strategy with the intended settings.
(The multi-process runs are in tests/scripts/test_distributed.py.)"""

from __future__ import annotations

import logging
import sys
import types

import lightning.pytorch.strategies.deepspeed as lightning_deepspeed
import pytest
import torch
from compose import compose_config
from hydra.utils import instantiate
from lightning.pytorch.strategies import DDPStrategy, DeepSpeedStrategy, ModelParallelStrategy

from r1.checks import ConfigError
from r1.models import load_model
from r1.strategies import FSDPStrategy


def strategy_of(tmp_path, *overrides):
    cfg = compose_config(["stage=grpo", "model=tiny", *overrides], tmp_path)
    return instantiate(cfg.trainer.strategy), cfg


def test_ddp(tmp_path):
    strategy, _ = strategy_of(tmp_path, "strategy=ddp")
    assert isinstance(strategy, DDPStrategy)
    assert strategy._ddp_kwargs == {"find_unused_parameters": False}


def test_fsdp_is_fsdp2_data_parallel_over_every_rank(tmp_path):
    strategy, _ = strategy_of(tmp_path, "strategy=fsdp", "trainer.strategy.cpu_offload=true")
    assert isinstance(strategy, FSDPStrategy) and isinstance(strategy, ModelParallelStrategy)
    assert strategy.param_dtype is torch.bfloat16 and strategy.reduce_dtype is torch.float32
    assert strategy.reshard_after_forward and strategy.cpu_offload
    assert not strategy.activation_checkpointing
    assert strategy._save_distributed_checkpoint is False  # one resumable .ckpt file
    assert strategy._tensor_parallel_size == 1


def test_fsdp_names_a_layer_class_the_model_lacks(tmp_path):
    strategy, _ = strategy_of(tmp_path, "strategy=fsdp", "trainer.strategy.layer_classes=[Block]")
    strategy._device_mesh = {"data_parallel": None}
    model, _ = load_model("tiny")
    with pytest.raises(ConfigError, match=r"layer_classes=\['Block'\] matches no module"):
        strategy.shard(model)


@pytest.fixture
def deepspeed_importable(monkeypatch):
    """DeepSpeed is an optional GPU extra: Lightning only checks that it is installed before
    building its strategy, so a stand-in module lets the config be checked here."""
    fake = types.ModuleType("deepspeed")
    fake.utils = types.SimpleNamespace(
        logging=types.SimpleNamespace(logger=logging.getLogger("deepspeed"))
    )
    monkeypatch.setitem(sys.modules, "deepspeed", fake)
    monkeypatch.setattr(lightning_deepspeed, "_DEEPSPEED_AVAILABLE", True)
    monkeypatch.setattr(lightning_deepspeed, "_DEEPSPEED_GREATER_EQUAL_0_16", True)


@pytest.mark.parametrize("stage", [2, 3])
def test_deepspeed_zero(tmp_path, deepspeed_importable, stage):
    strategy, cfg = strategy_of(tmp_path, f"strategy=deepspeed_zero{stage}")
    assert isinstance(strategy, DeepSpeedStrategy)
    zero = strategy.config["zero_optimization"]
    assert zero["stage"] == stage
    assert strategy.zero_stage_3 == (stage == 3)
    assert strategy.config["gradient_clipping"] == cfg.module.max_grad_norm == 1.0
    if stage == 3:
        assert zero["stage3_gather_16bit_weights_on_model_save"] is True


def test_deepspeed_without_the_package_says_how_to_install(tmp_path):
    if lightning_deepspeed._DEEPSPEED_AVAILABLE:
        pytest.skip("DeepSpeed is installed here")
    with pytest.raises(Exception, match="you must have DeepSpeed installed"):
        strategy_of(tmp_path, "strategy=deepspeed_zero2")
