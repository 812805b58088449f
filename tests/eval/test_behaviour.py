"""Behaviour metrics (r1.eval.behaviour) on texts whose values are worked out by hand."""

from __future__ import annotations

import math

import pytest

from r1.eval.behaviour import (
    behaviour_metrics,
    consistency_totals,
    language_mixing_rate,
    length_by_level,
    length_by_outcome,
    level_key,
    mean_repetition,
    metric_key,
    mixes_languages,
    reflection_word_rates,
)


def test_each_reflection_word_has_its_own_rate():
    texts = [
        "Wait, let me check.",  # wait, check
        "Wait. Wait. That is a mistake.",  # wait (twice: counted once), mistake
        "Awaited, checked, however.",  # however only: "awaited", "checked" are other words
        "我们再验证一下",  # 验证 (a CJK word matches inside text)
    ]
    rates = reflection_word_rates(texts, ["wait", "check", "mistake", "however", "验证", "verify"])
    assert rates == {
        "reflection_rate/wait": 2 / 4,
        "reflection_rate/check": 1 / 4,
        "reflection_rate/mistake": 1 / 4,
        "reflection_rate/however": 1 / 4,
        "reflection_rate/验证": 1 / 4,
        "reflection_rate/verify": 0.0,
    }
    assert reflection_word_rates(["Let me  check it"], ["let me check"]) == {
        "reflection_rate/let_me_check": 1.0
    }
    assert math.isnan(reflection_word_rates([], ["wait"])["reflection_rate/wait"])


def test_length_split_by_outcome():
    split = length_by_outcome([10, 20, 30, 60], [True, False, True, False])
    assert split == {"completion_len_correct": 20.0, "completion_len_incorrect": 40.0}
    none_right = length_by_outcome([5, 7], [False, False])
    assert math.isnan(none_right["completion_len_correct"])
    assert none_right["completion_len_incorrect"] == 6.0
    with pytest.raises(ValueError, match="2 lengths but 1"):
        length_by_outcome([1, 2], [True])


def test_length_split_by_difficulty_level():
    levels = ["Level 2", 10, "Level 2", None, 1.0, "Level ?", "hard"]
    lengths = [10, 100, 30, 999, 4, 999, 50]
    assert length_by_level(lengths, levels) == {
        "completion_len_level_1": 4.0,
        "completion_len_level_2": 20.0,  # (10 + 30) / 2
        "completion_len_level_10": 100.0,  # numbers sort numerically: 1, 2, 10
        "completion_len_level_hard": 50.0,
    }
    assert [level_key(v) for v in ("Level 5", 3, "  level 4 ", "", True)] == [
        "5",
        "3",
        "4",
        None,
        None,
    ]
    assert metric_key("Let me check") == "let_me_check" and metric_key("a/b") == "a_b"


def test_repetition_rate_is_the_mean_over_texts_with_ngrams():
    # "a b a b a b": 3-grams aba, bab, aba, bab -> 2 distinct of 4 -> 0.5
    # "x y z w": xyz, yzw -> 0.0; "hi": no 3-gram, left out
    assert mean_repetition(["a b a b a b", "x y z w", "hi"]) == pytest.approx(0.25)
    assert math.isnan(mean_repetition(["hi", ""]))


def test_language_mixing():
    assert mixes_languages("<think>Wait, let me check the sum.</think><answer>5</answer>") is False
    # 5 Chinese characters and 3 English words in the thought: 3 / 8 are not its main language
    assert mixes_languages("<think>The sum is 47. 所以答案是47</think>") is True
    assert mixes_languages("<think>47 + 5 = 52</think><answer>52</answer>") is None
    # 9 Chinese characters, one English word: 1 / 10 = the 10% threshold
    mostly_chinese = "我们来计算这个和吧 check"
    assert mixes_languages(mostly_chinese) is True
    assert mixes_languages(mostly_chinese, min_share=0.2) is False
    texts = ["The answer is five.", "答案是五 the answer", "42"]
    assert language_mixing_rate(texts) == 0.5  # "42" has nothing to count: left out


def test_language_consistency_against_each_problems_language():
    texts = [
        "<think>The sum is 47. 所以答案是47</think>",  # 5 characters of 8 units are Chinese
        "<think>47 + 5 = 52</think>",  # nothing to count: left out
        "The answer is five.",  # no think block: the whole text
        "The answer is five.",  # no language known: left out
    ]
    totals = consistency_totals(texts, ["zh", "zh", "en", None])
    assert totals == {"language_consistency": (0.625 + 1.0, 2)}
    metrics = behaviour_metrics(texts[:1], [9], languages=["en"], words=["wait"])
    assert metrics["language_consistency"] == 0.375
    assert "language_consistency" not in behaviour_metrics(texts[:1], [9], words=["wait"])


def test_behaviour_metrics_puts_them_together():
    metrics = behaviour_metrics(
        ["Wait, it is 5.", "It is 6."],
        [4, 6],
        correct=[True, False],
        levels=[1, 1],
        words=["wait"],
    )
    assert metrics == {
        "reflection_rate/wait": 0.5,
        "completion_len_correct": 4.0,
        "completion_len_incorrect": 6.0,
        "completion_len_level_1": 5.0,
        "repetition_rate": 0.0,
        "language_mixing_rate": 0.0,
    }
    assert "completion_len_correct" not in behaviour_metrics(["x"], [1], words=["wait"])
