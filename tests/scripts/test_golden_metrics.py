"""Behaviour pinned across refactors: short tiny-model runs with a fixed seed must log the
same metrics, bit for bit on CPU, as the recorded ones in tests/golden/.

Timings and memory (perf/*, rollout/s, rollout/tokens_per_s) are machine noise and left out.

Bit for bit on any x86-64 CPU with AVX2, not only the one that recorded them: the runs are in
fp32 on one thread, with each kernel library held to its AVX2 code (ATen's vectorised kernels,
oneDNN, MKL's conditional numerical reproducibility). Left free, bf16 matmuls and fp32
reductions take the widest instructions a CPU has (AVX-512, AMX, AVX-512 FP16), and their
rounding differs from one Xeon to the next: the recorded bf16 values failed on a newer Xeon
in the last digits, and the sampled tokens, hence whole GRPO runs, diverged from there.
Re-record deliberately, after a change that is meant to alter training, with
`R1_RECORD_GOLDEN=1 pytest tests/scripts/test_golden_metrics.py` and say why in the commit.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from run_files import metrics_rows, run_train

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
NOISE = ("perf/", "rollout/s", "rollout/tokens_per_s")
SAME_ON_EVERY_CPU = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_CBWR": "AVX2",
    "OMP_NUM_THREADS": "1",
}

RL = [
    "model=tiny",
    "data.num_train=16",
    "data.num_val=4",
    "data.batch_size=2",
    "module.group_size=4",
    "module.sampling.max_new_tokens=8",
    "module.max_new_tokens=4",
    "module.kl_coef=0.1",
    "module.optimizer.lr=1e-3",
    "reward=repetition",
    "reward.terms.repetition.params.n=1",  # repeated words vary on random text: real advantages
    "trainer.max_steps=8",
    "checkpoint.save_on_train_end=false",
    "trainer.val_check_interval=4",
]
RUNS = {
    "grpo_dynamic_mu2": [
        "stage=grpo",
        *RL,
        "module.inner_updates=2",
        "module.dynamic_sampling=true",
        "module.micro_batch_prompts=1",
    ],
    "ppo_minibatches": ["stage=ppo", *RL, "module.minibatch_prompts=1"],
    "sft": [
        "model=tiny",
        "data.num_train=32",
        "data.num_val=4",
        "data.batch_size=8",
        "module.optimizer.lr=3e-3",
        "module.max_new_tokens=4",
        "trainer.max_epochs=2",
        "trainer.log_every_n_steps=1",
    ],
}


def logged(run_dir: Path) -> list[dict[str, str]]:
    return [
        {k: v for k, v in row.items() if v != "" and not k.startswith(NOISE)}
        for row in metrics_rows(run_dir)
    ]


# PPO's run takes about a minute on 2 cores (a critic and minibatches); its stage has a quick
# train-script test in tests/modules/test_ppo.py, and `make test-slow` pins its metrics.
SLOW = {"ppo_minibatches"}


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in sorted(RUNS)]
)
def test_short_runs_log_the_recorded_metrics_bit_for_bit(name, tmp_path):
    run_train(tmp_path, *RUNS[name], "seed=7", "trainer.precision=32-true", env=SAME_ON_EVERY_CPU)
    rows = logged(tmp_path / "run")
    path = GOLDEN / f"{name}.json"
    if os.environ.get("R1_RECORD_GOLDEN"):
        path.write_text(json.dumps(rows, indent=1) + "\n")
    expected = json.loads(path.read_text())
    assert len(rows) == len(expected)
    for got, want in zip(rows, expected):
        assert got == want
