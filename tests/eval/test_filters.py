from __future__ import annotations

import pytest
from rollout_fixtures import generation

from r1.checks import ConfigError
from r1.data import Problem
from r1.eval.filters import (
    FILTER_NAMES,
    Candidate,
    FilterSettings,
    duplicates,
    failed_filters,
    normalized,
)

EN = Problem(question="What is 2 + 3?", answer="5", task="arithmetic", meta={"language": "en"})
ZH = Problem(question="2 加 3 等于多少？", answer="5", task="arithmetic", meta={"language": "zh"})
NO_META = Problem(question="What is 2 + 3?", answer="5", task="arithmetic")
PROMPT_EN = "User: What is 2 + 3? Assistant:"
PROMPT_ZH = "User: 2 加 3 等于多少？ Assistant:"

THINK_EN = "I need to add two and three. Two plus three equals five, so the answer is five."
CLEAN = f"<think>\n{THINK_EN}\n</think>\n<answer>5</answer>"
WRONG = f"<think>\n{THINK_EN}\n</think>\n<answer>6</answer>"
# 9 English words (the single letter "I" is language-neutral) and 10 Chinese characters:
# an English share of 9/19 < 0.9.
MIXED = (
    "<think>\nFirst I add the two numbers 首先我们把两个数相加 then check the result.\n"
    "</think>\n<answer>5</answer>"
)
ZH_CLEAN = "<think>\n首先计算二加三，二加三等于五，所以答案是五。\n</think>\n<answer>5</answer>"
CODE_IN_THINK = (
    "<think>\nLet me compute it with a program.\n```python\nprint(2 + 3)\n```\n"
    "The program prints five.\n</think>\n<answer>5</answer>"
)
CODE_IN_ANSWER = (
    "<think>\nWe write a program that adds the two numbers and prints the sum.\n</think>\n"
    "<answer>5</answer>\n```python\nprint(2 + 3)\n```"
)
CODE_TAG = "<think>\nThe sum is <code>2 + 3</code> which equals five.\n</think>\n<answer>5</answer>"
INLINE_BACKTICK = "<think>\nThe sum `2 + 3` equals five, as expected.\n</think>\n<answer>5</answer>"
# Short sentences: one 60-word run of "so" alone reads as German to the language classifier.
SO_LOOP = "<think>\n" + "so so so so so. " * 12 + "\n</think>\n<answer>5</answer>"
# 10 tokens per sentence, 10 times: after the first sentence nearly every 3-gram repeats
# (rate near 0.8 with the tags).
SENTENCE_LOOP = (
    "<think>\n" + "Let me add two and three to get five. " * 10 + "\n</think>\n<answer>5</answer>"
)
# Varied sentences (32 to 36 characters each): 28 of them make one paragraph of over 900
# characters whose only repeated 3-gram per sentence is ": we add".
SENTENCES = [f"Step {i}: we add {i} and {i + 1} to get {2 * i + 1}." for i in range(1, 29)]
ONE_PARAGRAPH = " ".join(SENTENCES)
SPLIT_PARAGRAPHS = "\n\n".join(
    " ".join(SENTENCES[i : i + 7]) for i in range(0, len(SENTENCES), 7)
)  # four paragraphs of about 250 characters
LONG = f"<think>\n{ONE_PARAGRAPH}\n</think>\n<answer>5</answer>"
LONG_SPLIT = f"<think>\n{SPLIT_PARAGRAPHS}\n</think>\n<answer>5</answer>"
NO_THINK_CODE = "Let me think.\n```python\nprint(2 + 3)\n```\n<answer>5</answer>"
# The chat template opened <think> in the prompt: the completion starts inside the block.
TEMPLATE_OPENED = f"{THINK_EN}\n</think>\n<answer>5</answer>"

OFF = {
    "correct": False,
    "min_language_consistency": None,
    "max_paragraph_chars": None,
    "no_code": False,
    "max_repetition": None,
}


def candidate(text: str, stopped: bool = True, problem=EN, prompt=PROMPT_EN) -> Candidate:
    return Candidate(problem, prompt, generation(text, 50, stopped))


def test_preconditions_of_the_samples():
    # The paragraph samples must straddle the 800-character default.
    assert len(ONE_PARAGRAPH) > 900
    assert all(len(p) < 800 for p in SPLIT_PARAGRAPHS.split("\n\n"))


@pytest.mark.parametrize(
    "text,stopped,problem,prompt,overrides,expected",
    [
        (CLEAN, True, EN, PROMPT_EN, {}, []),
        (WRONG, True, EN, PROMPT_EN, {}, ["correct"]),
        (CLEAN, False, EN, PROMPT_EN, {}, ["correct"]),  # ran out of tokens
        (WRONG, True, EN, PROMPT_EN, {"correct": False}, []),
        (CLEAN, True, EN, PROMPT_EN, {"answer_source": "boxed"}, ["correct"]),  # no \boxed{}
        # language
        (MIXED, True, EN, PROMPT_EN, {}, ["language"]),
        (MIXED, True, EN, PROMPT_EN, {"min_language_consistency": None}, []),
        (MIXED, True, EN, PROMPT_EN, {"min_language_consistency": 0.4}, []),  # 9/19 >= 0.4
        (MIXED, True, NO_META, PROMPT_EN, {}, ["language"]),  # target from the prompt: en
        (ZH_CLEAN, True, ZH, PROMPT_ZH, {}, []),
        (ZH_CLEAN, True, EN, PROMPT_EN, {}, ["language"]),
        (ZH_CLEAN, True, ZH, PROMPT_ZH, {"language": "en"}, ["language"]),  # explicit target
        (CLEAN, True, ZH, PROMPT_ZH, {}, ["language"]),  # English thought, Chinese problem
        (CLEAN, True, NO_META, PROMPT_EN, {}, []),
        (CLEAN, True, NO_META, PROMPT_ZH, {}, ["language"]),  # target from the prompt: zh
        (TEMPLATE_OPENED, True, EN, PROMPT_EN, {}, []),
        # only numbers and math in the thought: no language to mix, kept
        ("<think>2 + 3 = 5</think><answer>5</answer>", True, EN, PROMPT_EN, {}, []),
        # paragraphs
        (LONG, True, EN, PROMPT_EN, {}, ["paragraphs"]),
        (LONG_SPLIT, True, EN, PROMPT_EN, {}, []),
        (LONG, True, EN, PROMPT_EN, {"max_paragraph_chars": None}, []),
        (LONG, True, EN, PROMPT_EN, {"max_paragraph_chars": 2000}, []),
        (LONG_SPLIT, True, EN, PROMPT_EN, {"max_paragraph_chars": 100}, ["paragraphs"]),
        # code
        (CODE_IN_THINK, True, EN, PROMPT_EN, {}, ["code"]),
        (CODE_IN_THINK, True, EN, PROMPT_EN, {"no_code": False}, []),
        (CODE_IN_ANSWER, True, EN, PROMPT_EN, {}, []),
        (CODE_TAG, True, EN, PROMPT_EN, {}, ["code"]),
        (INLINE_BACKTICK, True, EN, PROMPT_EN, {}, []),
        # repetition
        (SO_LOOP, True, EN, PROMPT_EN, {}, ["repetition"]),
        (SENTENCE_LOOP, True, EN, PROMPT_EN, {}, ["repetition"]),
        (SENTENCE_LOOP, True, EN, PROMPT_EN, {"max_repetition": None}, []),
        (SENTENCE_LOOP, True, EN, PROMPT_EN, {"max_repetition": 0.95}, []),
        # no think block: the reasoning is the text before <answer>; the language reward
        # gives a missing think block 0.0
        (NO_THINK_CODE, True, EN, PROMPT_EN, {}, ["language", "code"]),
        (NO_THINK_CODE, True, EN, PROMPT_EN, {"min_language_consistency": None}, ["code"]),
        # several failures, listed in FILTER_NAMES order
        (
            CODE_IN_THINK.replace("<answer>5", "<answer>7"),
            True,
            EN,
            PROMPT_EN,
            {},
            ["correct", "code"],
        ),
        (
            MIXED.replace("then", "```x```"),
            False,
            EN,
            PROMPT_EN,
            {},
            ["correct", "language", "code"],
        ),
        (LONG, True, ZH, PROMPT_ZH, {}, ["language", "paragraphs"]),  # English, target zh
        (CLEAN, True, EN, PROMPT_EN, OFF, []),
    ],
)
def test_failed_filters(text, stopped, problem, prompt, overrides, expected):
    settings = FilterSettings(**overrides)
    assert failed_filters(candidate(text, stopped, problem, prompt), settings) == expected


def test_every_filter_is_evaluated():
    # Wrong, truncated, mixed-language, one 1200-character paragraph, a code fence, a loop.
    think = "```\n" + "so " * 300 + "这是中文" * 30 + "\n```"
    text = f"<think>\n{think}\n</think>\n<answer>6</answer>"
    assert failed_filters(candidate(text, stopped=False), FilterSettings()) == list(FILTER_NAMES)
    assert failed_filters(candidate(text, stopped=False), FilterSettings(**OFF)) == []


@pytest.mark.parametrize(
    "text",
    [
        "",
        " \n\n ",
        "<think>",
        "</think>",
        "<answer>",
        "<answer>5",
        "</think></think><answer></answer><answer>",
        "<think><think>```</think>",
        "<think>\n\n\n\n</think><answer>\n\n</answer>",
        "<code" * 100,
        "$" * 50 + "$x$" * 50,
        "\\boxed{" * 50,
        "\x00\ud800\ufffd\u200b",
        "嗯" * 2000,
        "<think>" + "a" * 5000 + "</think>",
    ],
)
def test_malformed_text_never_raises(text):
    for settings in (
        FilterSettings(),
        FilterSettings(answer_source="boxed"),
        FilterSettings(**OFF),
    ):
        failed = failed_filters(candidate(text), settings)
        assert isinstance(failed, list)
        assert failed == [name for name in FILTER_NAMES if name in failed]


@pytest.mark.parametrize(
    "text,expected",
    [
        # no answer, no think block (missing think scores 0.0), nothing else to object to
        ("", ["correct", "language"]),
        ("<think>", ["correct"]),  # an empty thought: no language signal, nothing mixed
        ("<answer>5", ["correct", "language"]),  # an unclosed answer block is no answer
    ],
)
def test_malformed_text_expectations(text, expected):
    assert failed_filters(candidate(text), FilterSettings()) == expected


@pytest.mark.parametrize(
    "overrides,key",
    [
        ({"correct": "yes"}, "filters.correct"),
        ({"no_code": 1}, "filters.no_code"),
        ({"answer_source": "last_line"}, "filters.answer_source"),
        ({"min_language_consistency": 1.5}, "filters.min_language_consistency"),
        ({"min_language_consistency": -0.1}, "filters.min_language_consistency"),
        ({"min_language_consistency": "high"}, "filters.min_language_consistency"),
        ({"language": "klingon"}, "filters.language"),
        ({"language": 3}, "filters.language"),
        ({"max_paragraph_chars": 0}, "filters.max_paragraph_chars"),
        ({"max_paragraph_chars": 800.5}, "filters.max_paragraph_chars"),
        ({"max_repetition": 2}, "filters.max_repetition"),
        ({"max_repetition": float("nan")}, "filters.max_repetition"),
    ],
)
def test_settings_validation_names_the_key(overrides, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        FilterSettings(**overrides)


@pytest.mark.parametrize(
    "overrides",
    [{}, OFF, {"language": "zh-CN"}, {"min_language_consistency": 0}, {"max_repetition": 1}],
)
def test_valid_settings(overrides):
    FilterSettings(**overrides)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("  The Answer\n\tis  5 ", "the answer is 5"),
        ("", ""),
        ("\n \t", ""),
        ("ÀB", "àb"),
    ],
)
def test_normalized(text, expected):
    assert normalized(text) == expected


def test_duplicates():
    variant = "<THINK>\n  I need to ADD two and three.   Two plus three equals five, so the answer is five.\n</think>  <answer>5</answer>"
    candidates = [
        candidate(CLEAN),
        candidate(CLEAN, prompt=PROMPT_ZH),  # same completion, different prompt
        candidate(variant.replace("<THINK>", "<think>")),  # whitespace/case variant
        candidate(variant),  # <THINK> lower-cases to <think>: a variant too
        candidate(WRONG),
        candidate(CLEAN, prompt=PROMPT_ZH),
        candidate(CLEAN, stopped=False),  # same text: a duplicate whatever its metadata
    ]
    assert duplicates(candidates) == [False, False, True, True, False, True, True]
    assert duplicates([]) == []
