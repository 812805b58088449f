"""Benchmark presets scored during training (`module.val_benchmarks`): a fixed subset of each
preset's test set, every N optimizer steps, logged as val/<benchmark>/pass@1 (and pass@k).

The presets are read and scored by the evaluation code (r1.eval.benchmarks.preset_spec and
load_benchmark, r1.eval.benchmark_eval.run_benchmark), so a training curve and
`scripts/evaluate.py benchmark=<name>` grade alike. The subset is drawn once, with a fixed
seed, and kept in test-set order: every evaluation scores the same problems. Each preset
keeps its question format; `template` (by default the run's own kind and system prompt, as
`scripts/evaluate.py run=` does) sets the markup the policy was trained on. Files are read
when the module is built, so a missing one fails before training starts.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from r1.checks import ConfigError, check_int
from r1.data.loaders import DataError
from r1.data.problem import Problem
from r1.data.templates import PromptTemplate
from r1.eval.benchmark_eval import run_benchmark
from r1.eval.benchmarks import load_benchmark, preset_spec
from r1.rollout.types import SamplingParams

SUBSET_SEED = 0  # the subset does not move with the run's seed: runs compare on one set


def fixed_subset(problems: Sequence[Problem], size: int | None, seed: int = SUBSET_SEED):
    """`size` problems drawn with `seed`, in their original order; all of them for None."""
    if size is None or size >= len(problems):
        return list(problems)
    chosen = sorted(random.Random(seed).sample(range(len(problems)), size))
    return [problems[i] for i in chosen]


class ValBenchmarks:
    def __init__(
        self,
        names: Sequence[str] = (),
        every_n_steps: int = 50,
        num_problems: int | None = 32,
        k: int = 4,
        batch_size: int = 8,
        paths: Mapping[str, str | None] | None = None,
        template: Mapping[str, Any] | None = None,
        seed: int = 0,
    ):
        self.every_n_steps = check_int("module.val_benchmarks.every_n_steps", every_n_steps, 1)
        if num_problems is not None:
            check_int("module.val_benchmarks.num_problems", num_problems, 1)
        self.k = check_int("module.val_benchmarks.k", k, 1)
        self.batch_size = check_int("module.val_benchmarks.batch_size", batch_size, 1)
        self.seed = seed
        paths = {name: path for name, path in dict(paths or {}).items() if path is not None}
        stray = sorted(set(paths) - set(names))
        if stray:
            raise ConfigError(
                f"module.val_benchmarks.paths names {', '.join(stray)}, not in "
                f"module.val_benchmarks.names {list(names)}"
            )
        self.specs = [preset_spec(name, paths.get(name)) for name in names]
        self.problems = []
        for spec in self.specs:
            try:
                problems = load_benchmark(spec)
            except DataError as error:
                raise DataError(
                    f"module.val_benchmarks: {error} (in training: "
                    f"module.val_benchmarks.paths.{spec.name}=<file>)"
                ) from None
            self.problems.append(fixed_subset(problems, num_problems))
        markup = {
            k: v
            for k, v in dict(template or {}).items()
            if k in ("kind", "system", "response_prefix")
        }
        self.templates = [
            replace(PromptTemplate(**dict(spec.template)), **markup) for spec in self.specs
        ]

    def due(self, step: int) -> bool:
        return bool(self.specs) and step % self.every_n_steps == 0

    def evaluate(self, engine, tokenizer, params: SamplingParams) -> dict[str, float]:
        """val/<name>/pass@1 of each benchmark's subset (and pass@k for k > 1)."""
        metrics = {}
        for spec, problems, template in zip(self.specs, self.problems, self.templates):
            result = run_benchmark(
                engine,
                spec,
                problems,
                tokenizer,
                self.k,
                params,
                template,
                seed=self.seed,
                batch_size=self.batch_size,
                progress=False,
            )
            metrics[f"val/{spec.name}/pass@1"] = result.metrics["pass@1"]
            if self.k > 1:
                metrics[f"val/{spec.name}/pass@k"] = result.metrics["pass@k"]
        return metrics
