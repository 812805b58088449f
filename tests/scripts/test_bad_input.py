"""Bad input, as a user types it: `scripts/train.py` must fail before any training starts,
in seconds, with exit code 2 and one line that names the bad value and what would be valid,
and write nothing to the run directory beyond Hydra's own record of the command. A crash
(a bug, not a mistake) exits 1 with its traceback."""

from __future__ import annotations

import os
import resource
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
    # CPU seconds of the child, not wall time: on a loaded machine (CI beside other jobs) wall
    # time measures the neighbours.
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    seconds = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    assert "Traceback" not in output  # a message, not a stack trace
    errors = [line for line in output.splitlines() if "error: " in line]
    assert len(errors) == 1, output[-3000:]  # one line says it
    assert "Error executing job" not in output
    assert seconds < 30, seconds  # no retries, no loading of what is not needed
    written = {p.name for p in run_dir.iterdir()} if run_dir.exists() else set()
    assert written <= {".hydra", "train.log"}, written  # no metrics, no checkpoints
    return errors[0]


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
        (["stage=rm", "rm.objective=listwise"], "data.objective='listwise' (stage=rm sets it"),
        (["stage=grpo", "rollout=vllm"], "rollout=vllm needs vLLM, which is not installed"),
        # Lightning's own settings, and the command line itself
        (["trainer.max_steps=abc"], "trainer.max_steps='abc' (str) must be an integer"),
        (["trainer.precision=bf17"], "trainer.precision='bf17' (str) must be one of"),
        (["trainer.max_steps=-5"], "`max_steps` must be a non-negative integer or -1"),
        (["+trainer.max_stepz=3"], "trainer.max_stepz is not a setting of lightning.Trainer"),
        (["trainer.max_stepz=3"], "Could not override 'trainer.max_stepz'"),
        (["resume=/no/such/run"], "resume='/no/such/run': no such checkpoint file or run"),
    ],
)
def test_bad_input_fails_before_training_naming_the_value(tmp_path, overrides, message):
    assert message in fails(tmp_path, *overrides)


def test_malformed_data_row_names_file_and_line(tmp_path):
    path = bad_jsonl(tmp_path)
    output = fails(tmp_path, "data=jsonl", f"data.source.path={path}")
    assert f"{path} line 2: not valid JSON" in output


def test_a_bad_preference_row_names_file_line_and_value(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text(
        '{"prompt": "q", "chosen": "a", "rejected": "b"}\n{"prompt": "q", "chosen": "a"}\n'
    )
    output = fails(tmp_path, "stage=rm", f"data.source.path={path}")
    assert f"{path} line 2: field 'rejected' is missing" in output


def test_an_unknown_model_name_offline_fails_at_once_with_the_built_in_names(tmp_path):
    offline = os.environ.get("HF_ENDPOINT")
    os.environ["HF_ENDPOINT"] = "http://127.0.0.1:9"  # nothing listens there: offline
    try:
        line = fails(tmp_path, "model=hub", "model.name=doesnotexist")
    finally:
        if offline is None:
            del os.environ["HF_ENDPOINT"]
        else:
            os.environ["HF_ENDPOINT"] = offline
    assert "unknown model 'doesnotexist'" in line and "offline" in line
    assert "Built-in models: smollm2_135m" in line and "tiny (" in line
    assert "model.path=" in line and "model.name=" in line


def test_a_crash_exits_1_with_its_traceback(tmp_path):
    command = [
        sys.executable,
        str(ROOT / "tests" / "support" / "train_with_fault.py"),
        "stage=grpo",
        f"hydra.run.dir={tmp_path / 'run'}",
        "model=tiny",
        *SMALL,
        "module.group_size=2",
        "module.sampling.max_new_tokens=4",
        "validate_before_training=false",
    ]
    env = {**os.environ, "R1_FAULT": "crash_in_step", "R1_FAULT_STEP": "0"}
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" in result.stderr and "an injected bug" in result.stderr
