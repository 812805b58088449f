"""Math-Shepherd step labels for PRM training: the policy samples solutions to training
problems, each is cut into steps, each step prefix is rolled out N times to the end, and the
step is labelled by whether the rollouts reach the gold answer (r1.search.labelling).

python scripts/label_steps.py run=outputs/runs/<...>          # a run's checkpoint, data, template
python scripts/label_steps.py model.path=<checkpoint> label.rollouts_per_step=4
python scripts/label_steps.py label.mode=soft label.solutions_per_problem=8 label.num_problems=50
python scripts/label_steps.py label.delimiter='\\n\\n' label.max_steps=20 label.stop_after_first_zero=true

Writes <run dir>/steps.jsonl (one labelled solution per line: prompt, steps, labels, outcome;
`stage=prm data=steps data.path=<run dir>/steps.jsonl` trains a PRM on it), labels.json and
labels.md (the label statistics), and prints the summary. Only training problems are labelled:
the held-out ones score every stage.
"""

from __future__ import annotations

import logging

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from r1 import cli
from r1.eval.runs import adopt_training_run, prompts_and_engine, script_sampling
from r1.search.labelling import LabelSettings, label_problems, write_step_rows

log = logging.getLogger("r1.label_steps")


def unescape(delimiter):
    """A delimiter typed on the command line: Hydra passes label.delimiter='\\n\\n' through
    as backslash-n characters, so "\\n" and "\\t" become a newline and a tab here."""
    if not isinstance(delimiter, str):
        return delimiter  # LabelSettings names the bad value
    return delimiter.replace("\\n", "\n").replace("\\t", "\t")


@hydra.main(version_base="1.3", config_path="../conf", config_name="label_steps")
@cli.reports_user_errors
def main(cfg: DictConfig) -> float:
    torch.manual_seed(cfg.seed)
    answer_source, max_new_tokens = (
        adopt_training_run(cfg, take_reward=False) if cfg.run else ("answer_tag", 256)
    )
    label = cfg.label
    # the settings are checked (ConfigError: exit 2) before a model loads
    settings = LabelSettings(
        solutions_per_problem=label.solutions_per_problem,
        rollouts_per_step=label.rollouts_per_step,
        mode=label.mode,
        delimiter=unescape(label.delimiter),
        max_steps=label.max_steps,
        stop_after_first_zero=label.stop_after_first_zero,
        answer_source=label.answer_source or answer_source,
        batch_size=label.batch_size,
    )
    params = script_sampling(cfg, max_new_tokens)
    if label.num_problems:
        cfg.data.num_train = label.num_problems
    # never the held-out problems: they score every stage
    model, tokenizer = instantiate(cfg.model)
    data = instantiate(cfg.data, tokenizer=tokenizer)
    problems, prompts, _, engine = prompts_and_engine(
        model, tokenizer, data, instantiate(cfg.rollout), "train", label.autocast
    )
    rows, report = label_problems(engine, engine.tokenizer, problems, prompts, params, settings)
    path = write_step_rows(rows, report, cfg.paths.output_dir)
    print(report.markdown())
    print(f"written: {path} ({len(rows)} rows, {report.steps} steps), labels.json, labels.md")
    return report.mean_label


if __name__ == "__main__":
    cli.run(main)
