"""Crash and resume, as a user meets them: a tiny GRPO run is killed (SIGKILL inside a step,
SIGKILL while a checkpoint is being written, SIGTERM), the same command is rerun with
resume=auto, and the result must equal an uninterrupted run bit for bit: final weights and
every logged reward, with each logging step present exactly once."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from r1.checkpoints import list_checkpoints

ROOT = Path(__file__).resolve().parents[2]
FAULT_RUNNER = ROOT / "tests" / "support" / "train_with_fault.py"

# 8 batches per epoch, so 12 steps cross an epoch boundary (and its validation) too.
GRPO = [
    "stage=grpo",
    "model=tiny",
    "data.num_train=16",
    "data.num_val=4",
    "data.batch_size=2",
    "module.group_size=4",
    "module.sampling.max_new_tokens=8",
    "module.max_new_tokens=4",
    "module.kl_coef=0.1",
    "module.optimizer.lr=1e-3",
    "module.dynamic_sampling=true",  # refills draw from the data module's own generator
    "reward=repetition",  # varies on random text: non-zero advantages, so the weights move
    "trainer.max_steps=12",
    # default precision (bf16 autocast) and fused AdamW, as `make train` runs
    "checkpoint.every_n_steps=3",
    "validate_before_training=false",
]


def train(
    run_dir: Path,
    *extra: str,
    fault: str | None = None,
    fault_step: int = 0,
    base: list[str] = GRPO,
):
    env = dict(os.environ)
    script = [str(ROOT / "scripts" / "train.py")]
    if fault:
        env.update(R1_FAULT=fault, R1_FAULT_STEP=str(fault_step))
        script = [str(FAULT_RUNNER)]
    command = [sys.executable, *script, *base, f"hydra.run.dir={run_dir}", *extra]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    result.output = result.stdout + result.stderr  # Hydra logs to stdout, warnings to stderr
    return result


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stdout[-3000:] + result.output[-3000:]
    return result


def metrics(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "logs" / "metrics.csv") as f:
        return list(csv.DictReader(f))


def by_step(rows: list[dict[str, str]], name: str) -> dict[int, str]:
    values: dict[int, str] = {}
    for row in rows:
        if row.get(name):
            step = int(row["step"])
            assert step not in values, f"{name} logged twice at step {step}"
            values[step] = row[name]
    return values


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(run_dir / "checkpoint" / "model.safetensors")


def assert_same_run(resumed: Path, reference: Path, steps: int = 12) -> None:
    expected, got = weights(reference), weights(resumed)
    assert expected.keys() == got.keys()
    different = [k for k in expected if not torch.equal(expected[k], got[k])]
    assert not different, f"weights differ after resuming: {different[:5]}"
    for name in ("train/reward", "train/loss", "train/kl", "val/accuracy", "train/completion_len"):
        assert by_step(metrics(resumed), name) == by_step(metrics(reference), name), name
    assert sorted(by_step(metrics(resumed), "train/reward")) == list(range(steps))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("uninterrupted") / "run"
    ok(train(run_dir))
    return run_dir


def test_sigkill_inside_a_step_then_resume_auto_is_bit_identical(uninterrupted, tmp_path):
    run_dir = tmp_path / "run"
    killed = train(run_dir, fault="kill_in_step", fault_step=7)
    assert killed.returncode == -signal.SIGKILL
    assert [p.name for p in list_checkpoints(run_dir / "checkpoints")] == [
        "step-00000003.ckpt",
        "step-00000006.ckpt",
    ]
    assert not (run_dir / "checkpoint").exists()  # the final export never happened

    # The killed process's reward workers end quietly: the shutdown was expected.
    assert "Traceback" not in killed.output and "EOFError" not in killed.output

    resumed = ok(train(run_dir, "resume=auto"))
    assert "resuming from" in resumed.output and "step-00000006.ckpt" in resumed.output
    assert_same_run(run_dir, uninterrupted)
    # The messages of the resumed part are true: no warning that contradicts the exact
    # resume, the steps this process ran and the total, the real step budget on the bar.
    assert "not resumable" not in resumed.output
    assert "6 optimizer steps in this process (12 in total)" in resumed.output
    assert "Step 12/12" in resumed.output and "/-2" not in resumed.output
    # the newest two are kept: the periodic ones at 9 and 12 (= the end of training)
    assert [p.name for p in list_checkpoints(run_dir / "checkpoints")] == [
        "step-00000009.ckpt",
        "step-00000012.ckpt",
    ]


def test_sigkill_during_a_save_keeps_the_last_good_checkpoint(uninterrupted, tmp_path):
    run_dir = tmp_path / "run"
    killed = train(run_dir, fault="kill_in_save", fault_step=6)
    assert killed.returncode == -signal.SIGKILL
    checkpoints = run_dir / "checkpoints"
    assert [p.name for p in list_checkpoints(checkpoints)] == ["step-00000003.ckpt"]
    assert (checkpoints / "step-00000006.ckpt.tmp").exists()  # the half-written one

    resumed = ok(train(run_dir, "resume=auto"))
    assert "step-00000003.ckpt" in resumed.output
    assert not list(checkpoints.glob("*.tmp"))
    assert_same_run(run_dir, uninterrupted)


def test_sigterm_saves_then_stops_and_a_new_run_dir_resumes_by_overrides(uninterrupted, tmp_path):
    runs = tmp_path / "outputs"
    first = runs / "first"
    stopped = train(first, f"paths.runs_root={runs}", fault="term_in_step", fault_step=4)
    assert stopped.returncode == 128 + signal.SIGTERM, stopped.output[-3000:]
    assert "stopped by SIGTERM at step 5" in stopped.output
    assert "resume=auto" in stopped.output  # the command that continues the run
    assert list_checkpoints(first / "checkpoints")[-1].name == "step-00000005.ckpt"
    assert sorted(by_step(metrics(first), "train/reward")) == [0, 1, 2, 3, 4]  # flushed

    # A fresh run directory (as Hydra's timestamped default gives): resume=auto finds the
    # earlier run launched with the same overrides and continues it there.
    second = runs / "second"
    resumed = ok(train(second, f"paths.runs_root={runs}", "resume=auto"))
    assert str(first) in resumed.output
    assert_same_run(first, uninterrupted)
    # No stray run folder: the log goes on in the first part's, with Hydra's record of the
    # second command kept beside the first's.
    assert not second.exists()
    log = (first / "train.log").read_text()
    assert "stopped by SIGTERM at step 5" in log and "resuming from" in log, log
    assert (first / ".hydra" / "resumed" / "second" / "overrides.yaml").is_file()


def test_resume_auto_without_an_earlier_run_starts_fresh(tmp_path):
    run_dir = tmp_path / "run"
    result = ok(train(run_dir, f"paths.runs_root={tmp_path}", "resume=auto", "trainer.max_steps=1"))
    assert "starting fresh" in result.output
    assert (run_dir / "checkpoint" / "model.safetensors").exists()


def test_resume_from_a_missing_path_fails_before_training(tmp_path):
    result = train(tmp_path / "run", f"resume={tmp_path / 'nope'}")
    assert result.returncode == 2
    assert "Traceback" not in result.output
    assert f"resume='{tmp_path / 'nope'}': no such checkpoint file or run directory" in (
        result.output
    )
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.slow
def test_smollm2_grpo_addition_resumes_bit_identically(tmp_path):
    """The real model and the default experiment (bf16 autocast, fused AdamW, dynamic
    sampling, held-out validation inside the run), killed mid-step after a checkpoint."""
    base = [
        "experiment=grpo_addition",
        "trainer.max_steps=8",
        "trainer.val_check_interval=4",
        "checkpoint.every_n_steps=3",
        "data.num_val=16",
        "validate_before_training=false",
    ]
    reference = tmp_path / "uninterrupted"
    ok(train(reference, base=base))
    run_dir = tmp_path / "killed"
    killed = train(run_dir, base=base, fault="kill_in_step", fault_step=5)
    assert killed.returncode == -signal.SIGKILL
    assert list_checkpoints(run_dir / "checkpoints")[-1].name == "step-00000003.ckpt"
    ok(train(run_dir, "resume=auto", base=base))
    assert_same_run(run_dir, reference, steps=8)


@pytest.mark.slow  # three runs, ~95 s: the GRPO tests above cover the mechanism in the default suite
def test_ppo_sigkill_then_resume_is_bit_identical(tmp_path):
    """PPO adds a critic, its optimizer state and minibatch shuffles drawn from the global RNG."""
    base = [
        *[o for o in GRPO if not o.startswith(("stage=", "module.dynamic_sampling"))],
        "stage=ppo",
        "module.minibatch_prompts=1",
        "module.inner_updates=1",
    ]
    reference = tmp_path / "uninterrupted"
    ok(train(reference, base=base))
    run_dir = tmp_path / "killed"
    killed = train(run_dir, base=base, fault="kill_in_step", fault_step=8)  # 2 steps a batch
    assert killed.returncode == -signal.SIGKILL
    assert list_checkpoints(run_dir / "checkpoints")[-1].name == "step-00000006.ckpt"
    ok(train(run_dir, "resume=auto", base=base))
    expected, got = weights(reference), weights(run_dir)
    assert all(torch.equal(expected[k], got[k]) for k in expected)
    for name in ("train/reward", "train/value_loss", "train/approx_kl"):
        assert by_step(metrics(run_dir), name) == by_step(metrics(reference), name), name
