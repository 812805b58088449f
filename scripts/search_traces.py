"""Expert iteration's data: MCTS on training problems, the best correct solutions found become
an SFT dataset (the search half of AlphaZero-style self-improvement, DeepSeek-R1 section 4.2).

python scripts/search_traces.py run=outputs/runs/<...>               # a run's checkpoint and data
python scripts/search_traces.py model.path=<checkpoint> search.token_budget=4096 traces.keep=2
python scripts/search_traces.py ... search.evaluator=prm search.prm.path=<PRM checkpoint>
python scripts/train.py stage=sft data=jsonl data.source.path=<this run>/sft.jsonl \
    data.source.solution_field=null model.path=<checkpoint>          # train on what was found

By default a finished solution is valued by the rule reward against the gold answer
(search.terminal=oracle): on training problems the gold answer is training data, unlike at
test time (scripts/evaluate.py search=mcts). With terminal=prm the search is gold-free and the
gold answer only decides which of its solutions are kept.

Writes <run dir>/sft.jsonl (question, answer, task, meta, completion, as scripts/sample.py
does), search.json and search.md (problems, solved, traces kept, tokens generated).
"""

from __future__ import annotations

import logging

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from r1 import cli
from r1.checks import check_choice
from r1.data.templates import PromptTemplate
from r1.eval.runs import adopt_training_run, prompts_and_engine, script_sampling
from r1.search.searchers import (
    MCTSSettings,
    check_search_config,
    collect_traces,
    completion_lead,
    load_search_prm,
    write_traces,
)

log = logging.getLogger("r1.search_traces")


@hydra.main(version_base="1.3", config_path="../conf", config_name="search_traces")
@cli.reports_user_errors
def main(cfg: DictConfig) -> float:
    torch.manual_seed(cfg.seed)
    search = OmegaConf.to_container(cfg.search, resolve=True)
    check_choice(
        "search.method", search.get("method"), ["mcts"]
    )  # the only search that finds traces
    check_search_config(search, test_time=False)
    settings = MCTSSettings.from_config(search)
    answer_source, max_new_tokens = (
        adopt_training_run(cfg, take_reward=False) if cfg.run else ("answer_tag", 256)
    )
    answer_source = cfg.traces.answer_source or answer_source
    # checked (ConfigError: exit 2) before a model loads
    params = script_sampling(cfg, max_new_tokens)
    if cfg.traces.num_prompts:
        cfg.data.num_train = cfg.traces.num_prompts
    scorer = load_search_prm(search.get("prm"), seed=cfg.seed)
    # never the held-out problems: they score every stage
    model, tokenizer = instantiate(cfg.model)
    data = instantiate(cfg.data, tokenizer=tokenizer)
    problems, prompts, _, engine = prompts_and_engine(
        model, tokenizer, data, instantiate(cfg.rollout), "train", cfg.traces.autocast
    )
    template = OmegaConf.to_container(cfg.data.get("template") or {}, resolve=True)
    rows, report = collect_traces(
        problems,
        prompts,
        engine,
        engine.tokenizer,
        scorer,
        settings,
        params,
        keep=cfg.traces.keep,
        lead=completion_lead(PromptTemplate(**template)),
        answer_source=answer_source,
    )
    path = write_traces(rows, report, cfg.paths.output_dir)
    print(report.markdown())
    print(f"written: {path} ({report.traces_kept} rows), search.json, search.md")
    return report.solved / max(report.problems, 1)


if __name__ == "__main__":
    cli.run(main)
