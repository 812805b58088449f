from __future__ import annotations

import random
import re
import time

import pytest

from r1.rewards.language import (
    _base_identifier,
    detect_language,
    lang_consistency,
    language_consistency,
    language_counts,
    language_shares,
    prompt_question,
    think_text,
)
from r1.rewards.types import RewardSample

# The classifier decides whole chunks, so a result is either the exact fraction of units below
# or off by at least one chunk: every expectation is exact (no tolerance beyond float rounding).
CONSISTENCY_CASES = [
    # (text, target, expected share)
    ("The answer is 42 because we add the two numbers.", "en", 1.0),
    ("The answer is 42 because we add the two numbers.", "zh", 0.0),
    ("我们先把两个数相加，得到结果。", "zh", 1.0),
    ("我们先把两个数相加，得到结果。", "en", 0.0),
    # 6 Chinese characters + 2 English words
    ("我们先算 sum，然后 check", "zh", 0.75),
    ("我们先算 sum，然后 check", "en", 0.25),
    # 6 English words (a sentence) + 8 Chinese characters
    ("Let me add the numbers first. 然后我们检查结果。", "en", 6 / 14),
    ("Let me add the numbers first. 然后我们检查结果。", "zh", 8 / 14),
    # a French sentence is not English; 4 English + 5 French words
    ("Je pense que la réponse est correcte.", "en", 0.0),
    ("Je pense que la réponse est correcte.", "fr", 1.0),
    ("The sum is correct. Donc la réponse est quarante.", "en", 4 / 9),
    ("The sum is correct. Donc la réponse est quarante.", "fr", 5 / 9),
    (
        "First we add. Then we subtract. Ensuite on multiplie les deux nombres. Finally we check.",
        "en",
        9 / 15,
    ),
    ("Also die Antwort ist richtig.", "en", 0.0),
    ("Also die Antwort ist richtig.", "de", 1.0),
    ("Entonces la respuesta es correcta.", "es", 1.0),
    # short interjections are ambiguous to the classifier: they count for the target
    ("Hmm. OK. Wait, let me verify.", "en", 1.0),
    # LaTeX commands, $...$ math, operators, numbers and variables are neutral
    ("So \\frac{a}{b} \\times 3 = 6, hence $ab + cd$ works.", "en", 1.0),
    ("所以 \\frac{a}{b} \\times \\sqrt{x} = 2，$\\sin x + ab$ 成立", "zh", 1.0),
    ("设 x 为未知数，则 2x + 3 = 7，x_1 = 2", "zh", 1.0),
    ("已知 $x$ 满足 $\\text{方程} x = 1$", "zh", 1.0),  # CJK inside math still counts
    # other scripts
    ("これは日本語です。", "ja", 1.0),  # kanji in a sentence with kana are Japanese
    ("これは日本語です。", "zh", 0.0),
    ("답은 42 입니다", "ko", 1.0),
    ("Проверим ответ ещё раз.", "ru", 1.0),
    ("Проверим ответ ещё раз.", "en", 0.0),
    ("Το αποτέλεσμα είναι σωστό.", "el", 1.0),
    ("Το αποτέλεσμα είναι σωστό.", "en", 0.0),
    ("الجواب صحيح تماما", "ar", 1.0),
    ("الجواب صحيح تماما", "en", 0.0),
    # region subtags and case are normalised
    ("我们先算 sum，然后 check", "zh-CN", 0.75),
    ("The answer is four.", "EN", 1.0),
]


@pytest.mark.parametrize(("text", "target", "expected"), CONSISTENCY_CASES)
def test_language_consistency(text: str, target: str, expected: float) -> None:
    assert language_consistency(text, target) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n ",
        "23 + 47 = 70\n70 - 15 = 55",
        "$x^2 + y^2 = z^2$",
        "\\frac{1}{2} \\times 3 = 1.5",
        "x = 5, y = 2x + 1, (a+b)*c",
        "!!! ... ??? ### ---",
    ],
)
def test_nothing_countable_is_none(text: str) -> None:
    assert language_consistency(text, "en") is None
    assert language_consistency(text, "zh") is None
    assert language_shares(text) == {}


def test_language_shares_and_counts() -> None:
    text = "The answer is correct. 然后我们检查结果。"
    assert language_counts(text) == {"en": 4, "zh": 8}
    assert language_shares(text) == pytest.approx({"zh": 8 / 12, "en": 4 / 12})
    assert language_shares("Je pense que la réponse est correcte.") == {"fr": 1.0}


def test_unknown_language_codes_raise() -> None:
    with pytest.raises(ValueError, match="unknown language 'klingon'"):
        language_consistency("some text", "klingon")
    with pytest.raises(ValueError, match=re.escape("unknown candidate languages ['xx']")):
        language_shares("some text", candidates=("en", "xx"))


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("no tags at all", None),
        ("", None),
        ("<answer>5</answer>", None),
        ("<think>\n 2 + 3 = 5 \n</think>\n<answer>5</answer>", "2 + 3 = 5"),
        ("<think>unclosed thought", "unclosed thought"),
        ("<think>unclosed <answer>5</answer>", "unclosed"),
        ("<think>first</think><think>second</think>", "first"),
        ("<think>a<think>b</think>c</think>", "a b"),  # nested: the first block, tags dropped
        ("<think></think><answer>1</answer>", ""),
        ("thought before the close tag</think><answer>1</answer>", "thought before the close tag"),
        ("<answer>1</answer><think>late</think>", "late"),
    ],
)
def test_think_text(completion: str, expected: str | None) -> None:
    assert think_text(completion) == expected


R1_ZERO_PROMPT = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant "
    "solves it. The assistant first thinks about the reasoning process in the mind and then "
    "provides the user with the answer. User: {question}. Assistant:"
)
CHATML_PROMPT = (
    "<|im_start|>system\nThe assistant first thinks about the reasoning process and then "
    "provides the user with the answer.<|im_end|>\n<|im_start|>user\n{question}<|im_end|>\n"
    "<|im_start|>assistant\n"
)
ZH_QUESTION = "计算 23 + 47 - 15 的值。"
EN_QUESTION = "What is the sum of 23 and 47?"
ZH_COT = "<think>先算 23 + 47 = 70，再算 70 - 15 = 55</think><answer>55</answer>"
EN_COT = "<think>First add 23 and 47 to get 70, then subtract 15.</think><answer>55</answer>"
MIXED_COT = "<think>我们先算 sum，然后 check</think><answer>55</answer>"


@pytest.mark.parametrize("template", [R1_ZERO_PROMPT, CHATML_PROMPT, "{question}"])
def test_prompt_question_and_detection(template: str) -> None:
    zh_prompt, en_prompt = (
        template.format(question=ZH_QUESTION),
        template.format(question=EN_QUESTION),
    )
    assert ZH_QUESTION in prompt_question(zh_prompt)
    assert "reasoning" not in prompt_question(zh_prompt)
    assert detect_language(prompt_question(zh_prompt)) == "zh"
    assert detect_language(prompt_question(en_prompt)) == "en"
    # the English instructions outweigh a short question: detection needs the question alone
    if template != "{question}":
        assert detect_language(zh_prompt) == "en"


@pytest.mark.parametrize(
    ("sample", "params", "expected"),
    [
        (RewardSample(ZH_COT, meta={"language": "zh"}), {}, 1.0),
        (RewardSample(EN_COT, meta={"language": "zh"}), {}, 0.0),
        (RewardSample(EN_COT, meta={"language": "en"}), {}, 1.0),
        (RewardSample(MIXED_COT, meta={"language": "zh"}), {}, 0.75),
        # the explicit language wins over meta
        (RewardSample(MIXED_COT, meta={"language": "zh"}), {"language": "en"}, 0.25),
        # auto-detection from the question inside the prompt
        (RewardSample(ZH_COT, prompt=R1_ZERO_PROMPT.format(question=ZH_QUESTION)), {}, 1.0),
        (RewardSample(EN_COT, prompt=R1_ZERO_PROMPT.format(question=ZH_QUESTION)), {}, 0.0),
        (RewardSample(EN_COT, prompt=CHATML_PROMPT.format(question=EN_QUESTION)), {}, 1.0),
        (RewardSample(ZH_COT, prompt=CHATML_PROMPT.format(question=ZH_QUESTION)), {}, 1.0),
        # no think block
        (RewardSample("<answer>55</answer>", meta={"language": "zh"}), {}, 0.0),
        (RewardSample("55", meta={"language": "zh"}), {"missing_think": -1.0}, -1.0),
        # nothing countable in the thought, or no language to find in the prompt
        (RewardSample("<think>23 + 47 = 70</think>", meta={"language": "en"}), {}, None),
        # ... which mixes no language, where the reward says so; a word still counts
        (
            RewardSample("<think>23 + 47 = 70</think>", meta={"language": "en"}),
            {"no_words": 1.0},
            1.0,
        ),
        (RewardSample(EN_COT, meta={"language": "zh"}), {"no_words": 1.0}, 0.0),
        (RewardSample(ZH_COT, prompt="1 + 1 = ?"), {}, None),
    ],
)
def test_lang_consistency(sample: RewardSample, params: dict, expected: float | None) -> None:
    assert lang_consistency(sample, **params) == expected


def _random_text(size: int, max_code_point: int) -> str:
    rng = random.Random(0)
    return "".join(chr(rng.randint(0, max_code_point)) for _ in range(size))


def _many_scripts(size: int) -> str:
    rng = random.Random(0)
    pieces = [
        "word ",
        "mot ",
        "слово ",
        "词",
        "単語",
        "단어 ",
        "λέξη ",
        "كلمة ",
        ". ",
        "\n",
        "1 ",
        "$",
    ]
    return "".join(rng.choice(pieces) for _ in range(size // 4))


MEGABYTE = 1_000_000
HOSTILE_TEXTS = {
    "english": lambda: "Let me check the sum again, since 23 + 47 = 70. " * (MEGABYTE // 48),
    "chinese": lambda: "我们先计算这个和，然后检查结果。" * (MEGABYTE // 16),
    "random_unicode": lambda: _random_text(MEGABYTE, 0x10FFFF),
    "random_bmp": lambda: _random_text(MEGABYTE, 0xFFFF),
    "many_scripts": lambda: _many_scripts(MEGABYTE),
    "tiny_sentences": lambda: "ab. " * (MEGABYTE // 4),
    "dollars": lambda: "$a b\n" * (MEGABYTE // 5),
    "tags": lambda: "<think></think><answer>" * (MEGABYTE // 23),
    "one_word": lambda: "a" * MEGABYTE,
    "surrogates": lambda: "\ud800\udfff" * (MEGABYTE // 2),
}


@pytest.mark.parametrize("name", list(HOSTILE_TEXTS))
def test_megabyte_input_is_fast_and_never_raises(name: str) -> None:
    _base_identifier()  # model loading is a one-off cost, not part of the time limit
    text = HOSTILE_TEXTS[name]()
    # CPU time of this process, not wall time: the bound must not depend on what else runs.
    # It is loose (about 0.5 s here); a quadratic path on a megabyte would take minutes.
    start = time.process_time()
    share = language_consistency(text, "en")
    reward = lang_consistency(RewardSample("<think>" + text, prompt=text[:10_000]))
    elapsed = time.process_time() - start
    assert share is None or 0.0 <= share <= 1.0
    assert reward is None or 0.0 <= reward <= 1.0
    assert elapsed < 5.0, f"{name}: {elapsed:.2f} CPU s"


EN_STEPS = [
    "Let me compute {a} + {b} first, which gives {c}.",
    "Wait, that is not right.",
    "Hmm, let me check the multiplication again: {a} * {b} = {c}.",
    "So the total is {c}.",
    "Alternatively, we could subtract {b} from {a} to get {c}.",
    "Now I need to combine this with the remaining numbers.",
    "That works, since $\\frac{{{c}}}{{{a}}}$ equals the target.",
]
ZH_STEPS = [
    "先算 {a} + {b} = {c}。",
    "等一下，这样不对。",
    "我们再检查一下乘法：{a} * {b} = {c}。",
    "所以总数是 {c}。",
    "换一种方法，用 {a} 减去 {b} 得到 {c}。",
]


def test_throughput() -> None:
    """~2,000 realistic completions of 10-30 steps (half English, a quarter Chinese, a quarter
    mixed); the rate is printed, the bound is loose (a training batch must not wait on it)."""
    rng = random.Random(0)
    kinds = [("en", EN_STEPS), ("zh", ZH_STEPS), ("en", EN_STEPS), ("zh", EN_STEPS + ZH_STEPS)]
    samples, pure = [], []
    for i in range(2000):
        language, steps = kinds[i % 4]
        thought = " ".join(
            rng.choice(steps).format(
                a=rng.randint(1, 99), b=rng.randint(1, 99), c=rng.randint(1, 999)
            )
            for _ in range(rng.randint(10, 30))
        )
        completion = f"<think>\n{thought}\n</think>\n<answer>{rng.randint(1, 999)}</answer>"
        samples.append(RewardSample(completion, meta={"language": language}))
        pure.append(i % 4 != 3)
    lang_consistency(samples[0])  # load the model outside the timing
    start = time.process_time()  # CPU time: independent of what else runs
    rewards = [lang_consistency(sample) for sample in samples]
    rate = len(samples) / (time.process_time() - start)
    mean_chars = sum(len(s.completion) for s in samples) / len(samples)
    print(f"\nlang_consistency: {rate:,.0f} completions/s (mean {mean_chars:.0f} chars)")
    assert all(r == 1.0 for r, p in zip(rewards, pure) if p)
    assert all(0.0 < r < 1.0 for r, p in zip(rewards, pure) if not p)
    assert rate > 200
