"""Point a script's config at a finished training run (scripts/evaluate.py, scripts/sample.py),
and build its generation settings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from r1.rollout.types import SamplingParams, sampling_params


def adopt_training_run(cfg: DictConfig, take_reward: bool = True) -> tuple[str, int]:
    """Point cfg at the training run `cfg.run`: its final checkpoint, data (template, task,
    held-out split) and, if asked, reward. Returns the run's answer source and held-out token
    budget."""
    run = Path(cfg.run)
    trained_path = run / ".hydra" / "config.yaml"
    if not (run / "checkpoint").is_dir() or not trained_path.is_file():
        raise SystemExit(
            f"run={cfg.run}: not a finished training run (needs checkpoint/ and .hydra/config.yaml)"
        )
    trained = OmegaConf.load(trained_path)
    with open_dict(cfg):
        cfg.data = trained.data
        if take_reward:
            cfg.reward = trained.reward
        cfg.model.path = str(run / "checkpoint")
    return (
        OmegaConf.select(trained, "module.answer_source") or "answer_tag",
        OmegaConf.select(trained, "module.max_new_tokens") or 256,
    )


def script_sampling(cfg: DictConfig, budget: int) -> SamplingParams:
    """The SamplingParams of a standalone script: its `sampling` (a conf/sampling/ option,
    e.g. sampling=greedy, with any sampling.<key>=... on top). The scripts set
    sampling.max_new_tokens to null, which is resolved here to `budget`: the training run's
    held-out budget (module.max_new_tokens, from adopt_training_run) with run=, else 256; a
    number given on the command line is used as it is. An unknown key is refused by name."""
    settings = OmegaConf.to_container(cfg.sampling, resolve=True)
    if settings.get("max_new_tokens") is None:
        settings["max_new_tokens"] = budget
    return sampling_params(settings)


def prompts_and_engine(
    model, tokenizer, data, rollout: Callable[..., Any], split: str, autocast: str | None
):
    """(problems, rendered prompts, prompt token ids, rollout engine) for a script that samples
    from `model` on `data`'s training (`split="train"`) or held-out problems. The script
    builds them from its config, so Hydra stays in scripts/: `model, tokenizer =
    instantiate(cfg.model)`, `data = instantiate(cfg.data, tokenizer=tokenizer)` and
    `rollout = instantiate(cfg.rollout)`, the engine's constructor (a partial)."""
    model.eval()
    data.setup("fit" if split == "train" else "validate")
    problems = data.train_problems if split == "train" else data.val_problems
    prompts = [data.prompt(p) for p in problems]
    prompt_ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    engine = rollout(model=model, tokenizer=tokenizer, autocast_dtype=autocast)
    return problems, prompts, prompt_ids, engine
