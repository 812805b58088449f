from __future__ import annotations

import pytest

from r1.data import Problem, ReasoningDataModule
from r1.data.datamodule import split_problems
from r1.data.sft import IGNORE_INDEX
from r1.data.tasks import ArithmeticTask


def test_procedural_split_is_deterministic_and_disjoint():
    task = ArithmeticTask(digits=1, num_ops=1, ops=("+",))  # only 81 distinct questions
    train, val = split_problems(task, num_train=200, num_val=20, seed=0)
    again_train, again_val = split_problems(task, num_train=200, num_val=20, seed=0)
    assert train == again_train and val == again_val
    assert len(train) == 200 and len(val) == 20
    assert not {p.question for p in train} & {p.question for p in val}
    # The held-out set does not depend on the run seed; training data does.
    other_train, other_val = split_problems(task, num_train=200, num_val=20, seed=1)
    assert other_val == val and other_train != train


def test_list_source_split():
    problems = [Problem(question=f"q{i}", answer=str(i)) for i in range(50)]
    train, val = split_problems(lambda: problems, num_train=100, num_val=10, seed=0)
    assert len(val) == 10 and len(train) == 40
    assert {p.question for p in train} | {p.question for p in val} == {p.question for p in problems}
    with pytest.raises(ValueError, match="50 problems.*num_val=60"):
        split_problems(lambda: problems, num_train=1, num_val=60, seed=0)


def test_batches(tokenizer):
    dm = ReasoningDataModule(
        ArithmeticTask(),
        tokenizer=tokenizer,
        num_train=8,
        num_val=4,
        batch_size=4,
        val_batch_size=4,
    )
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["input_ids"].shape == batch["labels"].shape
    assert (batch["labels"] != IGNORE_INDEX).any(dim=1).all()
    val = next(iter(dm.val_dataloader()))
    assert len(val["problems"]) == 4
    assert (val["prompt_ids"][:, -1] != tokenizer.pad_token_id).all()  # left-padded prompts
    assert val["prompt_mask"].sum(1).tolist() == [
        len(tokenizer(dm.prompt(p), add_special_tokens=False)["input_ids"]) for p in val["problems"]
    ]


def test_sft_needs_solutions(tokenizer):
    dm = ReasoningDataModule(
        lambda: [Problem(f"q{i}", "1") for i in range(5)],
        tokenizer=tokenizer,
        num_train=2,
        num_val=2,
    )
    dm.setup("fit")
    with pytest.raises(ValueError, match="has neither.*solution_field"):
        dm.train_dataloader()


def test_examples_over_max_length_are_dropped_or_refused(tokenizer):
    dm = ReasoningDataModule(
        ArithmeticTask(), tokenizer=tokenizer, num_train=4, num_val=2, max_length=10
    )
    dm.setup("fit")
    with pytest.raises(ValueError, match="max_length=10"):
        dm.train_dataloader()


def test_sampled_completions_are_trained_on_verbatim(tokenizer):
    """Rejection-sampled / distillation rows carry the sampled text in meta["completion"]:
    SFT's target is that text exactly (no template re-wrapping), labels only on it."""
    trace = "<think>\nfive plus two is seven\n</think>\n<answer>7</answer>"
    rows = [Problem(f"What is 5 + {i}?", "7", meta={"completion": trace}) for i in range(6)]
    dm = ReasoningDataModule(lambda: rows, tokenizer=tokenizer, num_train=4, num_val=2)
    dm.setup("fit")
    assert dm.target(rows[0]) == trace
    batch = next(iter(dm.train_dataloader()))
    labels = batch["labels"][0]
    target = tokenizer.decode(labels[labels != IGNORE_INDEX])
    assert target.startswith(trace)


def test_sampled_completions_lose_the_tag_a_prefixed_prompt_already_holds(tokenizer):
    trace = "<think>\nfive plus two is seven\n</think>\n<answer>7</answer>"
    rows = [Problem(f"What is 5 + {i}?", "7", meta={"completion": trace}) for i in range(6)]
    template = {"kind": "chat", "system": None, "response_prefix": "<think>"}
    dm = ReasoningDataModule(lambda: rows, tokenizer=tokenizer, template=template)
    assert dm.prompt(rows[0]).endswith("<think>")
    assert dm.target(rows[0]) == trace[len("<think>") :]


def test_mixture_keeps_each_problems_task_and_draws_by_weight():
    from r1.data.tasks import GeneralTask, MixtureTask

    mixture = MixtureTask(
        {"arithmetic": ArithmeticTask(), "general": GeneralTask(language="mixed")},
        weights={"arithmetic": 3.0, "general": 1.0},
    )
    problems = mixture.generate(400, seed=0)
    assert problems == mixture.generate(400, seed=0)
    general = [p for p in problems if p.task == "general"]
    assert 70 < len(general) < 130  # about a quarter
    assert all(p.answer == "" and p.meta["language"] in ("en", "zh") for p in general)
    assert {p.task for p in problems} == {"arithmetic", "general"}
    with pytest.raises(ValueError, match="unknown sources"):
        MixtureTask({"a": ArithmeticTask()}, weights={"b": 1.0})
