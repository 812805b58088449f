"""Bad input, as a user types it: `scripts/train.py` must fail before any training starts,
with a message that names the bad value and what would be valid, and write nothing to the
run directory beyond Hydra's own record of the command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["data.num_train=8", "data.num_val=2", "trainer.max_steps=1"]


def fails(tmp_path: Path, *overrides: str) -> str:
    run_dir = tmp_path / "run"
    model = [] if any(o.startswith("model=") for o in overrides) else ["model=tiny"]
    command = [
        sys.executable,
        "scripts/train.py",
        f"hydra.run.dir={run_dir}",
        *model,
        *SMALL,
        *overrides,
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert "Traceback" not in output  # a message, not a stack trace
    written = {p.name for p in run_dir.iterdir()} if run_dir.exists() else set()
    assert written <= {".hydra", "train.log"}, written  # no metrics, no checkpoints
    return output


def bad_jsonl(tmp_path: Path) -> Path:
    path = tmp_path / "problems.jsonl"
    path.write_text('{"question": "1+1?", "answer": "2"}\n{"question": "2+2?", "answer": 4\n')
    return path


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["stage=grpoo"], "Could not find 'stage/grpoo'"),
        (["stage=grpo", "module.group_size=1"], "module.group_size=1 must be >= 2"),
        (["stage=grpo", "module.group_size=abc"], "module.group_size='abc' (str) must be an"),
        (["stage=grpo", "module.clip_low=-0.1"], "module.clip_low=-0.1 must be in [0.0, 1.0]"),
        (["data.batch_size=0"], "data.batch_size=0 must be >= 1"),
        (["data=jsonl", "data.source.path=/no/such/file.jsonl"], "/no/such/file.jsonl"),
        (["model=hub", "model.name=/no/such/model"], "/no/such/model"),
        (["reward.terms.format.fn=formatt"], "reward 'formatt' is not registered; registered:"),
        (["checkpoint.every_n_steps=0"], "checkpoint.every_n_steps=0 must be >= 1"),
        (["stage=grpo", "rollout=vllm"], "rollout=vllm needs vLLM, which is not installed"),
    ],
)
def test_bad_input_fails_before_training_naming_the_value(tmp_path, overrides, message):
    assert message in fails(tmp_path, *overrides)


def test_malformed_data_row_names_file_and_line(tmp_path):
    path = bad_jsonl(tmp_path)
    output = fails(tmp_path, "data=jsonl", f"data.source.path={path}")
    assert f"{path} line 2: not valid JSON" in output
