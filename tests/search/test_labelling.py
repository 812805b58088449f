"""Math-Shepherd step labelling with a scripted policy whose continuations are known, so every
label is computed by hand; and the row reader's errors."""

from __future__ import annotations

import json

import pytest

from r1.checks import ConfigError
from r1.data.loaders import DataError
from r1.data.problem import Problem
from r1.rollout.types import SamplingParams, build_rollout
from r1.search.labelling import (
    LabelSettings,
    StepRow,
    label_problems,
    read_step_rows,
    write_step_rows,
)

PROMPT = "Q: What is 12 + 88 - 69?\nA:"
PROBLEM = Problem("What is 12 + 88 - 69?", "31", task="arithmetic", meta={"language": "en"})
RIGHT = "<think>\n12 + 88 = 100\n100 - 69 = 31\n</think>\n<answer>31</answer>"
WRONG = "<think>\n12 + 88 = 90\n90 - 69 = 21\n</think>\n<answer>21</answer>"
END = "\n</think>\n<answer>"
# What the policy writes after each prompt + prefix: n = 2 continuations, (text, ended with EOS).
SCRIPT = {
    "": [(RIGHT, True), (WRONG, True)],  # the solutions
    # RIGHT's prefixes: 1 of 2 right, 2 of 2, then 1 of 2 (the right one has no EOS: wrong)
    "<think>\n12 + 88 = 100\n": [(f"100 - 69 = 31{END}31</answer>", True), ("100 - 69 = 21", True)],
    "<think>\n12 + 88 = 100\n100 - 69 = 31\n": [("</think>\n<answer>31</answer>", True)] * 2,
    "<think>\n12 + 88 = 100\n100 - 69 = 31\n</think>\n": [
        ("<answer>31</answer>", True),
        ("<answer>31</answer>", False),
    ],
    # WRONG's prefixes: 0 of 2, 0 of 2, then 1 of 2 (a recovery after two wrong steps)
    "<think>\n12 + 88 = 90\n": [(f"90 - 69 = 21{END}21</answer>", True)] * 2,
    "<think>\n12 + 88 = 90\n90 - 69 = 21\n": [("</think>\n<answer>21</answer>", True)] * 2,
    "<think>\n12 + 88 = 90\n90 - 69 = 21\n</think>\n": [
        ("<answer>21</answer>", True),
        ("<answer>31</answer>", True),
    ],
}
RIGHT_STEPS = ("12 + 88 = 100", "100 - 69 = 31", "</think>", "<answer>31</answer>")
WRONG_STEPS = ("12 + 88 = 90", "90 - 69 = 21", "</think>", "<answer>21</answer>")


class ScriptedPolicy:
    """A RolloutEngine that reads each prompt back as text and answers from `script` (keyed by
    the text after the prompt); records every generate call's prefixes and n."""

    def __init__(self, tokenizer, script=None, prompt=PROMPT):
        self.tokenizer, self.prompt = tokenizer, prompt
        self.script = dict(SCRIPT if script is None else script)
        self.calls: list[tuple[list[str], int]] = []

    def generate(self, prompt_ids, params, n):
        tok = self.tokenizer
        prefixes = []
        tokens, logprobs, finished = [], [], []
        for ids in prompt_ids:
            text = tok.decode(ids)
            assert text.startswith(self.prompt), text
            prefix = text[len(self.prompt) :]
            prefixes.append(prefix)
            assert prefix in self.script, f"unscripted prefix {prefix!r}"
            outputs = self.script[prefix]
            assert len(outputs) == n, (prefix, n)
            for out, ended in outputs:
                ids_out = tok(out, add_special_tokens=False)["input_ids"]
                ids_out = ids_out + [tok.eos_token_id] if ended else ids_out
                tokens.append(ids_out)
                logprobs.append([-0.5] * len(ids_out))
                finished.append("eos" if ended else "length")
        self.calls.append((prefixes, n))
        return build_rollout(tok, prompt_ids, tokens, logprobs, finished, n)


@pytest.fixture(scope="module")
def tok():
    from r1.models import load_tokenizer

    return load_tokenizer(name="tiny")


PARAMS = SamplingParams(max_new_tokens=32, temperature=1.0)


def run(tok, problems=(PROBLEM,), script=None, **settings):
    policy = ScriptedPolicy(tok, script)
    settings = {"solutions_per_problem": 2, "rollouts_per_step": 2, **settings}
    rows, report = label_problems(
        policy,
        tok,
        list(problems),
        [PROMPT] * len(problems),
        PARAMS,
        LabelSettings(**settings),
        progress=False,
    )
    return rows, report, policy


@pytest.mark.parametrize(
    ("mode", "right", "wrong"),
    [
        # last step = the outcome; steps 1-3 from 2 rollouts each (see SCRIPT)
        ("hard", (1.0, 1.0, 1.0, 1.0), (0.0, 0.0, 1.0, 0.0)),
        ("soft", (0.5, 1.0, 0.5, 1.0), (0.0, 0.0, 0.5, 0.0)),
    ],
)
def test_labels_by_hand(tok, mode, right, wrong):
    rows, report, policy = run(tok, mode=mode)
    assert [r.steps for r in rows] == [RIGHT_STEPS, WRONG_STEPS]
    assert [r.labels for r in rows] == [right, wrong]
    assert [r.outcome for r in rows] == [True, False]
    # one call for the solutions, one for all 6 step prefixes (the last steps need none)
    assert [len(prefixes) for prefixes, _ in policy.calls] == [1, 6]
    assert [n for _, n in policy.calls] == [2, 2]
    assert report.rollouts == 12 and report.prefixes_rolled_out == 6
    assert report.steps == 8 and report.steps_judged_directly == 2
    assert report.first_wrong_step == {"1": 1}
    assert report.share_correct == 0.5 and report.generate_calls == 2


def test_the_row_format(tok, tmp_path):
    rows, report, _ = run(tok)
    assert rows[0].to_dict() == {
        "question": "What is 12 + 88 - 69?",
        "answer": "31",
        "task": "arithmetic",
        "meta": {"language": "en"},
        "prompt": PROMPT,
        "completion": RIGHT,
        "steps": list(RIGHT_STEPS),
        "labels": [1.0, 1.0, 1.0, 1.0],
        "outcome": True,
        "rollouts_per_step": 2,
        "mode": "hard",
    }
    path = write_step_rows(rows, report, tmp_path)
    assert path == tmp_path / "steps.jsonl"
    assert read_step_rows(path) == rows
    stats = json.loads((tmp_path / "labels.json").read_text())
    # hard labels: 5 ones and 3 zeros over the 8 steps; mean 5/8
    assert stats["label_histogram"] == {"0.00": 3, "1.00": 5}
    assert stats["mean_label"] == 5 / 8 and stats["share_steps_one"] == 5 / 8
    assert stats["mean_label_correct"] == 1.0 and stats["mean_label_wrong"] == 0.25
    # tokens: solutions and rollouts as the scripted policy wrote them, EOS included
    assert stats["tokens_generated"] == stats["solution_tokens"] + stats["rollout_tokens"]
    eos = 1
    solution_tokens = sum(
        len(tok(t, add_special_tokens=False)["input_ids"]) + eos for t in (RIGHT, WRONG)
    )
    assert stats["solution_tokens"] == solution_tokens
    assert "first wrong step of wrong solutions: step 1: 1" in (tmp_path / "labels.md").read_text()


def test_problems_of_a_chunk_share_one_call(tok):
    problems = [PROBLEM] * 3
    _, _, together = run(tok, problems, batch_size=3)
    assert [len(p) for p, _ in together.calls] == [3, 18]
    _, _, apart = run(tok, problems, batch_size=2)
    assert [len(p) for p, _ in apart.calls] == [2, 12, 1, 6]


def test_identical_prefixes_of_a_problem_are_rolled_out_once(tok):
    script = {**SCRIPT, "": [(RIGHT, True), (RIGHT, True)]}
    rows, report, policy = run(tok, script=script, mode="soft")
    assert [r.labels for r in rows] == [(0.5, 1.0, 0.5, 1.0)] * 2
    assert len(policy.calls[1][0]) == 3
    assert report.prefixes_rolled_out == 3 and report.prefixes_shared == 3


def test_stop_after_first_zero_rolls_out_depth_by_depth(tok):
    rows, report, policy = run(tok, stop_after_first_zero=True)
    # WRONG's step 1 gets 0 of 2: its steps 2 and 3 are 0.0 unrolled (the recovery at step 3
    # is never seen); its last step keeps the outcome
    assert [r.labels for r in rows] == [(1.0, 1.0, 1.0, 1.0), (0.0, 0.0, 0.0, 0.0)]
    assert [len(p) for p, _ in policy.calls] == [1, 2, 1, 1]
    assert report.steps_zero_after_zero == 2 and report.rollouts == 8


def test_the_last_step_is_the_outcome_and_needs_no_rollout(tok):
    truncated = RIGHT  # the right answer, but no EOS: strictly wrong
    script = {**SCRIPT, "": [(truncated, False), (WRONG, True)]}
    rows, _, policy = run(tok, script=script)
    assert rows[0].outcome is False and rows[0].labels == (1.0, 1.0, 1.0, 0.0)
    rolled_out = [prefix for prefixes, _ in policy.calls[1:] for prefix in prefixes]
    assert len(rolled_out) == 6 and not any("<answer>" in prefix for prefix in rolled_out)


def test_a_prefix_holding_the_final_answer_is_judged_directly(tok):
    chatty = RIGHT + "\nI am sure."  # one more step after the answer block
    script = {**SCRIPT, "": [(chatty, True), (WRONG, True)]}
    rows, report, policy = run(tok, script=script, mode="soft")
    assert rows[0].steps == (*RIGHT_STEPS, "I am sure.")
    assert rows[0].labels == (0.5, 1.0, 0.5, 1.0, 1.0)
    assert report.steps_judged_directly == 3  # chatty's answer and last step, WRONG's last
    assert len(policy.calls[1][0]) == 6  # no rollout after "<answer>31</answer>"


def test_empty_and_overlong_solutions_are_skipped(tok):
    script = {**SCRIPT, "": [("  \n", True), (WRONG, True)]}
    rows, report, _ = run(tok, script=script)
    assert [r.steps for r in rows] == [WRONG_STEPS]
    assert report.skipped == {"no_steps": 1, "too_many_steps": 0}
    script = {**SCRIPT, "": [("<think>\n12 + 88 = 100\n", False), (WRONG, True)]}
    rows, report, policy = run(tok, script=script, max_steps=3)
    # one step, the last: the outcome (truncated, so 0.0) and no rollouts; WRONG has 4 steps
    assert [r.labels for r in rows] == [(0.0,)] and len(policy.calls) == 1
    assert report.skipped == {"no_steps": 0, "too_many_steps": 1}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"rollouts_per_step": 0}, "label.rollouts_per_step=0 must be >= 1"),
        ({"mode": "fuzzy"}, "label.mode='fuzzy' is not valid; choose one of: hard, soft"),
        ({"delimiter": ""}, "label.delimiter='' must be 'auto' or a non-empty string"),
        ({"answer_source": "tag"}, "label.answer_source='tag' is not valid"),
        ({"max_steps": 0}, "label.max_steps=0 must be >= 1"),
    ],
)
def test_bad_settings_name_the_value(settings, message):
    with pytest.raises(ConfigError) as error:
        LabelSettings(**settings)
    assert message in str(error.value)


GOOD_ROW = {
    "question": "What is 1 + 1?",
    "answer": "2",
    "task": "arithmetic",
    "meta": {},
    "prompt": "Q: What is 1 + 1?",
    "completion": "<think>\n1 + 1 = 2\n</think>\n<answer>2</answer>",
    "steps": ["1 + 1 = 2", "</think>", "<answer>2</answer>"],
    "labels": [1, 1, 1],
    "outcome": True,
    "rollouts_per_step": 4,
    "mode": "hard",
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"labels": [1, 1]}, "2 labels for 3 steps"),
        ({"labels": [1, 1.5, 1]}, "labels[1]=1.5 must be a number in [0, 1]"),
        ({"labels": [1, True, 1]}, "labels[1]=True must be a number in [0, 1]"),
        ({"labels": [1, 0.5, 1]}, "labels[1]=0.5 must be 0 or 1 in hard mode"),
        ({"steps": []}, "field 'steps' must be a non-empty list"),
        ({"steps": ["a", " ", "b"]}, "field 'steps[1]' is empty"),
        ({"mode": "medium"}, "field 'mode' is 'medium'; valid: hard, soft"),
        ({"outcome": 1}, "field 'outcome' must be true or false, got 1"),
        ({"rollouts_per_step": 0}, "field 'rollouts_per_step' must be an integer >= 1, got 0"),
        ({"prompt": None}, "field 'prompt' must be a string, got NoneType"),
        ({"question": None, "prompt": "p"}, "field 'question' must be a string"),
    ],
)
def test_a_bad_row_names_the_file_line_and_field(tmp_path, change, message):
    path = tmp_path / "steps.jsonl"
    bad = {**GOOD_ROW, **change}
    path.write_text(json.dumps(GOOD_ROW) + "\n\n" + json.dumps(bad) + "\n")
    with pytest.raises(DataError) as error:
        read_step_rows(path)
    assert str(error.value).startswith(f"{path} line 3: ") and message in str(error.value)


def test_reader_accepts_a_good_file_and_rejects_missing_fields_and_empty_files(tmp_path):
    path = tmp_path / "steps.jsonl"
    soft = {**GOOD_ROW, "mode": "soft", "labels": [0.25, 1, 1], "answer": 2, "extra": "ignored"}
    path.write_text(json.dumps(GOOD_ROW) + "\n" + json.dumps(soft) + "\n")
    rows = read_step_rows(path)
    assert rows[1] == StepRow(
        question="What is 1 + 1?",
        answer="2",
        prompt="Q: What is 1 + 1?",
        completion=GOOD_ROW["completion"],
        steps=("1 + 1 = 2", "</think>", "<answer>2</answer>"),
        labels=(0.25, 1.0, 1.0),
        outcome=True,
        rollouts_per_step=4,
        mode="soft",
        task="arithmetic",
    )
    assert rows[1].problem() == Problem("What is 1 + 1?", "2", task="arithmetic")
    missing = {k: v for k, v in GOOD_ROW.items() if k != "labels"}
    path.write_text(json.dumps(missing) + "\n")
    with pytest.raises(DataError, match=f"{path} line 1: field 'labels' is missing"):
        read_step_rows(path)
    path.write_text("[1, 2]\n")
    with pytest.raises(DataError, match=f"{path} line 1: expected a JSON object, got list"):
        read_step_rows(path)
    path.write_text("\n")
    with pytest.raises(DataError, match="contains no step-labelled rows"):
        read_step_rows(path)
    with pytest.raises(DataError, match="file not found"):
        read_step_rows(tmp_path / "nope.jsonl")
