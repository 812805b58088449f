"""Offline difficulty filtering: hand-written pass rates, the data option, and the script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from r1.checks import ConfigError
from r1.data.datamodule import ReasoningDataModule
from r1.data.pass_rates import PassRateFilter, write_pass_rates
from r1.data.problem import Problem

ROOT = Path(__file__).resolve().parents[2]


def test_only_problems_solved_sometimes_are_kept(tmp_path):
    problems = [Problem(f"Q{i}", "1", meta={"level": i % 2 + 1}) for i in range(5)]
    path = write_pass_rates(problems, [0.0, 0.25, 1.0, 0.5, 0.875], tmp_path / "rates.jsonl")
    assert json.loads(path.read_text().splitlines()[1]) == {
        "question": "Q1",
        "pass_rate": 0.25,
        "level": 2,
    }
    kept, counts = PassRateFilter(str(path)).apply(problems)
    assert [p.question for p in kept] == ["Q1", "Q3", "Q4"]
    assert counts == {"kept": 3, "too_easy": 1, "too_hard": 1}
    kept, counts = PassRateFilter(str(path), low=0.25, high=0.875).apply(problems)
    assert [p.question for p in kept] == ["Q3"]
    with pytest.raises(ConfigError, match="1 of 6 training problems have no pass rate"):
        PassRateFilter(str(path)).apply([*problems, Problem("new", "2")])
    with pytest.raises(ConfigError, match="keeps no training problem"):
        PassRateFilter(str(path), low=0.9).apply(problems)
    with pytest.raises(ConfigError, match="low=0.5 must be below data.pass_rates.high=0.5"):
        PassRateFilter(str(path), low=0.5, high=0.5)


def test_the_data_option_filters_training_problems_and_leaves_the_held_out_ones(
    tokenizer, tmp_path
):
    from r1.data.tasks import ArithmeticTask

    settings = dict(
        source=ArithmeticTask(digits=1, num_ops=[1, 2]),
        tokenizer=tokenizer,
        template={"kind": "plain"},
        num_train=20,
        num_val=5,
        train_format="prompts",
    )
    plain = ReasoningDataModule(**settings)
    plain.setup("fit")
    rates = [0.5 if p.meta["level"] == 2 else 1.0 for p in plain.train_problems]
    path = write_pass_rates(plain.train_problems, rates, tmp_path / "rates.jsonl")
    filtered = ReasoningDataModule(**settings, pass_rates={"path": str(path)})
    filtered.setup("fit")
    assert filtered.train_problems == [p for p in plain.train_problems if p.meta["level"] == 2]
    assert filtered.val_problems == plain.val_problems
    assert filtered.pass_rate_counts["too_easy"] == rates.count(1.0)


def test_the_script_writes_a_pass_rate_per_training_problem(tmp_path):
    run = tmp_path / "run"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "filter_by_pass_rate.py"),
            "model=tiny",
            "data.num_train=6",
            "data.num_val=2",
            "measure.k=2",
            "measure.autocast=null",
            "sampling.max_new_tokens=4",
            f"hydra.run.dir={run}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in (run / "pass_rates.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and all(r["pass_rate"] in (0.0, 0.5, 1.0) for r in rows)
    report = json.loads((run / "pass_rates.json").read_text())
    assert report["all"]["problems"] == 6 and report["settings"]["k"] == 2
