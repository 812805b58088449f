"""`stage=rm` through scripts/train.py: a reward model on the generated preference pairs, whose
checkpoint is the RL reward term's model."""

from __future__ import annotations

import json

from compose import compose_config
from hydra.utils import instantiate
from run_files import logged_values, run_train

from r1.models.reward_model import reward_model_scorer
from r1.rewards import RewardSample


def test_stage_rm_trains_logs_pair_accuracy_and_saves_a_reward_model(tmp_path):
    result = run_train(
        tmp_path,
        "stage=rm",
        "model=tiny",
        "data.num_train=96",
        "data.num_val=32",
        "module.optimizer.lr=1e-3",
        "trainer.max_steps=6",
        "trainer.log_every_n_steps=1",
    )
    run_dir = tmp_path / "run"
    assert "val/pair_accuracy" in result.stdout  # in the printed summary
    summary = json.loads((run_dir / "summary.json").read_text())
    assert {"val/loss", "val/pair_accuracy", "val/margin"} <= set(summary["after"])
    assert "val/pair_accuracy/empty" in summary["after"]
    assert len(logged_values(run_dir, "train/loss")) == 6
    assert len(logged_values(run_dir, "val/pair_accuracy")) == 2  # before and after training
    scorer = reward_model_scorer(path=str(run_dir / "checkpoint"), device="cpu")
    assert type(scorer.model).__name__ == "LlamaForSequenceClassification"
    assert scorer.model.config.pad_token_id == scorer.tokenizer.pad_token_id
    assert len(scorer.score(["q", "q"], ["an answer", ""])) == 2

    # the checkpoint as the RL reward term, spelled as on the command line
    cfg = compose_config(
        [
            "reward=reward_model",
            f"reward.terms.preference.params.path={run_dir / 'checkpoint'}",
            "reward.workers=0",
        ],
        tmp_path,
    )
    samples = [RewardSample("an answer", prompt="q"), RewardSample("", prompt="q")]
    scores = instantiate(cfg.reward).score(samples).terms["preference"]
    assert scores == scorer.score(["q", "q"], ["an answer", ""])
