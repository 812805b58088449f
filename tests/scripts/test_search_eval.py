"""scripts/evaluate.py search=best_of_n|mcts and scripts/search_traces.py end to end on the tiny
model and a tiny random PRM, as a user runs them: the reports' schema and their internal
consistency (the tiny model solves nothing, so accuracy itself says little here; the searches'
choices are checked by hand in tests/search/test_searchers.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY = ["model=tiny", "data.num_val=2", "sampling.max_new_tokens=8", "search.prm.name=tiny"]


def run(script: str, out: Path, *overrides: str) -> subprocess.CompletedProcess:
    command = [sys.executable, f"scripts/{script}", f"hydra.run.dir={out}", *overrides]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


def report_of(result: subprocess.CompletedProcess, out: Path) -> dict:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((out / "eval.json").read_text())
    assert set(report) == {"settings", "metrics", "problems"}
    assert report["settings"]["num_problems"] == 2 and len(report["problems"]) == 2
    assert report["settings"]["oracle"] is False
    metrics = report["metrics"]
    correct = [p["correct"][0] for p in report["problems"]]
    assert metrics["accuracy"] == pytest.approx(sum(correct) / 2)
    tokens = [p["tokens_used"] for p in report["problems"]]
    assert metrics["tokens_per_problem"] == pytest.approx(sum(tokens) / 2)
    assert (out / "eval.md").read_text().startswith("# Evaluation")
    return report


def test_best_of_n_counts_all_n_samples_and_chooses_one(tmp_path):
    out = tmp_path / "best_of_n"
    result = run("evaluate.py", out, *TINY, "search=best_of_n", "search.n=3")
    report = report_of(result, out)
    assert report["settings"]["search"] == "best_of_n"
    assert report["settings"]["search_settings"] == {"n": 3, "aggregate": "min", "prm": "tiny"}
    for problem in report["problems"]:
        # 3 samples of at most 8 tokens each, every one counted
        assert 3 <= problem["tokens_used"] <= 3 * 8 and problem["candidates"] == 3
        assert 0.0 <= problem["value"] <= 1.0 and len(problem["completions"]) == 1
    assert "by search `best_of_n` (n=3, aggregate=min, prm=tiny)" in result.stdout


def test_mcts_stays_within_its_budget_plus_one_call(tmp_path):
    out = tmp_path / "mcts"
    overrides = ["search=mcts", "search.width=2", "search.step_max_tokens=4"]
    result = run("evaluate.py", out, *TINY, *overrides, "search.token_budget=12")
    report = report_of(result, out)
    assert report["settings"]["search"] == "mcts"
    assert report["settings"]["search_settings"]["terminal"] == "prm"
    for name in ("search_stop_budget_rate", "search_found_rate", "search_nodes_mean"):
        assert name in report["metrics"]
    for problem in report["problems"]:
        # the budget is checked before each call; one expansion costs at most 2 x 4 tokens
        assert 0 < problem["tokens_used"] <= 12 + 2 * 4
        assert problem["stop_reason"] in ("budget", "exhausted")
        assert problem["completions"][0].startswith("<think>\n")
        assert len(problem["traces"]) == problem["candidates"]


def test_test_time_oracle_search_is_refused_before_loading_a_model(tmp_path):
    out = tmp_path / "oracle"
    result = run(
        "evaluate.py",
        out,
        "model=tiny",
        "search=mcts",
        "search.evaluator=rollout",
        "search.terminal=oracle",
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    assert "search.allow_oracle=true" in output and "Traceback" not in output
    assert not (out / "eval.json").exists()


def test_search_traces_writes_a_dataset_and_its_report(tmp_path):
    out = tmp_path / "traces"
    result = run(
        "search_traces.py",
        out,
        "model=tiny",
        "data.num_train=2",
        "sampling.max_new_tokens=6",
        "search.width=2",
        "search.step_max_tokens=4",
        "search.token_budget=16",
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((out / "search.json").read_text())
    assert report["problems"] == 2 and report["settings"]["terminal"] == "oracle"
    rows = [json.loads(line) for line in (out / "sft.jsonl").read_text().splitlines()]
    assert len(rows) == report["traces_kept"] <= 2 * report["settings"]["keep"]
    assert report["solved"] <= report["problems"] and 0 < report["tokens_used"] <= 2 * (16 + 8)
    assert all(set(row) == {"question", "answer", "task", "meta", "completion"} for row in rows)
    assert "| problems searched | 2 |" in (out / "search.md").read_text()
