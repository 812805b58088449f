"""The end-of-run summary: held-out metrics before and after, the reward's terms, and the
training reward's first steps against its last."""

from __future__ import annotations

from r1.summary import RunSummary


def summary(**fields) -> RunSummary:
    return RunSummary(
        what="stage=grpo", steps=8, seconds=60.0, run_dir="/r", checkpoint=None, **fields
    )


def test_the_held_out_reward_terms_follow_the_headline_metrics():
    text = summary(
        before={"val/accuracy": 0.1, "val/reward": 1.1, "val/reward/lang_consistency": 1.0},
        after={"val/accuracy": 0.5, "val/reward": 2.0, "val/reward/lang_consistency": 1.0},
    ).render()
    lines = [line.split() for line in text.splitlines()]
    assert ["val/accuracy", "0.100", "0.500"] in lines
    assert ["val/reward/lang_consistency", "1.000", "1.000"] in lines
    names = [row[0] for row in lines if row and row[0].startswith("val/")]
    assert names == ["val/accuracy", "val/reward", "val/reward/lang_consistency"]


def test_the_training_reward_compares_the_first_five_steps_with_the_last_five():
    rewards = [0.0, 0.0, 0.5, 0.5, 0.0, 1.0, 1.0, 2.0]  # first five mean 0.2, last five 0.9
    text = summary(training={"train/reward": rewards, "train/reward/format": [0.0, 1.0]}).render()
    lines = [line.split() for line in text.splitlines()]
    assert ["training", "reward", "first", "5", "last", "5"] in lines
    assert ["train/reward", "0.200", "0.900"] in lines
    assert ["train/reward/format", "0.500", "0.500"] in lines  # fewer steps: all of them


def test_a_run_without_rl_rewards_has_no_training_section():
    assert "training reward" not in summary(before={"val/loss": 2.0}).render()
