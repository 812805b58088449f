from __future__ import annotations

import itertools
import math
import random

import pytest

from r1.eval.metrics import (
    REFLECTION_WORDS,
    cons_at_k,
    count_reflection_words,
    group_answers,
    length_stats,
    majority_answer,
    mean_pass_at_k,
    pass_at_k,
    reflection_stats,
)

# ---------------------------------------------------------------------------------------------
# pass@k


def brute_force_pass_at_k(correct: list[bool], k: int) -> float:
    subsets = list(itertools.combinations(range(len(correct)), k))
    return sum(any(correct[i] for i in subset) for subset in subsets) / len(subsets)


def test_pass_at_k_matches_brute_force_on_random_tables():
    rng = random.Random(0)
    for _ in range(60):
        n = rng.randint(1, 12)
        c = rng.randint(0, n)
        k = rng.randint(1, n)
        correct = [True] * c + [False] * (n - c)
        rng.shuffle(correct)
        assert pass_at_k(n, c, k) == pytest.approx(brute_force_pass_at_k(correct, k)), (n, c, k)


@pytest.mark.parametrize(
    "n,c,k,expected",
    [(10, 0, 1, 0.0), (10, 10, 5, 1.0), (4, 1, 1, 0.25), (4, 1, 2, 0.5), (5, 3, 3, 1.0)],
)
def test_pass_at_k_hand_values(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_pass_at_k_large_n_is_stable():
    # C(1000, 500) overflows a float; the product form does not need it
    assert pass_at_k(1000, 1, 500) == pytest.approx(0.5)
    assert 0.0 < pass_at_k(1000, 1, 1) < 1.0


@pytest.mark.parametrize(
    "n,c,k,names",
    [
        (4, 1, 0, ["k=0", "num_samples=4"]),
        (4, 1, 5, ["k=5", "num_samples=4"]),
        (4, -1, 1, ["num_correct=-1"]),
        (4, 5, 1, ["num_correct=5", "num_samples=4"]),
    ],
)
def test_pass_at_k_rejects_bad_arguments(n, c, k, names):
    with pytest.raises(ValueError) as error:
        pass_at_k(n, c, k)
    for name in names:
        assert name in str(error.value)


def test_mean_pass_at_1_is_mean_correctness():
    rng = random.Random(1)
    table = [[rng.random() < 0.3 for _ in range(8)] for _ in range(20)]
    expected = sum(sum(row) / len(row) for row in table) / len(table)
    assert mean_pass_at_k(table, 1) == pytest.approx(expected)


def test_mean_pass_at_k_averages_problems():
    table = [[True, False, False, False], [False] * 4, [True] * 4]
    assert mean_pass_at_k(table, 2) == pytest.approx((0.5 + 0.0 + 1.0) / 3)


def test_mean_pass_at_k_errors():
    with pytest.raises(ValueError, match="empty"):
        mean_pass_at_k([], 1)
    with pytest.raises(ValueError, match="problem 1.*k=3"):
        mean_pass_at_k([[True] * 4, [True, False]], 3)


# ---------------------------------------------------------------------------------------------
# Majority vote

HALVES = ["0.5", "3", "1/2", "\\frac{1}{2}", "3"]


def test_group_answers_groups_equivalent_forms():
    assert group_answers(HALVES) == [[0, 2, 3], [1, 4]]


def test_group_answers_leaves_out_missing_answers():
    assert group_answers([None, "2", "", "  ", "2.0", None]) == [[1, 4]]
    assert group_answers([None, ""]) == []


def test_group_answers_identical_strings_group_even_when_unparseable():
    assert group_answers(["foo", "bar", "foo"]) == [[0, 2], [1]]


def test_group_answers_compares_with_the_representative():
    calls = []

    def equivalent(answer: str, representative: str) -> bool:
        calls.append((answer, representative))
        return answer[0] == representative[0]

    assert group_answers(["ab", "cd", "ax", "cy"], equivalent) == [[0, 2], [1, 3]]
    assert calls == [("cd", "ab"), ("ax", "ab"), ("cy", "ab"), ("cy", "cd")]


def test_majority_answer():
    assert majority_answer(HALVES) == "0.5"  # the 1/2 group, by its first member
    assert majority_answer(["3", "0.5", "1/2", None, None, None]) == "0.5"
    assert majority_answer(["3", "0.5"]) == "3"  # tie: first group wins
    assert majority_answer([None, " "]) is None
    assert majority_answer([]) is None


def test_cons_at_k_majority_of_equivalent_forms():
    assert cons_at_k([HALVES], ["1/2"], 5) == 1.0
    assert cons_at_k([HALVES], ["3"], 5) == 0.0


def test_cons_at_k_uses_first_k_answers_and_ties_go_to_first_group():
    assert cons_at_k([HALVES], ["1/2"], 2) == 1.0  # "0.5" vs "3": "0.5" came first
    assert cons_at_k([["3", "0.5", "1/2"]], ["3"], 2) == 1.0
    assert cons_at_k([["3", "0.5", "1/2"]], ["3"], 3) == 0.0


def test_cons_at_k_ignores_missing_answers_and_averages():
    answers = [[None, None, "7", "8"], [None, None, None, "8"], [None] * 4]
    assert cons_at_k(answers, ["7", "7", "7"], 4) == pytest.approx(1 / 3)


def test_cons_at_k_custom_checks():
    answers = [["A", "a", "B"]]
    same_letter = lambda x, y: x.lower() == y.lower()  # noqa: E731
    assert cons_at_k(answers, ["a"], 3, is_correct=same_letter, equivalent=same_letter) == 1.0


def test_cons_at_k_errors():
    with pytest.raises(ValueError, match="problem 1 has only 2 answers"):
        cons_at_k([["1", "2", "3"], ["1", "2"]], ["1", "2"], 3)
    with pytest.raises(ValueError, match="2 problems and 1 golds"):
        cons_at_k([["1"], ["2"]], ["1"], 1)
    with pytest.raises(ValueError, match="k=0"):
        cons_at_k([["1"]], ["1"], 0)
    with pytest.raises(ValueError, match="at least one problem"):
        cons_at_k([], [], 1)


# ---------------------------------------------------------------------------------------------
# Reflection words


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Wait, that is not right.", 1),
        ("I waited. Then I was waiting, awaited.", 0),
        ("Let me check. I checked it twice.", 1),
        ("WAIT. wait! Wait? wAiT", 4),
        ("However, this is wrong: a mistake. Let me verify and retry.", 5),
        ("wait_for(x) and check2", 0),  # underscores and digits are word characters
        ("mistakes were made", 0),  # whole words only
        ("", 0),
        ("等等，我再检查一下", 2),
        ("等一下，这是错误的。然而，但是我们需要验证。", 5),
        ("我们再check一下", 1),  # language-mixed text: CJK letters are a word boundary
    ],
)
def test_count_reflection_words(text, expected):
    assert count_reflection_words(text) == expected


def test_count_reflection_words_counts_overlapping_words_once():
    # "等等一下" holds both 等等 and 等一下: the stretch counts once
    assert count_reflection_words("等等一下") == 1


def test_count_reflection_words_phrases_and_custom_words():
    words = ("let me check", "hmm")
    assert count_reflection_words("Let me  check. let me\ncheck! Hmm, hmmm.", words) == 3
    assert count_reflection_words("outlet me check", words) == 0
    assert count_reflection_words("wait", ()) == 0
    with pytest.raises(ValueError, match="blank"):
        count_reflection_words("wait", ("wait", " "))


def test_reflection_words_list():
    assert {"wait", "verify", "check", "等等", "检查"} <= set(REFLECTION_WORDS)


def test_reflection_stats():
    texts = ["Wait, wait.", "All good.", "Let me verify: 等等"]
    assert reflection_stats(texts) == {
        "reflection_words": pytest.approx(4 / 3),
        "reflection_rate": pytest.approx(2 / 3),
    }
    assert reflection_stats([]) == {"reflection_words": 0.0, "reflection_rate": 0.0}


# ---------------------------------------------------------------------------------------------
# Lengths


def test_length_stats_hand_values():
    stats = length_stats(list(range(1, 101)))
    assert stats == {
        "mean": pytest.approx(50.5),
        "p50": pytest.approx(50.5),
        "p90": pytest.approx(90.1),
        "p99": pytest.approx(99.01),
        "max": 100.0,
    }


def test_length_stats_unsorted_and_single():
    assert length_stats([30, 10, 20])["p50"] == 20.0
    assert length_stats([7]) == {"mean": 7.0, "p50": 7.0, "p90": 7.0, "p99": 7.0, "max": 7.0}


def test_length_stats_empty_is_nan():
    stats = length_stats([])
    assert set(stats) == {"mean", "p50", "p90", "p99", "max"}
    assert all(math.isnan(value) for value in stats.values())


def test_mean_and_stderr_by_hand():
    from r1.eval.metrics import mean_and_stderr

    mean, error = mean_and_stderr([1.0, 0.5, 0.0])
    assert mean == pytest.approx(0.5) and error == pytest.approx(0.5 / math.sqrt(3))
    assert mean_and_stderr([1.0, 1.0]) == (1.0, 0.0)
    assert math.isnan(mean_and_stderr([0.25])[1])  # one problem: no error to estimate
    with pytest.raises(ValueError, match="at least one"):
        mean_and_stderr([])
