"""Data-parallel GRPO on two CPU processes (gloo) with the tiny model, through the real
script: DDP, and FSDP2 (which shards on CPU too). Each run takes about 20 s."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from run_files import logged_values

from r1.models import load_model

ROOT = Path(__file__).resolve().parents[2]
STEPS = 2
RUN = [
    "stage=grpo",
    "model=tiny",
    "trainer.accelerator=cpu",
    "trainer.devices=2",
    f"trainer.max_steps={STEPS}",
    "trainer.precision=32-true",
    "data.num_train=16",
    "data.num_val=5",  # odd: the ranks' held-out shards differ in size (3 and 2 + 1 padding)
    "data.batch_size=2",  # prompts per rank
    "module.group_size=4",
    "module.sampling.max_new_tokens=8",
    "module.max_new_tokens=4",
    "module.micro_batch_prompts=1",  # two backward passes per optimizer step
    "module.kl_coef=0.1",  # the reference model is sharded too under FSDP
    "module.optimizer.lr=1e-3",
    "reward=repetition",
    # Eight random tokens rarely repeat a 3-gram, so the rewards (and advantages) can all
    # tie; the entropy bonus gives every step a gradient whatever the sampler draws.
    "module.entropy_coef=0.01",
    "module.dynamic_sampling=false",  # ... and tied groups are trained on, not refilled
    "checkpoint.every_n_steps=1",
]


def run(tmp_path: Path, strategy: str) -> tuple[Path, Path]:
    run_dir, record = tmp_path / "run", tmp_path / "record"
    record.mkdir()
    env = {**os.environ, "R1_RECORD_DIR": str(record), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tests" / "support" / "train_recording.py"),
            *RUN,
            f"strategy={strategy}",
            f"hydra.run.dir={run_dir}",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return run_dir, record


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_data_parallel_grpo_on_two_processes(tmp_path, strategy):
    run_dir, record = run(tmp_path, strategy)
    ranks = [rows(record / f"rank{r}.jsonl") for r in (0, 1)]

    assert [r["sharded"] for r in ranks[0] if "sharded" in r] == [strategy == "fsdp"]

    # Each rank trained on its own prompts, never the other's, at every step.
    prompts = [[r["prompts"] for r in rank if "prompts" in r] for rank in ranks]
    assert len(prompts[0]) == len(prompts[1]) == STEPS
    for mine, theirs in zip(*prompts):
        assert len(mine) == len(theirs) == 2 and not set(mine) & set(theirs)

    # The weights are the same on both ranks afterwards, and training moved them.
    params = [torch.load(record / f"params_rank{r}.pt") for r in (0, 1)]
    initial = dict(load_model("tiny", seed=0)[0].named_parameters())
    assert params[0].keys() == params[1].keys() == initial.keys()
    assert all(torch.equal(params[0][n], params[1][n]) for n in params[0])
    assert any(not torch.equal(params[0][n], initial[n].detach()) for n in params[0])

    # Logged metrics are global: the mean of the ranks' own values, tokens over all ranks.
    local = [[r["metrics"] for r in rank if "metrics" in r] for rank in ranks]
    reward, throughput = (
        logged_values(run_dir, "train/reward"),
        logged_values(run_dir, "rollout/tokens_per_s"),
    )
    assert len(reward) == STEPS
    for step in range(STEPS):
        a, b = local[0][step], local[1][step]
        assert reward[step] == pytest.approx((a["train/reward"] + b["train/reward"]) / 2)
        tokens = a["rollout/tokens"] + b["rollout/tokens"]  # over the slowest rank's time
        assert throughput[step] == pytest.approx(
            tokens / max(a["rollout/s"], b["rollout/s"]), rel=1e-5
        )
        assert a["rollout/is_ratio_mean"] == pytest.approx(1.0, abs=1e-3)  # HF samples itself

    # The final checkpoint (gathered from the shards under FSDP) holds the trained weights,
    # and the resumable checkpoint was written once, by rank 0.
    saved = dict(load_model(path=str(run_dir / "checkpoint"))[0].named_parameters())
    assert all(torch.equal(saved[n].detach(), params[0][n]) for n in params[0])
    assert sorted(p.name for p in (run_dir / "checkpoints").glob("*.ckpt")) == [
        "step-00000001.ckpt",
        "step-00000002.ckpt",
    ]
    # Every validation scored the five held-out problems once: 3 on one rank, 2 on the other
    # (whose third row only pads its shard and is left out).
    items = [[r["validation_items"] for r in rank if "validation_items" in r] for rank in ranks]
    assert items[0] and all(a == 3 and b == 2 for a, b in zip(*items))
    assert len(logged_values(run_dir, "val/accuracy")) == len(items[0])
