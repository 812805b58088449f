"""Table-driven tests of the built-in terms; expected values are written by hand."""

from __future__ import annotations

import math
import time

import pytest

from r1.rewards import RewardSample
from r1.rewards.accuracy import accuracy, plain_number
from r1.rewards.format import format_soft, format_strict
from r1.rewards.length import cosine_length, overlong_penalty
from r1.rewards.repetition import ngram_repetition

GOOD = "<think>\n47 + 38 = 85\n</think>\n<answer>85</answer>"


@pytest.mark.parametrize(
    "completion,gold,expected",
    [
        (GOOD, "85", 1.0),  # correct
        ("<think>x</think><answer>84</answer>", "85", 0.0),  # wrong
        ("<think>x</think><answer>85.0</answer>", "85", 1.0),  # equivalent form
        ("<think>x</think><answer>\\frac{1}{2}</answer>", "0.5", 1.0),
        ("<think>x</think><answer>1/2</answer>", "\\frac{1}{2}", 1.0),
        ("<think>x</think><answer>$85$</answer>", "85", 1.0),
        ("85", "85", 0.0),  # missing tags
        ("<think>85</think>", "85", 0.0),  # no answer block
        ("<answer>85", "85", 0.0),  # unclosed
        ("<answer>1</answer><answer>85</answer>", "85", 1.0),  # repeated: the last counts
        ("<answer><answer>85</answer></answer>", "85", 0.0),  # nested: "<answer>85" is no number
        ("<think>思考</think><answer>８５</answer>", "85", 1.0),  # full-width digits are 85
        ("<answer>" + "9" * 5000 + "</answer>", "85", 0.0),  # huge
        ("<answer>\\frac{\\frac{\\frac{1}{2}}{</answer>", "85", 0.0),  # adversarial LaTeX
        ("<answer>\\sqrt{" * 200 + "</answer>", "85", 0.0),
        ("<answer>10**10**10</answer>", "85", 0.0),  # tower: rejected up front
        ("<answer>9^{9^{9}}</answer>", "85", 0.0),
        ("x" * 200_000 + GOOD, "85", 1.0),  # very long output
        (GOOD, "", None),  # no gold: no signal
    ],
)
def test_accuracy(completion, gold, expected):
    assert accuracy(RewardSample(completion, gold=gold)) == expected


def test_accuracy_sources_and_stop():
    boxed = RewardSample("so the answer is \\boxed{\\frac{1}{2}} ok", gold="0.5")
    assert accuracy(boxed, source="boxed") == 1.0 and accuracy(boxed) == 0.0
    assert accuracy(RewardSample("47 + 38 = 85", gold="85"), source="last_number") == 1.0
    truncated = RewardSample(GOOD, gold="85", truncated=True)
    assert accuracy(truncated) == 1.0 and accuracy(truncated, require_stop=True) == 0.0
    with pytest.raises(ValueError, match="'tail'.*answer_tag, boxed, last_number"):
        accuracy(RewardSample(GOOD, gold="85"), source="tail")


def test_countdown_accuracy():
    meta = {"numbers": [3, 5, 8], "target": 23}
    assert accuracy(RewardSample("<answer>3 * 5 + 8</answer>", task="countdown", meta=meta)) == 1.0
    assert accuracy(RewardSample("<answer>23</answer>", task="countdown", meta=meta)) == 0.0


@pytest.mark.parametrize(
    "text,value",
    [
        ("1,234", 1234),
        ("-5", -5),
        ("0.25", 0.25),
        ("3/4", 0.75),
        ("$7$", 7),
        ("1e5", None),
        ("x", None),
        ("1/0", None),
    ],
)
def test_plain_number(text, value):
    assert plain_number(text) == value


@pytest.mark.parametrize(
    "completion,truncated,strict,soft",
    [
        (GOOD, False, 1.0, 1.0),
        (GOOD, True, 0.0, 1.0),  # never finished
        ("<think>a</think><answer>1</answer> trailing", False, 0.0, 0.75),  # text after
        ("<answer>1</answer><think>a</think>", False, 0.0, 0.5),  # wrong order, text after
        ("<think>a</think>", False, 0.0, 0.25),  # no answer
        ("<think>a<think>b</think><answer>1</answer>", False, 0.0, 0.5),  # repeated think open
        ("", False, 0.0, 0.0),
        ("<think>数学</think>\n<answer>五</answer>\n", False, 1.0, 1.0),  # unicode
    ],
)
def test_format(completion, truncated, strict, soft):
    sample = RewardSample(completion, truncated=truncated)
    assert format_strict(sample) == strict
    assert format_soft(sample) == soft


@pytest.mark.parametrize(
    "tokens,correct,truncated,expected",
    [
        (0, True, False, 2.0),  # correct and short: correct_short
        (50, True, False, 1.5),  # half-way: midpoint of the cosine
        (100, True, False, 1.0),  # correct at the budget: correct_long
        (0, False, False, -10.0),  # wrong and short: wrong_short
        (50, False, False, -5.0),
        (100, True, True, -10.0),  # ran out of budget: exceed
    ],
)
def test_cosine_length(tokens, correct, truncated, expected):
    completion = "<answer>7</answer>" if correct else "<answer>8</answer>"
    sample = RewardSample(
        completion, gold="7", num_tokens=tokens, max_tokens=100, truncated=truncated
    )
    assert cosine_length(sample) == pytest.approx(expected)


def test_cosine_length_needs_a_budget():
    assert cosine_length(RewardSample("<answer>7</answer>", gold="7", num_tokens=5)) is None


@pytest.mark.parametrize(
    "tokens,truncated,expected",
    [
        (0, False, 0.0),
        (96, False, 0.0),
        (112, False, -0.5),
        (128, False, -1.0),
        (100, True, -1.0),
        (200, False, -1.0),
    ],
)
def test_overlong_penalty(tokens, truncated, expected):
    # budget 128, buffer 32: soft zone 96..128
    sample = RewardSample("x", num_tokens=tokens, max_tokens=128, truncated=truncated)
    assert overlong_penalty(sample, buffer=32) == pytest.approx(expected)


@pytest.mark.parametrize(
    "completion,expected",
    [
        ("a b c d e f", 0.0),  # 4 trigrams, all distinct
        ("a b c a b c", -0.25),  # 4 trigrams, 3 distinct
        ("= 85 = 85 = 85 = 85 = 85", -(1 - 2 / 8)),  # 8 trigrams, 2 distinct
        ("a b", 0.0),  # too short to judge
    ],
)
def test_ngram_repetition(completion, expected):
    assert ngram_repetition(RewardSample(completion), n=3) == pytest.approx(expected)


def test_terms_never_raise_on_hostile_text():
    hostile = [
        "",
        "\x00\x01",
        "<think>" * 10_000,
        "</answer>" * 1000,
        "\\boxed{" * 1000,
        "💥" * 1000,
        "<answer>" + "(" * 5000 + "</answer>",
    ]
    started = time.monotonic()
    for text in hostile:
        sample = RewardSample(text, gold="1", num_tokens=len(text), max_tokens=64)
        for term in (
            accuracy,
            format_strict,
            format_soft,
            cosine_length,
            overlong_penalty,
            ngram_repetition,
        ):
            value = term(sample)
            assert value is None or math.isfinite(value)
    assert time.monotonic() - started < 20


def test_reward_model_term_scores_in_batches():
    from r1.models.loading import load_reward_model
    from r1.models.reward_model import RewardModelScorer
    from r1.rewards.reward_model import reward_model

    samples = [
        RewardSample("<answer>1</answer>", prompt="Q: 1?"),
        RewardSample("no", prompt="Q: 2?"),
        RewardSample("a longer completion here", prompt="Q: 3?"),
    ]
    model, tokenizer = load_reward_model(name="tiny")
    batched = reward_model(samples, RewardModelScorer(model, tokenizer, batch_size=2))
    one_by_one = RewardModelScorer(model, tokenizer, batch_size=1)
    alone = [reward_model([s], one_by_one)[0] for s in samples]
    assert len(batched) == 3 and len(set(batched)) == 3
    assert batched == pytest.approx(alone, abs=1e-4)  # padding does not change a score


class RecordingScorer:
    """Scores the length of the text it is shown, and keeps what it was shown."""

    def __init__(self):
        self.shown: list[tuple[str, str]] = []

    def score(self, prompts, completions):
        self.shown.extend(zip(prompts, completions))
        return [float(len(c)) for c in completions]


def test_a_reward_model_scores_the_summary_or_the_whole_response():
    from r1.rewards.reward_model import reward_model

    long_reasoning = "<think>\n" + "12 + 35 = 47. Let me check again. " * 5 + "\n</think>\n"
    readable = long_reasoning + "<summary>It is 47.</summary>\n<answer>47</answer>"
    direct = "Sunny days are lovely."  # a general answer without a chain of thought
    samples = [
        RewardSample(readable, prompt="<|im_start|>assistant\n<think>"),
        RewardSample(direct, prompt="<|im_start|>assistant\n"),
    ]
    summary = RecordingScorer()
    assert reward_model(samples, summary, score_on="summary") == [
        float(len("<summary>It is 47.</summary>\n<answer>47</answer>")),
        float(len(direct)),
    ]
    assert summary.shown[0] == (
        "<|im_start|>assistant\n",  # the prompt's own "<think>" goes with the reasoning
        "<summary>It is 47.</summary>\n<answer>47</answer>",
    )
    full = RecordingScorer()
    assert reward_model(samples, full) == [float(len(readable)), float(len(direct))]
    assert full.shown[0] == ("<|im_start|>assistant\n<think>", readable)


def test_a_bad_score_on_fails_when_the_reward_is_built():
    from r1.checks import ConfigError
    from r1.rewards.registry import CompositeReward

    params = {"scorer": RecordingScorer(), "score_on": "answer"}
    with pytest.raises(ConfigError, match="'preference'.*score_on='answer'; valid: full, summary"):
        CompositeReward({"preference": {"fn": "reward_model", "params": params}}, workers=0)


@pytest.mark.parametrize(
    "completion,language,sentences,value",
    [
        ("Sunny days make me smile.", "en", 1, 1.0),
        ("Sunny days make me smile. I love them.", "en", 1, 2 / 3),  # one sentence too many
        ("Sunny days, sunny days, sunny days.", "en", 1, 2 / 3),  # a repeated phrase
        ("晴天让我很开心。", "en", 1, 2 / 3),  # not the request's language
        ("晴天让我很开心。", "zh", 1, 1.0),
        (
            "<think>The user wants one line.</think>\n<answer>Sunny days are lovely.</answer>",
            "en",
            1,
            1.0,
        ),
        ("<think>晴天</think>   ", "zh", 1, 0.0),  # nothing after the thinking
        ("Rain. Rain. Rain.", "en", None, 0.5),  # no length asked: language and repetition
    ],
)
def test_general_rules_checks_what_a_reader_is_shown(completion, language, sentences, value):
    from r1.rewards.general import general_rules

    meta = {"language": language, "sentences": sentences}
    assert general_rules(RewardSample(completion, task="general", meta=meta)) == pytest.approx(
        value
    )
    assert general_rules(RewardSample(completion, task="general")) is None  # language unknown
