"""The evaluation runner on a scripted engine (numbers checked by hand) and scripts/evaluate.py
end to end on the tiny model (schema and internal consistency)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from r1.data.problem import Problem
from r1.eval.runner import evaluate
from r1.rollout.types import Rollout, SamplingParams

ROOT = Path(__file__).resolve().parents[2]


class ScriptedEngine:
    """Returns the given texts, in order; `...` marks a completion cut at the token limit."""

    def __init__(self, texts):
        self.texts = list(texts)

    def generate(self, prompt_ids, params, n):
        rows = len(prompt_ids) * n
        texts, self.texts = self.texts[:rows], self.texts[rows:]
        return Rollout(
            prompt_ids=torch.ones(len(prompt_ids), 1, dtype=torch.long),
            prompt_mask=torch.ones(len(prompt_ids), 1, dtype=torch.long),
            completion_ids=torch.ones(rows, 4, dtype=torch.long),
            completion_mask=torch.tensor(
                [[1, 1, 1, 1] if t.endswith("...") else [1, 1, 0, 0] for t in texts]
            ),
            sampling_logprobs=torch.zeros(rows, 4),
            ends=["length" if t.endswith("...") else "eos" for t in texts],
            texts=texts,
            group_size=n,
        )


def answer(value: str, think: str = "ok") -> str:
    return f"<think>{think}</think><answer>{value}</answer>"


def test_pass_and_cons_at_k_by_hand():
    problems = [
        Problem(question="What is one half as a number?", answer="1/2", meta={"language": "en"}),
        Problem(question="What is two plus two?", answer="4", meta={"language": "en"}),
    ]
    engine = ScriptedEngine(
        [
            # problem 1: 2 of 4 right; the majority (0.5 = 1/2 = \frac{1}{2}, 3 votes) is right
            answer("0.5"),
            answer("3"),
            answer("\\frac{1}{2}", think="wait, let me verify"),
            answer("1/2") + "...",  # right answer, but cut off: wrong, and no vote
            # problem 2: 1 of 4 right; the majority (5, twice) is wrong
            answer("4"),
            answer("5"),
            answer("5"),
            "no tags at all",
        ]
    )
    report = evaluate(
        engine, problems, ["p1", "p2"], [[1], [2]], k=4, params=SamplingParams(4), progress=False
    )
    m = report.metrics
    assert m["pass@1"] == pytest.approx((2 / 4 + 1 / 4) / 2)
    assert m["pass@k"] == 1.0  # both problems have a right sample among 4
    assert m["cons@k"] == 0.5
    assert report.problems[0]["majority"] == "0.5" and report.problems[0]["majority_correct"]
    assert report.problems[1]["majority"] == "5"
    assert report.problems[0]["answers"][3] is None  # did not stop: no vote
    assert m["stop_rate"] == 7 / 8 and m["format_rate"] == 6 / 8
    assert m["reflection_words"] == 2 / 8 and m["reflection_rate"] == 1 / 8
    assert m["completion_len_max"] == 4 and m["completion_len_p50"] == 2
    # behaviour: stopped completions are 2 tokens, the cut one 4; right: 3 of 8 (all 2 tokens)
    assert m["reflection_rate/wait"] == 1 / 8 and m["reflection_rate/verify"] == 1 / 8
    assert m["completion_len_correct"] == 2.0
    assert m["completion_len_incorrect"] == pytest.approx((2 + 4 + 2 + 2 + 2) / 5)
    assert "completion_len_level_1" not in m  # these problems have no level
    assert 0.0 <= m["lang_consistency"] <= 1.0
    assert "| pass@1 | 0.3750 |" in report.markdown() and "| cons@4 | 0.5000 |" in report.markdown()


def test_grader_failures_are_counted_and_never_crash(monkeypatch):
    from r1.rewards import sandbox

    def fails(plan, code, stdin, limits):
        raise sandbox.SandboxError("sandbox setup failed: BlockingIOError")

    monkeypatch.setattr(sandbox, "_run", fails)
    tests = [{"assert": "assert f() == 1"}]
    problems = [Problem(question="Write f.", answer="", task="code", meta={"tests": tests})]
    program = answer("```python\ndef f():\n    return 1\n```")
    report = evaluate(
        ScriptedEngine([program, program]),
        problems,
        ["p"],
        [[1]],
        k=2,
        params=SamplingParams(4),
        progress=False,
    )
    assert report.metrics["pass@1"] == 0.0
    assert report.metrics["grader_errors"] == 3.0  # two samples and the majority vote


def test_evaluate_script_on_the_tiny_model(tmp_path):
    out = tmp_path / "eval"
    command = [
        sys.executable,
        "scripts/evaluate.py",
        "model=tiny",
        "data.num_val=5",
        "eval.k=3",
        "sampling.max_new_tokens=8",
        f"hydra.run.dir={out}",
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = json.loads((out / "eval.json").read_text())
    assert set(report) == {"settings", "metrics", "problems"}
    assert report["settings"] | {"k": 3, "temperature": 0.6, "top_p": 0.95} == report["settings"]
    assert report["settings"]["num_problems"] == 5 and len(report["problems"]) == 5
    metrics = report["metrics"]
    for name in (
        "pass@1",
        "pass@k",
        "cons@k",
        "format_rate",
        "lang_consistency",
        "reflection_words",
    ):
        assert 0.0 <= metrics[name] <= (1.0 if "reflection" not in name else 100), name
    correct = [c for p in report["problems"] for c in p["correct"]]
    assert len(correct) == 15
    assert metrics["pass@1"] == pytest.approx(sum(correct) / len(correct))
    assert metrics["pass@k"] >= metrics["pass@1"]
    assert all(len(p["completions"]) == 3 for p in report["problems"])
    assert 0 < metrics["completion_len_mean"] <= 8
    assert "| pass@1 |" in result.stdout and (out / "eval.md").read_text().startswith(
        "# Evaluation"
    )


@pytest.mark.slow  # a training run, then its evaluation; the evaluate script runs quickly above
def test_evaluate_a_training_run_on_its_own_data(tmp_path):
    run = tmp_path / "run"
    train = [
        sys.executable,
        "scripts/train.py",
        "stage=grpo",
        "model=tiny",
        "data.num_train=8",
        "data.num_val=3",
        "data.batch_size=2",
        "data.source.question_format='Compute {expression}.'",
        "module.group_size=2",
        "module.sampling.max_new_tokens=4",
        "module.max_new_tokens=5",
        "module.answer_source=last_number",
        "module.dynamic_sampling=false",  # the tiny model's rewards all tie: nothing to refill
        "trainer.max_steps=1",
        "validate_before_training=false",
        f"hydra.run.dir={run}",
    ]
    trained = subprocess.run(train, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert trained.returncode == 0, trained.stderr[-2000:]
    out = tmp_path / "eval"
    command = [
        sys.executable,
        "scripts/evaluate.py",
        f"run={run}",
        "eval.k=2",
        f"hydra.run.dir={out}",
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = json.loads((out / "eval.json").read_text())
    settings = report["settings"]
    assert settings["model"] == str(run / "checkpoint") and settings["run"] == str(run)
    assert settings["answer_source"] == "last_number" and settings["max_new_tokens"] == 5
    assert settings["num_problems"] == 3
    assert all(p["question"].startswith("Compute ") for p in report["problems"])
