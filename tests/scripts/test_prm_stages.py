"""`stage=prm` and GRPO with a PRM (as the reward, or dense per step) through scripts/train.py."""

from __future__ import annotations

import json
import random

from run_files import metrics_rows as read_metrics
from run_files import run_train

from r1.models.prm import load_prm


def write_step_rows(path, questions: int = 12) -> None:
    """Solutions whose correct steps end in "= right" and whose wrong ones in "= wrong"."""
    rng = random.Random(0)
    with open(path, "w") as f:
        for q in range(questions):
            for _ in range(2):
                steps = [rng.choice(["a = right", "b = wrong"]) for _ in range(3)]
                labels = [float("right" in s) for s in steps]
                row = {
                    "question": f"problem {q}",
                    "answer": "1",
                    "task": "arithmetic",
                    "meta": {},
                    "prompt": f"User: problem {q}. Assistant:",
                    "completion": "<think>\n" + "\n".join(steps),
                    "steps": steps,
                    "labels": labels,
                    "outcome": labels[-1] == 1.0,
                    "rollouts_per_step": 2,
                    "mode": "hard",
                }
                f.write(json.dumps(row) + "\n")


def test_stage_prm_lowers_the_step_loss_and_saves_a_loadable_prm(tmp_path):
    data = tmp_path / "steps.jsonl"
    write_step_rows(data)
    run_train(
        tmp_path,
        "stage=prm",
        "model=tiny",
        f"data.path={data}",
        "data.val_fraction=0.25",
        "data.batch_size=6",
        "module.optimizer.lr=1e-3",
        "trainer.max_epochs=4",
        "trainer.log_every_n_steps=1",
    )
    run_dir = tmp_path / "run"
    rows = read_metrics(run_dir)
    val = [float(r["val/loss"]) for r in rows if r.get("val/loss")]
    accuracy = [float(r["val/step_accuracy"]) for r in rows if r.get("val/step_accuracy")]
    assert len(val) == 5 and val[-1] < 0.5 * val[0]  # before training, then every epoch
    assert accuracy[-1] > 0.85 and accuracy[-1] > accuracy[0]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert {"val/loss", "val/step_accuracy", "val/solution_accuracy"} <= set(summary["after"])
    prm, _ = load_prm(path=str(run_dir / "checkpoint"))
    assert type(prm).__name__ == "LlamaForTokenClassification"


def test_grpo_with_a_prm_reward_and_with_dense_step_rewards(tmp_path):
    common = [
        "stage=grpo",
        "model=tiny",
        "data.num_train=8",
        "data.num_val=4",
        "data.batch_size=2",
        "module.group_size=2",
        "module.sampling.max_new_tokens=8",
        "module.kl_coef=0.0",
        "module.dynamic_sampling=false",  # and so for the dense per-step rewards
        "trainer.max_steps=2",
        "validate_before_training=false",
    ]
    run_train(
        tmp_path / "reward",
        *common,
        "reward=prm",
        "reward.terms.prm.params.path=null",
        "reward.terms.prm.params.name=tiny",
    )
    rows = read_metrics(tmp_path / "reward" / "run")
    assert any(r.get("train/reward/prm") for r in rows)
    summary = json.loads((tmp_path / "reward" / "run" / "summary.json").read_text())
    # the PRM also scores held-out completions (val/reward/prm when they have steps at all)
    assert summary["after"]["val/reward_errors/prm"] == 0.0

    dense = (
        "module.advantage=grpo_process",
        "+module.process_reward.name=tiny",
    )
    run_train(tmp_path / "dense", *common, *dense)
    rows = read_metrics(tmp_path / "dense" / "run")
    scores = [float(r["train/prm_step_score"]) for r in rows if r.get("train/prm_step_score")]
    assert len(scores) == 2 and all(0.0 < s < 1.0 for s in scores)
