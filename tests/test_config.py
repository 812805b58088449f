"""Every option of every config group composes, and every `_target_` binds to its signature
(or instantiates, where that is cheap)."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from compose import CONF, compose_config
from hydra.utils import get_object, instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf

from r1.checks import check_targets

ROOT = Path(__file__).resolve().parents[1]
GROUPS = [
    "trainer",
    "model",
    "data",
    "stage",
    "reward",
    "rollout",
    "logger",
    "strategy",
    "experiment",
]
# Options with a mandatory (???) value, and what a user would pass.
REQUIRED = {
    ("model", "hub"): ["model.name=some-org/some-model"],
    ("data", "jsonl"): ["data.source.path=problems.jsonl"],
    ("data", "code_jsonl"): ["data.source.path=problems.jsonl"],
    ("reward", "reward_model"): ["reward.terms.preference.params.name=tiny"],
    ("experiment", "r1_cold_start_rl"): ["model.path=/some/checkpoint"],
    ("stage", "distill"): ["data.source.path=traces.jsonl"],
    ("stage", "opd"): ["module.teacher.name=tiny", "module.teacher.path=null"],
    ("data", "steps"): ["data.path=steps.jsonl"],
    ("stage", "prm"): ["data.path=steps.jsonl"],
    ("reward", "prm"): ["reward.terms.prm.params.path=null", "reward.terms.prm.params.name=tiny"],
    ("reward", "r1_zero_prm_watched"): [
        "reward.terms.prm.params.path=null",
        "reward.terms.prm.params.name=tiny",
    ],
    ("reward", "helpful_harmless"): [
        "reward.terms.helpful.params.name=tiny",
        "reward.terms.helpful.params.path=null",
        "reward.terms.harmless.params.name=tiny",
        "reward.terms.harmless.params.path=null",
        "reward.terms.helpful.start_step=0",
    ],
    ("reward", "all_scenarios"): [
        "reward.terms.preference.params.name=tiny",
        "reward.terms.preference.start_step=0",
    ],
}


def options():
    for group in GROUPS:
        for path in sorted((CONF / group).glob("*.yaml")):
            yield group, path.stem


def targets(node, where="cfg"):
    """Every (path, node) with a _target_ below `node`."""
    if isinstance(node, DictConfig) and not node._is_none():
        if "_target_" in node:
            yield where, node
        for key in node:
            if not str(key).startswith("_") and key != "hydra":
                yield from targets(node._get_node(key), f"{where}.{key}")
    elif isinstance(node, ListConfig):
        for i, item in enumerate(node):
            yield from targets(item, f"{where}[{i}]")


def bind(path: str, node: DictConfig) -> None:
    target = get_object(node._target_)
    kwargs = {k: v for k, v in node.items() if not str(k).startswith("_")}
    signature = inspect.signature(target)
    try:
        signature.bind_partial(**kwargs)
    except TypeError as err:
        raise AssertionError(
            f"{path}: {node._target_} does not accept {sorted(kwargs)}: {err}"
        ) from err


@pytest.mark.parametrize("group,option", list(options()))
def test_every_option_composes_and_binds(group, option, tmp_path):
    overrides = [f"{group}={option}"] + REQUIRED.get((group, option), [])
    cfg = compose_config(overrides, tmp_path)
    # Every interpolation of the job config resolves (hydra's own node needs a real run).
    resolved = {
        k: OmegaConf.to_container(cfg[k], resolve=True) if OmegaConf.is_config(cfg[k]) else cfg[k]
        for k in cfg
        if k != "hydra"
    }
    assert resolved["paths"]["output_dir"] == str(tmp_path)
    found = list(targets(cfg))
    assert found, "no _target_ in the composed config"
    for path, node in found:
        bind(path, node)
    check_targets(resolved)  # what train.py checks first: no shipped value is refused
    assert {"model", "data", "module", "trainer", "logger"} <= set(cfg)


@pytest.mark.parametrize("option", ["csv", "tensorboard", "wandb"])
def test_loggers_instantiate(option, tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = compose_config([f"logger={option}"], tmp_path)
    logger = instantiate(cfg.logger)
    if option != "csv":  # with the local metrics file every logger keeps
        logger, local = logger
        assert Path(local.log_dir) == tmp_path / "logs"
    assert logger.save_dir.startswith(str(tmp_path))
    if option == "wandb":
        assert logger._wandb_init["mode"] == "offline"  # no key: never blocks on a login prompt
        assert logger._wandb_init["group"] == cfg.experiment_name


@pytest.mark.parametrize("option", ["arithmetic", "countdown"])
def test_procedural_data_sources_instantiate(option, tmp_path):
    cfg = compose_config([f"data={option}"], tmp_path)
    source = instantiate(cfg.data.source)
    problems = source.generate(3, seed=0)
    assert len(problems) == 3 and all(p.answer and p.solution for p in problems)


def test_strategy_ddp_instantiates_lightning_strategy(tmp_path):
    from lightning.pytorch.strategies import DDPStrategy

    cfg = compose_config(["strategy=ddp"], tmp_path)
    assert isinstance(instantiate(cfg.trainer.strategy), DDPStrategy)


def test_experiment_overrides_only_what_changes(tmp_path):
    base = compose_config([], tmp_path)
    cold = compose_config(["experiment=cold_start_sft"], tmp_path)
    assert cold.data.num_train == 2000 and cold.experiment_name == "cold_start_sft"
    assert cold.module == base.module


def test_unknown_option_names_the_valid_ones(tmp_path):
    from hydra.errors import MissingConfigException

    with pytest.raises(MissingConfigException) as err:
        compose_config(["data=no_such_task"], tmp_path)
    assert "no_such_task" in str(err.value) and "arithmetic" in str(err.value)


@pytest.mark.parametrize("option", sorted(p.stem for p in (CONF / "reward").glob("*.yaml")))
def test_every_reward_config_scores(option, tmp_path):
    from r1.rewards import RewardSample

    cfg = compose_config(
        [f"reward={option}", "reward.workers=0"] + REQUIRED.get(("reward", option), []), tmp_path
    )
    reward = instantiate(cfg.reward)
    good = "<think>\n2 + 3 = 5\n</think>\n<answer>5</answer>"
    out = reward.score(
        [
            RewardSample(
                good,
                gold="5",
                task="arithmetic",
                meta={"language": "en"},
                prompt="What is 2 + 3?",
                num_tokens=12,
                max_tokens=64,
            ),
            RewardSample("no idea", gold="5", num_tokens=64, max_tokens=64, truncated=True),
        ]
    )
    assert set(out.terms) == {key for key, term in cfg.reward.terms.items() if term is not None}
    assert not any(out.errors.values())
    if option not in ("reward_model", "code", "all_scenarios", "helpful_harmless"):
        # (a random reward model / no tests: no ordering; all_scenarios routes by task, and
        # the second sample has none)
        assert out.total[0] > out.total[1]
