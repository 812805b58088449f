"""RecordingReward: which trained completions were right, matched to the scoring calls."""

from __future__ import annotations

import threading

from r1.modules.outcomes import RecordingReward
from r1.rewards import CompositeReward
from r1.rewards.types import RewardSample


def samples(question_golds, texts, level=None):
    """RewardSamples of groups: question_golds[i] for texts[i*G:(i+1)*G]."""
    g = len(texts) // len(question_golds)
    return [
        RewardSample(
            completion=text,
            gold=question_golds[i // g],
            task="arithmetic",
            meta={} if level is None else {"level": level},
            prompt=f"q{i // g}",
        )
        for i, text in enumerate(texts)
    ]


def test_outcomes_follow_the_accuracy_term_group_by_group():
    reward = RecordingReward(
        CompositeReward({"accuracy": {}, "format": {"fn": "format_strict"}}, workers=0), 2
    )
    texts = ["<answer>5</answer>", "<answer>6</answer>", "<answer>7</answer>", "<answer>7</answer>"]
    output = reward.score(samples(["5", "7"], texts, level="Level 2"))
    assert output.terms["accuracy"] == [1.0, 0.0, 1.0, 1.0]
    assert (
        reward.outcomes(texts) == [(True, "Level 2"), (False, "Level 2")] + [(True, "Level 2")] * 2
    )
    # a batch reassembled from groups (dynamic sampling): matched by its texts, in its order
    assert reward.outcomes(texts[2:] + texts[:2])[:2] == [(True, "Level 2")] * 2
    assert reward.outcomes(["<answer>9</answer>", "x"]) == [None, None]  # never scored
    assert reward.outcomes(texts[:1]) == [None]  # not a whole recorded group


def test_a_group_scored_twice_with_different_outcomes_is_left_out():
    reward = RecordingReward(CompositeReward({"accuracy": {}}, workers=0), 2)
    texts = ["<answer>5</answer>"] * 2
    reward.score(samples(["5"], texts))
    reward.score(samples(["4"], texts))  # the same texts, another question: now wrong
    assert reward.outcomes(texts) == [None, None]


def test_without_a_correctness_term_the_outcome_is_unknown_and_the_rest_delegates():
    inner = CompositeReward({"format": {"fn": "format_strict"}}, workers=0)
    reward = RecordingReward(inner, 1)
    reward.score(samples(["5"], ["hello"]))
    assert reward.outcomes(["hello"]) == [(None, None)]
    assert reward.terms is inner.terms


def test_scoring_in_another_thread_is_recorded():
    reward = RecordingReward(CompositeReward({"accuracy": {}}, workers=0), 1)
    thread = threading.Thread(target=reward.score, args=(samples(["3"], ["<answer>3</answer>"]),))
    thread.start()
    thread.join()
    assert reward.outcomes(["<answer>3</answer>"]) == [(True, None)]


def test_recorded_outcomes_survive_a_checkpoint(tmp_path):
    """An async run's pending batch was scored before its checkpoint: the resumed run restores
    the recorded outcomes (plain lists, loadable with weights_only) and finds them."""
    import torch

    reward = RecordingReward(CompositeReward({"accuracy": {}}, workers=0), 2)
    texts = ["<answer>5</answer>", "<answer>6</answer>"]
    reward.score(samples(["5"], texts, level=3))
    torch.save({"outcomes": reward.state_dict()}, tmp_path / "ckpt")
    restored = RecordingReward(CompositeReward({"accuracy": {}}, workers=0), 2)
    assert restored.outcomes(texts) == [None, None]
    restored.load_state_dict(torch.load(tmp_path / "ckpt", weights_only=True)["outcomes"])
    assert restored.outcomes(texts) == [(True, 3), (False, 3)]
