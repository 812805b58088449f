"""`scripts/label_steps.py` end to end on the tiny random model, as a user runs it: the JSONL it
writes must read back through `read_step_rows` and its statistics must add up."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import script_modules

from r1.search.labelling import read_step_rows

ROOT = Path(__file__).resolve().parents[2]


def label_steps(run_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "scripts/label_steps.py",
        "model=tiny",
        f"hydra.run.dir={run_dir}",
        "label.autocast=null",
        *overrides,
    ]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_tiny_model_rows_read_back_and_the_statistics_add_up(tmp_path):
    run_dir = tmp_path / "run"
    result = label_steps(
        run_dir,
        "label.num_problems=3",
        "label.solutions_per_problem=2",
        "label.rollouts_per_step=2",
        "sampling.max_new_tokens=8",
        "label.mode=soft",
        "label.delimiter=' '",  # random text has no lines: words make several steps
        "label.max_steps=6",
        "label.batch_size=2",
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = read_step_rows(run_dir / "steps.jsonl")
    stats = json.loads((run_dir / "labels.json").read_text())
    assert str(run_dir / "steps.jsonl") in result.stdout and "mean label:" in result.stdout
    assert (run_dir / "labels.md").read_text().startswith("| label | steps | share |")

    assert stats["problems"] == 3 and stats["solutions_sampled"] == 6
    assert stats["solutions"] == len(rows) > 0
    assert stats["solutions"] + sum(stats["skipped"].values()) == 6
    assert all(1 <= len(r.steps) <= 6 and r.mode == "soft" for r in rows)
    assert len({r.question for r in rows}) <= 3 and all(r.rollouts_per_step == 2 for r in rows)
    steps = sum(len(r.steps) for r in rows)
    assert stats["steps"] == steps == sum(stats["label_histogram"].values())
    # every step is judged directly or from rollouts (its own prefix's or a shared one's)
    assert steps == (
        stats["steps_judged_directly"] + stats["prefixes_rolled_out"] + stats["prefixes_shared"]
    )
    assert stats["steps_judged_directly"] >= len(rows) and stats["prefixes_rolled_out"] > 0
    assert stats["rollouts"] == 2 * stats["prefixes_rolled_out"]
    assert stats["rollout_tokens"] <= 8 * stats["rollouts"]
    assert 0 < stats["solution_tokens"] <= 8 * 6
    assert stats["tokens_generated"] == stats["solution_tokens"] + stats["rollout_tokens"]
    assert stats["generate_calls"] == 4  # 2 chunks x (solutions, rollouts)
    assert stats["correct"] == sum(r.outcome for r in rows)
    wrong = [r for r in rows if not r.outcome]
    assert sum(stats["first_wrong_step"].values()) == len(wrong)
    mean = sum(x for r in rows for x in r.labels) / steps
    assert abs(stats["mean_label"] - mean) < 1e-12
    assert stats["settings"]["delimiter"] == " " and stats["settings"]["answer_source"] == (
        "answer_tag"
    )
    assert stats["settings"]["sampling"]["max_new_tokens"] == 8
    for row in rows:  # the last step is the outcome; the prompt is the chat-rendered question
        assert row.labels[-1] == float(row.outcome)
        assert row.question in row.prompt and row.prompt.endswith("assistant\n")


def test_a_bad_setting_exits_before_loading_a_model_naming_the_value(tmp_path):
    result = label_steps(tmp_path / "run", "label.mode=fuzzy")
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    assert "label.mode='fuzzy' is not valid; choose one of: hard, soft" in output
    assert "Traceback" not in output and not (tmp_path / "run" / "steps.jsonl").exists()


def test_a_delimiter_typed_on_the_command_line_gets_its_newlines():
    script = script_modules.load_script("label_steps")
    # Hydra hands label.delimiter='\n\n' over as backslash-n characters
    assert script.unescape("\\n\\n") == "\n\n" and script.unescape("\\t;") == "\t;"
    assert script.unescape(";;") == ";;" and script.unescape(None) is None
