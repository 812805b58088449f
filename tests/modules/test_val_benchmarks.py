"""module.val_benchmarks: benchmark presets scored during training, val/<name>/pass@1."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from run_files import metrics_rows

from r1.checks import ConfigError
from r1.data.problem import Problem
from r1.modules.val_benchmarks import ValBenchmarks, fixed_subset
from r1.rollout.types import Rollout, SamplingParams

ROOT = Path(__file__).resolve().parents[2]
GSM8K = ROOT / "tests" / "eval" / "fixtures" / "gsm8k.jsonl"  # golds 7, 1200, 4.5


class Tokenizer:
    def __init__(self):
        self.texts: list[str] = []

    def __call__(self, text, add_special_tokens=False):
        self.texts.append(text)
        return {"input_ids": [len(self.texts) - 1]}


class BoxEngine:
    """Answers \\boxed{7} to every prompt."""

    def __init__(self):
        self.prompts = 0

    def generate(self, prompt_ids, params, n):
        rows = len(prompt_ids) * n
        self.prompts += len(prompt_ids)
        return Rollout(
            prompt_ids=torch.ones(len(prompt_ids), 1, dtype=torch.long),
            prompt_mask=torch.ones(len(prompt_ids), 1, dtype=torch.long),
            completion_ids=torch.ones(rows, 2, dtype=torch.long),
            completion_mask=torch.ones(rows, 2, dtype=torch.long),
            sampling_logprobs=torch.zeros(rows, 2),
            ends=["eos"] * rows,
            texts=["\\boxed{7}"] * rows,
            group_size=n,
        )


def test_the_subset_is_fixed_and_in_test_set_order():
    problems = [Problem(str(i), str(i)) for i in range(10)]
    subset = fixed_subset(problems, 4)
    assert subset == fixed_subset(problems, 4) and len(subset) == 4
    assert [int(p.question) for p in subset] == sorted(int(p.question) for p in subset)
    assert fixed_subset(problems, None) == problems == fixed_subset(problems, 50)


def test_presets_are_read_and_scored_by_the_evaluation_code():
    benchmarks = ValBenchmarks(
        ["gsm8k"], every_n_steps=5, num_problems=None, k=2, paths={"gsm8k": str(GSM8K)},
        template={"kind": "plain", "system": None},
    )  # fmt: skip
    assert [len(p) for p in benchmarks.problems] == [3]  # every row of the file
    assert benchmarks.templates[0].kind == "plain"
    assert "final answer within" in benchmarks.templates[0].user_format  # the preset's
    assert [benchmarks.due(s) for s in (0, 1, 5, 7, 10)] == [True, False, True, False, True]
    engine = BoxEngine()
    metrics = benchmarks.evaluate(engine, Tokenizer(), SamplingParams(max_new_tokens=4))
    assert metrics == {"val/gsm8k/pass@1": 1 / 3, "val/gsm8k/pass@k": 1 / 3}  # only 7 is right
    assert engine.prompts == 3


def test_bad_settings_are_named():
    with pytest.raises(ConfigError, match="unknown benchmark preset 'nope'"):
        ValBenchmarks(["nope"])
    with pytest.raises(ConfigError, match="paths names math500, not in"):
        ValBenchmarks(["gsm8k"], paths={"gsm8k": str(GSM8K), "math500": "x.jsonl"})
    with pytest.raises(ConfigError, match="every_n_steps"):
        ValBenchmarks(["gsm8k"], every_n_steps=0, paths={"gsm8k": str(GSM8K)})


def test_a_tiny_grpo_run_logs_benchmark_pass_at_1(tmp_path):
    import subprocess

    run_dir = tmp_path / "run"
    command = [
        sys.executable,
        "scripts/train.py",
        "stage=grpo",
        "model=tiny",
        f"hydra.run.dir={run_dir}",
        "data.num_train=8",
        "data.num_val=2",
        "data.batch_size=2",
        "module.group_size=2",
        "module.sampling.max_new_tokens=4",
        "module.kl_coef=0",
        "module.dynamic_sampling=false",  # the tiny model's rewards all tie: nothing to refill
        "trainer.max_steps=3",
        "validate_before_training=false",
        "trainer.val_check_interval=3",
        "module.val_benchmarks.names=[gsm8k]",
        f"module.val_benchmarks.paths.gsm8k={GSM8K}",
        "module.val_benchmarks.every_n_steps=2",
        "module.val_benchmarks.num_problems=2",
        "module.val_benchmarks.k=2",
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = metrics_rows(run_dir)
    scored = [
        (int(r["step"]), float(r["val/gsm8k/pass@1"])) for r in rows if r.get("val/gsm8k/pass@1")
    ]
    assert [step for step, _ in scored] == [0, 2]  # at step 0 and after 2 optimizer steps
    assert all(0.0 <= value <= 1.0 for _, value in scored)
    assert any(r.get("val/gsm8k/pass@k") for r in rows)
