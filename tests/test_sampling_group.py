"""conf/sampling/: every option is exactly a SamplingParams, and the standalone scripts take
their generation settings from it (a null max_new_tokens: the run's budget, else 256)."""

from __future__ import annotations

from dataclasses import fields

import pytest
from compose import CONF
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from r1.checks import ConfigError
from r1.eval.runs import script_sampling
from r1.rollout.types import SamplingParams, sampling_params

OPTIONS = sorted(path.stem for path in (CONF / "sampling").glob("*.yaml"))
# script config -> (its default option, its temperature and top-p)
SCRIPTS = {
    "evaluate": ("paper", 0.6, 0.95),
    "sample": ("sft_data", 0.7, 0.95),
    "search_traces": ("sft_data", 0.7, 0.95),
    "label_steps": ("step_labels", 0.8, 0.95),
}


def script_config(name: str, overrides: list[str] = ()):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(name, overrides=list(overrides), return_hydra_config=True)


@pytest.mark.parametrize("option", OPTIONS)
def test_every_option_is_exactly_a_sampling_params(option):
    settings = OmegaConf.to_container(OmegaConf.load(CONF / "sampling" / f"{option}.yaml"))
    assert set(settings) == {f.name for f in fields(SamplingParams)}
    assert isinstance(sampling_params(settings), SamplingParams)


def test_the_named_options_hold_the_protocols():
    def params(option):
        return sampling_params(OmegaConf.load(CONF / "sampling" / f"{option}.yaml"))

    assert params("paper") == SamplingParams(256, 0.6, 0.95, 0, ())
    assert params("greedy") == SamplingParams(256, 0.0, 1.0, 0, ())
    assert params("rollout") == SamplingParams(256, 1.0, 1.0, 0, ())


@pytest.mark.parametrize("script", list(SCRIPTS))
def test_scripts_take_sampling_from_the_group(script):
    option, temperature, top_p = SCRIPTS[script]
    cfg = script_config(script)
    assert cfg.hydra.runtime.choices.sampling == option
    # no generation setting left in the script's own blocks
    for block in ("eval", "sample", "traces", "label"):
        assert not {"temperature", "top_p", "max_new_tokens"} & set(cfg.get(block) or {})
    # null: the training run's held-out budget (run=), else 256: resolved before SamplingParams
    assert cfg.sampling.max_new_tokens is None
    assert script_sampling(cfg, 256) == SamplingParams(256, temperature, top_p)
    assert script_sampling(cfg, 64).max_new_tokens == 64  # a run's module.max_new_tokens
    greedy = script_config(script, ["sampling=greedy", "sampling.max_new_tokens=8"])
    assert script_sampling(greedy, 256) == SamplingParams(8, 0.0, 1.0)


def test_a_bad_sampling_setting_is_named():
    cfg = script_config("evaluate", ["+sampling.temprature=0.5"])
    with pytest.raises(ConfigError, match="temprature"):
        script_sampling(cfg, 256)
    cfg = script_config("evaluate", ["sampling.top_p=0"])
    with pytest.raises(ConfigError, match="sampling.top_p"):
        script_sampling(cfg, 256)
