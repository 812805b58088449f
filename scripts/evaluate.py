"""Evaluate a model as the paper does: k samples per held-out problem at temperature 0.6 and
top-p 0.95; pass@1 averaged over the k samples, unbiased pass@k, cons@k (majority vote over
equivalent answers), format / stop / language-consistency rates, length percentiles and
reflection words. Prints a markdown table and writes eval.json and eval.md to the run dir.

python scripts/evaluate.py                                              # SmolLM2 on arithmetic
python scripts/evaluate.py model.path=outputs/runs/<...>/checkpoint eval.k=16
python scripts/evaluate.py run=outputs/runs/<...>          # a run's checkpoint, data and reward
python scripts/evaluate.py model=hub model.name=Qwen/Qwen2.5-0.5B-Instruct data=gsm8k
python scripts/evaluate.py data=countdown data.num_val=200 eval.answer_source=answer_tag
"""

from __future__ import annotations

import logging

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig

from r1.eval.runner import evaluate
from r1.eval.runs import adopt_training_run, prompts_and_engine
from r1.rollout.types import SamplingParams

log = logging.getLogger("r1.evaluate")


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
def main(cfg: DictConfig) -> float:
    torch.manual_seed(cfg.seed)
    answer_source, max_new_tokens = adopt_training_run(cfg) if cfg.run else ("answer_tag", 256)
    answer_source = cfg.eval.answer_source or answer_source
    max_new_tokens = cfg.eval.max_new_tokens or max_new_tokens
    if cfg.eval.num_val:
        cfg.data.num_val = cfg.eval.num_val
    problems, prompts, prompt_ids, engine = prompts_and_engine(cfg, "held-out", cfg.eval.autocast)
    params = SamplingParams(
        max_new_tokens=max_new_tokens,
        temperature=cfg.eval.temperature,
        top_p=cfg.eval.top_p,
    )
    choices = HydraConfig.get().runtime.choices
    report = evaluate(
        engine,
        problems,
        prompts,
        prompt_ids,
        k=cfg.eval.k,
        params=params,
        answer_source=answer_source,
        reward=instantiate(cfg.reward),
        batch_size=cfg.eval.batch_size,
        settings={
            "model": cfg.model.get("path") or cfg.model.get("name") or choices.get("model"),
            "run": cfg.run,
            "data": choices.get("data"),
            "seed": cfg.seed,
        },
    )
    json_path, _ = report.write(cfg.paths.output_dir)
    print(report.markdown(cfg.eval.num_samples_shown))
    print(f"written: {json_path} and eval.md")
    return report.metrics["pass@1"]


if __name__ == "__main__":
    main()
