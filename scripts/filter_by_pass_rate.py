"""Offline difficulty filtering: each training problem's pass rate under a policy.

python scripts/filter_by_pass_rate.py data=multiplication measure.k=8      # SmolLM2 as shipped
python scripts/filter_by_pass_rate.py run=outputs/runs/<...>               # a run's checkpoint
python scripts/train.py stage=grpo data=multiplication data.pass_rates.path=<this run>/pass_rates.jsonl

Writes <run dir>/pass_rates.jsonl (question, pass_rate, level: every training problem of the
data settings) and pass_rates.json (never / sometimes / always solved, overall and per
level). data.pass_rates={path: ..., low: 0.0, high: 1.0} then keeps low < rate < high.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from r1 import cli
from r1.data.pass_rates import write_pass_rates
from r1.eval.pass_rate import pass_rates, summary
from r1.eval.runs import adopt_training_run, prompts_and_engine, script_sampling

log = logging.getLogger("r1.filter_by_pass_rate")


@hydra.main(version_base="1.3", config_path="../conf", config_name="filter_by_pass_rate")
@cli.reports_user_errors
def main(cfg: DictConfig) -> float:
    torch.manual_seed(cfg.seed)
    answer_source, max_new_tokens = (
        adopt_training_run(cfg, take_reward=False) if cfg.run else ("answer_tag", 256)
    )
    answer_source = cfg.measure.answer_source or answer_source
    params = script_sampling(cfg, max_new_tokens)
    model, tokenizer = instantiate(cfg.model)
    data = instantiate(cfg.data, tokenizer=tokenizer, pass_rates=None)
    problems, _, prompt_ids, engine = prompts_and_engine(
        model, tokenizer, data, instantiate(cfg.rollout), "train", cfg.measure.autocast
    )
    rates = pass_rates(
        engine, problems, prompt_ids, cfg.measure.k, params, answer_source, cfg.measure.batch_size
    )
    out = Path(cfg.paths.output_dir)
    path = write_pass_rates(problems, rates, out / "pass_rates.jsonl")
    report = {
        "settings": {
            "k": cfg.measure.k,
            "answer_source": answer_source,
            "sampling": OmegaConf.to_container(cfg.sampling, resolve=True),
        },
        **summary(problems, rates),
    }
    (out / "pass_rates.json").write_text(json.dumps(report, indent=2))
    print(f"{'level':<8}{'problems':>9}{'never':>7}{'sometimes':>11}{'always':>8}{'mean':>7}")
    for level, c in [*report["by_level"].items(), ("all", report["all"])]:
        print(
            f"{level:<8}{c['problems']:>9}{c['never']:>7}{c['sometimes']:>11}{c['always']:>8}"
            f"{c['mean_pass_rate']:>7.2f}"
        )
    print(f"written: {path}, pass_rates.json")
    return report["all"]["mean_pass_rate"]


if __name__ == "__main__":
    cli.run(main)
