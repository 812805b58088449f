from __future__ import annotations

import pytest
import torch
from rollout_fixtures import generation

from r1.data import Problem
from r1.eval.heldout import generate_greedy, score_completion, summarize

PROBLEM = Problem(question="What is 2 + 3?", answer="5", task="arithmetic")
GOOD = "<think>\n2 + 3 = 5\n</think>\n<answer>5</answer>"


@pytest.mark.parametrize(
    "text,stopped,correct,lenient,strict_format",
    [
        (GOOD, True, True, True, True),
        (GOOD, False, False, True, False),  # ran out of tokens: not strict
        ("<answer>5</answer>", True, True, True, False),  # right, but no think block
        ("2 + 3 = 5", True, False, True, False),  # no tags: lenient only
        ("<think>x</think><answer>6</answer>", True, False, False, True),
        (
            "<think>2 + 3 = 5</think><answer>6</answer>",
            True,
            False,
            False,
            True,
        ),  # the last number is 6
    ],
)
def test_score_completion(text, stopped, correct, lenient, strict_format):
    score = score_completion(PROBLEM, generation(text, 10, stopped))
    assert (score.correct, score.correct_lenient, score.strict_format) == (
        correct,
        lenient,
        strict_format,
    )


def test_summarize_means():
    completions = [generation(GOOD, 10, True), generation("7", 30, False)]
    scores = [score_completion(PROBLEM, c) for c in completions]
    assert summarize(scores, completions) == {
        "accuracy": 0.5,
        "accuracy_lenient": 0.5,
        "format_rate": 0.5,
        "stop_rate": 0.5,
        "completion_len": 20.0,
        "grader_errors": 0.0,
    }


def test_generate_greedy_stops_at_eos_and_matches_unbatched(tiny):
    model, tokenizer = tiny
    prompts = ["What is 2 + 3?", "Hi"]
    ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    width = max(map(len, ids))
    prompt_ids = torch.tensor([[tokenizer.pad_token_id] * (width - len(i)) + i for i in ids])
    prompt_mask = torch.tensor([[0] * (width - len(i)) + [1] * len(i) for i in ids])
    batched = generate_greedy(model, tokenizer, prompt_ids, prompt_mask, max_new_tokens=8)
    alone = generate_greedy(
        model, tokenizer, torch.tensor([ids[1]]), torch.ones(1, len(ids[1]), dtype=torch.long), 8
    )
    # left padding does not change what is generated (log-probs may differ in the last bit)
    same = (batched[1].text, batched[1].token_ids, batched[1].end)
    assert same == (alone[0].text, alone[0].token_ids, alone[0].end)
    assert all(c.num_tokens <= 8 for c in batched)
    for mode in (True, False):  # the caller's train/eval mode is restored
        model.train(mode)
        generate_greedy(model, tokenizer, prompt_ids, prompt_mask, max_new_tokens=2)
        assert model.training is mode
