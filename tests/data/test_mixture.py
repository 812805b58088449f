from __future__ import annotations

import json

import pytest

from r1.checks import ConfigError
from r1.data.datamodule import ReasoningDataModule
from r1.data.loaders import load_jsonl
from r1.data.mixture import SFTMixture, _shares
from r1.data.tasks import ArithmeticTask


def additions():
    return ArithmeticTask(digits=2, num_ops=1, ops=["+"])


def products():
    return ArithmeticTask(digits=2, num_ops=1, ops=["*"])


def test_shares_follow_the_ratios_and_add_up():
    assert _shares(40, {"a": 3, "b": 1}) == {"a": 30, "b": 10}
    assert _shares(10, {"a": 1, "b": 1, "c": 1}) == {"a": 4, "b": 3, "c": 3}
    assert sum(_shares(7, {"a": 0.5, "b": 2.5, "c": 1}).values()) == 7


def test_examples_are_counted_by_ratio_and_epochs():
    mixture = SFTMixture(
        {
            "sums": {"source": additions(), "ratio": 3, "epochs": 2},
            "products": {"source": products(), "ratio": 1, "epochs": 1},
        }
    )
    train, val = mixture.split(num_train=40, num_val=8, seed=0)
    sums = [p for p in train if "+" in p.question]
    assert len(sums) == 60 and len({p.question for p in sums}) == 30  # 30 problems, twice each
    assert len(train) - len(sums) == 10 and all("*" in p.question for p in train if p not in sums)
    assert sum("+" in p.question for p in val) == 6 and sum("*" in p.question for p in val) == 2
    assert not {p.question for p in train} & {p.question for p in val}
    assert mixture.counts["sums"] == {"distinct": 30, "examples": 60, "held_out": 6}


def test_non_reasoning_rows_are_trained_verbatim_without_a_chain_of_thought(tmp_path, tokenizer):
    rows = [{"question": f"Say hello {i} times.", "completion": f"Hello x{i}."} for i in range(20)]
    path = tmp_path / "general.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    general = lambda: load_jsonl(path, answer_field=None, task="general")  # noqa: E731
    mixture = SFTMixture(
        {
            "reasoning": {"source": additions(), "ratio": 1, "epochs": 1},
            "general": {"source": general, "ratio": 1, "epochs": 2, "held_out": False},
        }
    )
    data = ReasoningDataModule(mixture, {"system": None}, tokenizer, num_train=10, num_val=4)
    data.setup()
    assert len(data.train_problems) == 5 + 10 and len(data.val_problems) == 4
    assert all(p.task != "general" for p in data.val_problems)  # no gold answer to score
    answered = [p for p in data.train_problems if p.task == "general"]
    assert data.target(answered[0]) == answered[0].meta["completion"]
    assert "<think>" not in data.target(answered[0])
    reasoning = next(p for p in data.train_problems if p.task != "general")
    assert data.target(reasoning).startswith("<think>")
    opened = ReasoningDataModule(
        mixture, {"system": None, "response_prefix": "<think>"}, tokenizer, 10, 4
    )
    with pytest.raises(ConfigError, match="response_prefix='<think>'.*'Hello x"):
        opened.target(answered[0])


@pytest.mark.parametrize(
    "parts,message",
    [
        ({}, "at least one part"),
        ({"a": {"source": None, "ratio": 0}}, r"parts.a.ratio must be > 0, got 0"),
        ({"a": {"source": None, "epochs": 0}}, r"parts.a.epochs must be an integer >= 1, got 0"),
        ({"a": {"source": None, "held_out": False}}, "no part .* held_out: true"),
    ],
)
def test_bad_mixtures_are_named(parts, message):
    with pytest.raises(ConfigError, match=message):
        SFTMixture(parts)


def test_a_part_too_small_for_its_ratio_is_named(tmp_path):
    path = tmp_path / "few.jsonl"
    path.write_text(
        "".join(json.dumps({"question": f"q{i}", "answer": "1"}) + "\n" for i in range(5))
    )
    mixture = SFTMixture(
        {
            "sums": {"source": additions()},
            "few": {"source": lambda: load_jsonl(path), "held_out": False},
        }
    )
    with pytest.raises(ConfigError, match="parts.few has 4 training problems .* asks for 10"):
        mixture.split(num_train=20, num_val=2, seed=0)


def test_the_shipped_mixture_mixes_worked_solutions_with_direct_answers(tmp_path, tokenizer):
    from compose import compose_config
    from hydra.utils import instantiate

    cfg = compose_config(
        ["stage=sft", "data=sft_mixture", "data.num_train=40", "data.num_val=6"], tmp_path
    )
    data = instantiate(cfg.data, tokenizer=tokenizer)
    data.setup()
    general = [p for p in data.train_problems if p.task == "general"]
    assert len(data.train_problems) == 2 * 30 + 2 * 10  # ratio 3:1, two epochs each
    assert len(general) == 20 and len({id(p) for p in general}) == 10
    assert len(data.val_problems) == 6 and all(p.task == "arithmetic" for p in data.val_problems)
    answer = data.target(general[0])
    assert answer == general[0].meta["completion"] and "<think>" not in answer and answer.strip()
    reasoning = next(p for p in data.train_problems if p.task == "arithmetic")
    assert data.target(reasoning).startswith("<think>\n")
    assert len(data.sft_examples(data.train_problems)) == 80


def test_a_task_whose_questions_are_all_held_out_is_refused():
    from r1.data.datamodule import split_problems
    from r1.data.preferences import GeneralAnswerTask, general_requests

    everything = len(general_requests("en")) * 20  # draws that surely cover every question
    with pytest.raises(ConfigError, match="take every question the task can pose"):
        split_problems(GeneralAnswerTask("en"), num_train=5, num_val=everything, seed=0)
