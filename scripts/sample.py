"""Rejection sampling: k samples per training prompt from a checkpoint, kept only if correct and
readable (r1.eval.filters), written as an SFT dataset with a per-filter report.

python scripts/sample.py run=outputs/runs/<...>                 # a run's checkpoint, data, template
python scripts/sample.py model.path=<checkpoint> sample.k=8 filters.max_repetition=null
python scripts/sample.py ... filters.min_language_consistency=null   # a filter off

Writes <run dir>/sft.jsonl (question, answer, task, meta, completion: the sampled text, which
`data=jsonl` SFT trains on verbatim), rejection.json and rejection.md.
"""

from __future__ import annotations

import logging

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from r1 import cli
from r1.eval.filters import FilterSettings
from r1.eval.rejection import reject_sample, write_dataset
from r1.eval.runs import adopt_training_run, prompts_and_engine, script_sampling

log = logging.getLogger("r1.sample")


@hydra.main(version_base="1.3", config_path="../conf", config_name="sample")
@cli.reports_user_errors
def main(cfg: DictConfig) -> float:
    torch.manual_seed(cfg.seed)
    answer_source, max_new_tokens = (
        adopt_training_run(cfg, take_reward=False) if cfg.run else ("answer_tag", 256)
    )
    settings = OmegaConf.to_container(cfg.filters)
    settings["answer_source"] = settings["answer_source"] or answer_source
    filters = FilterSettings(**settings)
    params = script_sampling(cfg, max_new_tokens)
    if cfg.sample.num_prompts:
        cfg.data.num_train = cfg.sample.num_prompts
    # never the held-out problems: they score every stage
    model, tokenizer = instantiate(cfg.model)
    data = instantiate(cfg.data, tokenizer=tokenizer)
    problems, prompts, prompt_ids, engine = prompts_and_engine(
        model, tokenizer, data, instantiate(cfg.rollout), "train", cfg.sample.autocast
    )
    rows, report = reject_sample(
        engine, problems, prompts, prompt_ids, cfg.sample.k, params, filters, cfg.sample.batch_size
    )
    path = write_dataset(rows, report, cfg.paths.output_dir)
    print(report.markdown())
    print(f"written: {path} ({report.kept} rows), rejection.json, rejection.md")
    return report.kept / max(report.total, 1)


if __name__ == "__main__":
    cli.run(main)
