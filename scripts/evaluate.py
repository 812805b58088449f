"""Evaluate a model as the paper does: k samples per held-out problem at temperature 0.6 and
top-p 0.95; pass@1 averaged over the k samples, unbiased pass@k, cons@k (majority vote over
equivalent answers), format / stop / language-consistency rates, length percentiles and
reflection words. Prints a markdown table and writes eval.json and eval.md to the run dir.

python scripts/evaluate.py                                              # SmolLM2 on arithmetic
python scripts/evaluate.py model.path=outputs/runs/<...>/checkpoint eval.k=16
python scripts/evaluate.py run=outputs/runs/<...>          # a run's checkpoint, data and reward
python scripts/evaluate.py model=hub model.name=Qwen/Qwen2.5-0.5B-Instruct data=gsm8k
python scripts/evaluate.py data=countdown data.num_val=200 eval.answer_source=answer_tag

Search at test time (conf/search/): one answer per problem, chosen without the gold answer.
python scripts/evaluate.py search=best_of_n search.n=8 search.prm.path=<stage=prm run>/checkpoint
python scripts/evaluate.py search=mcts search.token_budget=2048 search.prm.path=<...>/checkpoint

The ablation "plain sampling vs best-of-N vs MCTS at an equal generated-token budget": run
search=none with eval.k=K and read its tokens_per_problem (K x mean completion length, T);
best_of_n with search.n=K generates the same T on average; give MCTS search.token_budget=T
(its searches stop once T tokens were generated; tokens_per_problem reports what they used).
Compare search=none's cons@k (majority vote: its gold-free choice among the K samples) with
the searches' accuracy. A search report carries accuracy, tokens_per_problem, format and stop
rates and, for MCTS, search_stop_budget_rate and search_found_rate.

Benchmarks (conf/benchmark/, docs/benchmarks.md): a preset's whole test set, k samples each;
<name>.jsonl (every sample with its score), benchmarks.json and benchmarks.md in the run dir.
python scripts/evaluate.py benchmark=humaneval model.path=<checkpoint> eval.k=4
python scripts/evaluate.py benchmark=math500 benchmark.path=math500.jsonl run=outputs/runs/<...>
python scripts/evaluate.py benchmarks=[humaneval,math500] run=outputs/runs/<...>
"""

from __future__ import annotations

import logging
from dataclasses import asdict, replace
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from r1 import cli
from r1.data.templates import PromptTemplate
from r1.eval.runner import EvalReport, evaluate
from r1.eval.runs import adopt_training_run, prompts_and_engine, script_sampling

log = logging.getLogger("r1.evaluate")
BENCHMARK_CONF = Path(__file__).resolve().parents[1] / "conf" / "benchmark"


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
@cli.reports_user_errors
def main(cfg: DictConfig) -> float:
    torch.manual_seed(cfg.seed)
    if cfg.get("benchmark") is not None or cfg.benchmarks:
        return benchmark_eval(cfg)
    search = OmegaConf.to_container(cfg.search, resolve=True)
    if search["method"] != "none":
        from r1.search.searchers import check_search_config

        check_search_config(search, test_time=True)
    answer_source, max_new_tokens = adopt_training_run(cfg) if cfg.run else ("answer_tag", 256)
    answer_source = cfg.eval.answer_source or answer_source
    # checked (ConfigError: exit 2) before a model loads
    params = script_sampling(cfg, max_new_tokens)
    if cfg.eval.num_val:
        cfg.data.num_val = cfg.eval.num_val
    model, tokenizer = instantiate(cfg.model)
    data = instantiate(cfg.data, tokenizer=tokenizer)
    problems, prompts, prompt_ids, engine = prompts_and_engine(
        model, tokenizer, data, instantiate(cfg.rollout), "held-out", cfg.eval.autocast
    )
    choices = HydraConfig.get().runtime.choices
    settings = {
        "model": cfg.model.get("path") or cfg.model.get("name") or choices.get("model"),
        "run": cfg.run,
        "data": choices.get("data"),
        "seed": cfg.seed,
    }
    if search["method"] != "none":
        report = search_eval(
            cfg, search, problems, prompts, prompt_ids, engine, params, answer_source
        )
        report.settings |= settings
        return finish(cfg, report, "accuracy")
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
        settings={**settings, "search": "none"},
    )
    return finish(cfg, report, "pass@1")


def search_eval(
    cfg, search, problems, prompts, prompt_ids, engine, params, answer_source
) -> EvalReport:
    """One answer per problem by best-of-N or MCTS (r1.search.searchers); gold-free unless
    search.terminal=oracle was allowed, which the report then says."""
    from r1.search.searchers import (
        MCTSSettings,
        best_of_n,
        completion_lead,
        load_search_prm,
        mcts_solve,
        search_report,
    )

    scorer = load_search_prm(search.get("prm"), seed=cfg.seed)
    method = search["method"]
    if method == "best_of_n":
        outcomes = best_of_n(
            engine,
            scorer,
            problems,
            prompts,
            prompt_ids,
            search["n"],
            params,
            aggregate=search["aggregate"],
            answer_source=answer_source,
            batch_size=cfg.eval.batch_size,
        )
        knobs = {"n": search["n"], "aggregate": search["aggregate"]}
        oracle = False
    else:
        mcts = MCTSSettings.from_config(search)
        template = OmegaConf.to_container(cfg.data.get("template") or {}, resolve=True)
        lead = completion_lead(PromptTemplate(**template))
        outcomes = [
            mcts_solve(
                problem,
                prompt,
                engine,
                engine.tokenizer,
                scorer,
                mcts,
                params,
                lead=lead,
                answer_source=answer_source,
            )
            for problem, prompt in tqdm(list(zip(problems, prompts)), desc="MCTS", unit="problem")
        ]
        knobs = {key: value for key, value in asdict(mcts).items() if key != "allow_oracle"}
        oracle = mcts.terminal == "oracle"
    prm = search.get("prm") or {}
    return search_report(
        method,
        problems,
        outcomes,
        answer_source,
        {
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_new_tokens": params.max_new_tokens,
            "search_settings": {**knobs, "prm": prm.get("path") or prm.get("name")},
            "oracle": oracle,
        },
    )


def benchmark_specs(cfg: DictConfig) -> list:
    """The presets to score: `benchmarks` (each from conf/benchmark/<name>.yaml), with the one
    chosen as `benchmark=<name>` (and its command-line settings) in its place or added."""
    from r1.eval.benchmarks import benchmark_spec, preset_spec

    chosen = cfg.get("benchmark")
    names = list(cfg.benchmarks or [])
    if chosen is not None and chosen.name not in names:
        names.append(chosen.name)
    paths = cfg.get("benchmark_paths") or {}
    specs = []
    for name in names:
        if chosen is not None and name == chosen.name:
            settings = OmegaConf.to_container(chosen, resolve=True)
            if paths.get(name) is not None:
                settings["path"] = paths[name]
            specs.append(benchmark_spec(settings))
        else:
            specs.append(preset_spec(name, paths.get(name), BENCHMARK_CONF))
    return specs


def benchmark_eval(cfg: DictConfig) -> float:
    """Score each benchmark's whole test set with k samples per problem; returns the first
    benchmark's pass@1."""
    from r1.data.templates import PromptTemplate
    from r1.eval.benchmark_eval import run_benchmark, summary_markdown, write_summary
    from r1.eval.benchmarks import load_benchmark

    if cfg.search.method != "none":
        from r1.checks import ConfigError

        raise ConfigError("benchmarks are scored with search=none (k samples per problem)")
    specs = benchmark_specs(cfg)
    run_template = None
    budget = 256
    if cfg.run:
        _, budget = adopt_training_run(cfg, take_reward=False)
        run_template = OmegaConf.to_container(cfg.data.get("template") or {}, resolve=True)
    params = script_sampling(cfg, budget)
    # every file and row is read before a model loads: a bad one fails in seconds
    problem_sets = [load_benchmark(spec) for spec in specs]
    model, tokenizer = instantiate(cfg.model)
    model.eval()
    engine = instantiate(cfg.rollout)(
        model=model, tokenizer=tokenizer, autocast_dtype=cfg.eval.autocast
    )
    results = []
    for spec, problems in zip(specs, problem_sets):
        template = PromptTemplate(**dict(spec.template))
        if run_template:  # the run was trained on its own markup; the question stays the preset's
            template = replace(
                template,
                kind=run_template.get("kind", template.kind),
                system=run_template.get("system", template.system),
            )
        results.append(
            run_benchmark(
                engine,
                spec,
                problems,
                tokenizer,
                k=cfg.eval.k,
                params=params,
                template=template,
                seed=cfg.seed,
                batch_size=cfg.eval.batch_size,
            )
        )
    choices = HydraConfig.get().runtime.choices
    settings = {
        "model": cfg.model.get("path") or cfg.model.get("name") or choices.get("model"),
        "run": cfg.run,
        "k": cfg.eval.k,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "max_new_tokens": params.max_new_tokens,
        "seed": cfg.seed,
    }
    json_path, md_path = write_summary(cfg.paths.output_dir, results, settings)
    print(summary_markdown([r.summary() for r in results], settings))
    print(f"written: {json_path}, {md_path.name} and one <benchmark>.jsonl per benchmark")
    return results[0].metrics["pass@1"]


def finish(cfg: DictConfig, report: EvalReport, metric: str) -> float:
    json_path, _ = report.write(cfg.paths.output_dir)
    print(report.markdown(cfg.eval.num_samples_shown))
    print(f"written: {json_path} and eval.md")
    return report.metrics[metric]


if __name__ == "__main__":
    cli.run(main)
