"""Benchmarks scored at the protocol on a scripted engine, numbers worked out by hand: math
answers right / wrong / malformed / cut off, multiple choice under shuffled options, code
tests passing and failing in the sandbox, every problem of a fixture scored, the summary
and comparison tables with standard errors."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from r1.data.templates import PromptTemplate
from r1.eval.benchmark_eval import (
    benchmark_metrics,
    comparison_markdown,
    final_answer,
    program_for,
    run_benchmark,
    write_summary,
)
from r1.eval.benchmarks import benchmark_spec, load_benchmark
from r1.eval.choice import LETTERS
from r1.rewards.code import extract_code
from r1.rollout.types import Rollout, SamplingParams

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"
PARAMS = SamplingParams(max_new_tokens=8, temperature=0.6, top_p=0.95)
PLAIN = PromptTemplate(kind="plain", system=None)


class TextTokenizer:
    """Stands in for a tokenizer: a prompt's 'ids' are its index in `texts`."""

    def __init__(self):
        self.texts: list[str] = []

    def __call__(self, text, add_special_tokens=False):
        self.texts.append(text)
        return {"input_ids": [len(self.texts) - 1]}


class ReplyEngine:
    """Answers each prompt with reply(prompt, i) for its i-th of n samples; a reply ending in
    '...' ran out of tokens."""

    def __init__(self, tokenizer: TextTokenizer, reply):
        self.tokenizer, self.reply = tokenizer, reply
        self.calls: list[tuple[int, int]] = []  # (prompts, n) per call

    def generate(self, prompt_ids, params, n):
        self.calls.append((len(prompt_ids), n))
        prompts = [self.tokenizer.texts[ids[0]] for ids in prompt_ids]
        texts = [self.reply(p, i) for p in prompts for i in range(n)]
        rows = len(texts)
        cut = [t.endswith("...") for t in texts]
        return Rollout(
            prompt_ids=torch.ones(len(prompt_ids), 1, dtype=torch.long),
            prompt_mask=torch.ones(len(prompt_ids), 1, dtype=torch.long),
            completion_ids=torch.ones(rows, 4, dtype=torch.long),
            completion_mask=torch.tensor([[1, 1, 1, 1] if c else [1, 1, 0, 0] for c in cut]),
            sampling_logprobs=torch.zeros(rows, 4),
            ends=["length" if c else "eos" for c in cut],
            texts=texts,
            group_size=n,
        )


def preset(name: str, path: str | None = "fixture"):
    settings = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "benchmark" / f"{name}.yaml"))
    if path == "fixture":
        path = str(FIXTURES / f"{name}.jsonl")
    return benchmark_spec({**settings, "path": path})


def score(name, reply, k=4, batch_size=2, seed=0):
    spec = preset(name)
    problems = load_benchmark(spec)
    tokenizer = TextTokenizer()
    engine = ReplyEngine(tokenizer, reply)
    result = run_benchmark(
        engine, spec, problems, tokenizer, k, PARAMS, PLAIN, seed, batch_size, progress=False
    )
    return result, engine


# ---------------------------------------------------------------------------------------------
# math


def test_final_answer_reads_the_answer_block_or_the_last_box():
    assert final_answer("<think>x</think><answer>\\boxed{7}</answer>") == "7"
    assert final_answer("<think>x</think><answer> 7 </answer>") == "7"
    assert final_answer("so 3, then \\boxed{4} and finally \\boxed{5}.") == "5"
    assert final_answer("no answer here") is None
    assert final_answer("\\boxed{") is None  # malformed
    assert final_answer("the last number is 12", "last_number") == "12"


def test_math_right_wrong_malformed_and_cut_off_answers_by_hand():
    # gsm8k fixture: golds 7, 1200, 4.5
    replies = {
        "Tom": ["\\boxed{7}", "<answer>7</answer>", "\\boxed{8}", "\\boxed{7}..."],
        "box": ["\\boxed{1,200}", "\\boxed{1200.0}", "\\boxed{12}", "\\boxed{12}"],
        "Half": ["\\boxed{9/2}", "no box at all", "\\boxed{", "\\boxed{\\frac{9}{2}}"],
    }

    def reply(prompt, i):
        return next(texts[i] for word, texts in replies.items() if word in prompt)

    result, engine = score("gsm8k", reply)
    correct = [[s.correct for s in p.samples] for p in result.problems]
    assert correct == [
        [True, True, False, False],  # cut off: wrong even though the answer is right
        [True, True, False, False],
        [True, False, False, True],
    ]
    m = result.metrics
    assert m["pass@1"] == pytest.approx((2 / 4 + 2 / 4 + 2 / 4) / 3)
    assert m["pass@k"] == 1.0
    # votes: problem 1 {7: 2, 8: 1} -> 7; problem 2 {1200: 2, 12: 2}, tie to the first -> right;
    # problem 3 {9/2 = \frac{9}{2}: 2} -> right
    assert m["cons@k"] == 1.0 and result.problems[0].majority == "7"
    assert result.problems[0].samples[3].vote is None  # cut off: no vote
    assert m["stop_rate"] == 11 / 12 and m["answered_rate"] == 10 / 12
    assert result.stderr["pass@1"] == 0.0  # every problem scored 2 of 4
    assert engine.calls == [(2, 4), (1, 4)]  # one prompt per problem, k samples each


def test_the_summary_holds_the_behaviour_metrics_split_by_level():
    # math500 fixture: levels 1, 2, 1; golds 3/4, 2*sqrt(2), 3. Problem 3 is answered right
    # after a "Wait"; the others wrong, and problem 2's last sample runs out of tokens.
    def reply(prompt, i):
        if "x^2" in prompt:
            return "Wait, \\boxed{3}"
        return "\\boxed{0}..." if "sqrt{8}" in prompt and i == 3 else "\\boxed{0}"

    result, _ = score("math500", reply)
    m = result.metrics
    assert m["reflection_rate/wait"] == 4 / 12 and m["reflection_rate/check"] == 0.0
    assert m["completion_len_correct"] == 2.0  # stopped samples are 2 tokens, cut ones 4
    assert m["completion_len_incorrect"] == pytest.approx((7 * 2 + 4) / 8)
    assert m["completion_len_level_1"] == 2.0
    assert m["completion_len_level_2"] == pytest.approx((3 * 2 + 4) / 4)
    assert m["repetition_rate"] == 0.0


def test_stderr_is_over_problems():
    # pass@1 per problem 1, 1/2, 0: mean 1/2, sample sd 1/2, error 1/2 / sqrt(3)
    answers = {"Tom": ["7", "7"], "box": ["1200", "0"], "Half": ["0", "0"]}

    def reply(prompt, i):
        return next(f"\\boxed{{{a[i]}}}" for word, a in answers.items() if word in prompt)

    result, _ = score("gsm8k", reply, k=2)
    assert result.metrics["pass@1"] == pytest.approx(0.5)
    assert result.stderr["pass@1"] == pytest.approx(0.5 / math.sqrt(3))
    assert result.metrics["pass@k"] == pytest.approx(2 / 3)  # some sample right
    assert result.stderr["pass@k"] == pytest.approx(math.sqrt(1 / 3) / math.sqrt(3))


# ---------------------------------------------------------------------------------------------
# multiple choice


def shown_options(prompt: str) -> dict[str, str]:
    return dict(re.findall(r"^([A-J])\) (.*)$", prompt, re.M))


def test_choice_options_are_shuffled_per_sample_and_recorded():
    rights = {"Which particle": "The photon", "chemical symbol": "Na"}

    def right_letter(prompt, i):
        right = next(text for word, text in rights.items() if word in prompt)
        letter = next(k for k, v in shown_options(prompt).items() if v == right)
        return f"Reasoning.\nAnswer: {letter}"

    result, engine = score("gpqa_diamond", right_letter, k=8)
    assert result.metrics["pass@1"] == 1.0 and result.metrics["cons@k"] == 1.0
    assert engine.calls == [(16, 1)]  # k prompts per problem: each its own order
    for problem in result.problems:
        orders = [s.option_order for s in problem.samples]
        assert len(set(orders)) > 1  # the options did move between samples
        for s in problem.samples:
            assert s.answer == s.gold_letter == LETTERS[s.option_order.index(0)]
    again, _ = score("gpqa_diamond", right_letter, k=8)
    first_orders = [s.option_order for s in result.problems[0].samples]
    assert [s.option_order for s in again.problems[0].samples] == first_orders  # same seed


def test_a_model_that_always_says_A_scores_by_where_the_shuffle_put_the_answer():
    result, _ = score("mmlu", lambda prompt, i: "Answer: A", k=8)
    for problem in result.problems:
        expected = [s.gold_letter == "A" for s in problem.samples]
        assert [s.correct for s in problem.samples] == expected
    assert result.metrics["pass@1"] < 1.0  # letter bias does not score full marks


def test_choice_by_the_option_text_and_unanswered_replies():
    replies = ["<answer>Paris</answer>", "I cannot tell", "Answer: 4", "Answer: Mercury"]
    drawn: dict[str, int] = {}

    def reply(prompt, i):  # each sample is its own prompt (n=1): count them per question
        question = prompt.split("\n\n")[-2]
        drawn[question] = drawn.get(question, -1) + 1
        return replies[drawn[question]]

    result, _ = score("mmlu", reply, k=4)
    paris, four, mercury = result.problems
    assert [s.correct for s in paris.samples] == [True, False, False, False]
    assert paris.samples[1].answer is None and paris.samples[1].vote is None
    assert [s.correct for s in four.samples] == [False, False, True, False]
    assert mercury.samples[3].correct
    # each reply names an option of one question only: 3 of 12 samples answered
    assert result.metrics["answered_rate"] == pytest.approx(3 / 12)


# ---------------------------------------------------------------------------------------------
# code


def fenced(code: str) -> str:
    return f"Here it is:\n```python\n{code}\n```"


def test_humaneval_programs_pass_and_fail_their_tests_in_the_sandbox():
    replies = {
        "total": [
            fenced("def total(numbers):\n    return sum(numbers)"),  # whole function
            fenced("    return sum(numbers)"),  # the body, continuing the prompt
            fenced("def total(numbers):\n    return 0"),  # wrong
            "I would loop over the numbers.",  # no program
        ],
        "shout": [
            fenced("def shout(text):\n    return text.upper() + '!'"),
            fenced("def shout(text):\n    raise ValueError"),
            fenced("def shout(text):\n    return text.upper() + '!'") + "...",  # cut off
            fenced("def shout(text:\n"),  # syntax error
        ],
    }

    def reply(prompt, i):
        return replies["total" if "def total" in prompt else "shout"][i]

    result, _ = score("humaneval", reply)
    assert [[s.correct for s in p.samples] for p in result.problems] == [
        [True, True, False, False],
        [True, False, False, False],
    ]
    assert [s.has_program for s in result.problems[0].samples] == [True, True, True, False]
    assert "cons@k" not in result.metrics and result.problems[0].majority_correct is None
    assert result.metrics["pass@1"] == pytest.approx((2 / 4 + 1 / 4) / 2)
    assert result.metrics["grader_errors"] == 0.0


def test_humaneval_takes_the_block_that_defines_the_function_not_a_later_usage_example():
    # SmolLM2 on HumanEval/4: the function, then "You can use it like this:" and a print block
    usage = "\n\nYou can use it like this:\n\n```python\nprint(total([1, 2]))\n```"
    replies = [
        fenced("def total(numbers):\n    return sum(numbers)") + usage,  # right
        fenced("def total(numbers):\n    return 0") + usage,  # wrong: its function is run
        fenced("def total_of(numbers):\n    return 0") + fenced("    return sum(numbers)"),
    ]

    result, _ = score("humaneval", lambda prompt, i: replies[i] if "total" in prompt else "", 3)
    assert [s.correct for s in result.problems[0].samples] == [True, False, True]
    assert (
        extract_code(replies[0], defines="total")
        == "def total(numbers):\n    return sum(numbers)\n"
    )
    assert extract_code(replies[0]) == "print(total([1, 2]))\n"  # without a name: the last
    assert extract_code(replies[2], defines="total") == "    return sum(numbers)\n"  # none does


def test_program_for_puts_the_prompt_before_the_code():
    problems = load_benchmark(preset("humaneval"))  # the fixture: total(numbers), shout(text)
    prompt = problems[0].question
    full = "def total(numbers):\n    return 0"
    assert program_for(problems[0], full) == prompt + "\n" + full
    assert program_for(problems[0], "    return 0") == prompt + "    return 0"


def test_livecodebench_stdin_and_functional_programs():
    replies = {
        "abc": [
            fenced("a, b = map(int, input().split())\nprint(a + b)"),
            fenced("a, b = map(int, input().split())\nprint(a - b)"),  # passes no test
            fenced("print(3)"),  # passes the public test only: wrong
        ],
        "scale": [
            fenced(
                "class Solution:\n    def scale(self, nums: List[int], k: int):\n"
                "        return [x * k for x in nums]"
            ),
            fenced("class Solution:\n    def scale(self, nums, k):\n        return nums"),
            fenced("class Solution:\n    def scale(self, nums, k):\n        return None"),
        ],
    }

    def reply(prompt, i):
        return replies["abc" if "a + b" in prompt else "scale"][i]

    result, _ = score("livecodebench", reply, k=3)
    assert [[s.correct for s in p.samples] for p in result.problems] == [
        [True, False, False],
        [True, False, False],
    ]


# ---------------------------------------------------------------------------------------------
# whole sets, outputs


@pytest.mark.parametrize(
    "name", ["gsm8k", "math500", "aime24", "aime25", "gpqa_diamond", "mmlu", "livecodebench"]
)
def test_a_fixture_of_n_problems_gets_all_n_scored(name):
    result, _ = score(name, lambda prompt, i: "garbage", k=2, batch_size=1)
    rows = len((FIXTURES / f"{name}.jsonl").read_text().strip().splitlines())
    assert len(result.problems) == rows
    assert all(len(p.samples) == 2 for p in result.problems)
    assert result.metrics["pass@1"] == 0.0


def test_written_outputs_and_the_comparison_table(tmp_path):
    math_result, _ = score("gsm8k", lambda p, i: "\\boxed{7}", k=2)
    code_result, _ = score("humaneval", lambda p, i: "no code", k=2)
    settings = {"model": "scripted", "temperature": 0.6, "top_p": 0.95, "max_new_tokens": 8}
    json_path, md_path = write_summary(tmp_path, [math_result, code_result], settings)
    summary = json.loads(json_path.read_text())
    assert [b["name"] for b in summary["benchmarks"]] == ["gsm8k", "humaneval"]
    assert summary["benchmarks"][0]["num_problems"] == 3
    assert summary["benchmarks"][0]["settings"]["source"].endswith("gsm8k.jsonl")
    lines = (tmp_path / "gsm8k.jsonl").read_text().strip().splitlines()
    first = json.loads(lines[0])
    assert len(lines) == 3 and first["pass@1"] == 1.0 and len(first["samples"]) == 2
    assert first["samples"][0]["answer"] == "7" and first["samples"][0]["correct"]
    table = md_path.read_text()
    # gsm8k: pass@1 1/3 (only Tom's 7 is right), error sd(1, 0, 0)/sqrt(3) = 0.333
    assert "| gsm8k | 3 | 2 | 33.3 ± 33.3 |" in table
    assert "| humaneval | 2 | 2 | 0.0 ± 0.0 | 0.0 ± 0.0 | - |" in table

    other = [dict(s, metrics={**s["metrics"], "pass@1": 0.5}) for s in summary["benchmarks"][:1]]
    compared = comparison_markdown([("base", summary["benchmarks"]), ("trained", other)])
    assert "| benchmark | base | trained |" in compared
    assert "| gsm8k | 33.3 ± 33.3 | 50.0 ± 33.3 |" in compared
    assert "| humaneval | 0.0 ± 0.0 | - |" in compared


def test_metrics_of_no_vote_code_records():
    result, _ = score("humaneval", lambda p, i: "no code", k=1)
    metrics, stderr = benchmark_metrics(result.problems, 1, "code")
    assert set(stderr) == {"pass@1"}  # k=1: no pass@k; code: no cons@k
    assert metrics["answered_rate"] == 0.0
