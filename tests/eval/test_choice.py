"""Multiple choice: the per-sample option order and reading the chosen letter back."""

from __future__ import annotations

import pytest

from r1.eval.choice import choices_text, extract_choice, option_order

OPTIONS = ["Berlin", "Paris", "Madrid", "Rome"]


def test_option_order_is_a_recorded_pure_function_of_seed_problem_and_sample():
    order = option_order(0, "geography/0", 3, 4)
    assert sorted(order) == [0, 1, 2, 3]
    assert option_order(0, "geography/0", 3, 4) == order  # same arguments, same order
    orders = {
        option_order(seed, "geography/0", sample, 4) for seed in (0, 1) for sample in range(8)
    }
    assert len(orders) > 4  # samples and seeds do reorder the options


def test_choices_text_lists_the_options_with_letters_in_the_given_order():
    assert choices_text("Capital of France?", ["Rome", "Paris"]) == (
        "Capital of France?\n\nA) Rome\nB) Paris"
    )


@pytest.mark.parametrize(
    "reply, chosen",
    [
        ("Paris is the capital.\nAnswer: B", 1),
        ("Answer: (B)", 1),
        ("The answer is **B**.", 1),
        ("Final answer: B) Paris", 1),
        ("so the capital is \\boxed{B}", 1),
        ("so \\boxed{\\text{B}}", 1),
        ("<think>Rome? no.</think><answer>B</answer>", 1),
        ("<think>it is not A</think><answer>(B)</answer>", 1),
        ("Answer: Paris", 1),  # the option's text instead of its letter
        ("\\boxed{Paris}", 1),
        ("<answer>Madrid</answer>", 2),
        ("I considered (A) and (C), but it must be (D).", 3),
        ("Let me think.\nD", 3),
        # the last "Answer:" counts: a model that corrects itself
        ("Answer: A\nWait, that is wrong. Answer: B", 1),
    ],
)
def test_letters_are_read_from_the_usual_forms(reply, chosen):
    assert extract_choice(reply, OPTIONS) == chosen


@pytest.mark.parametrize(
    "reply",
    [
        "",
        "I do not know.",
        "Answer: E",  # no fifth option
        "Answer: Lisbon",  # not an option
        "<answer></answer>",
        "A and B are both plausible cities",  # a letter inside prose is no answer
        "\\boxed{",  # malformed
    ],
)
def test_replies_that_name_no_option_are_unanswered(reply):
    assert extract_choice(reply, OPTIONS) is None
