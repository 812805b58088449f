from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from r1.data.code_task import FAMILIES, CodeTask, load_code_jsonl
from r1.data.loaders import DataError
from r1.data.problem import Problem
from r1.data.templates import PromptTemplate
from r1.rewards.code import code_exec_batch
from r1.rewards.types import RewardSample


def samples(problems: list[Problem], completions: list[str]) -> list[RewardSample]:
    return [
        RewardSample(completion=c, gold=p.answer, task=p.task, meta=p.meta)
        for p, c in zip(problems, completions, strict=True)
    ]


def test_generate_is_deterministic() -> None:
    task = CodeTask()
    assert task.generate(20, seed=3) == task.generate(20, seed=3)
    assert task.generate(20, seed=3) != task.generate(20, seed=4)
    rng = random.Random(5)
    assert task.sample(rng) == CodeTask().sample(random.Random(5))


def test_problem_shape() -> None:
    problems = CodeTask(num_tests=4).generate(40, seed=0)
    assert {p.meta["family"] for p in problems} == set(FAMILIES)
    for p in problems:
        assert p.question.startswith("Write a Python function `f(x)` that ")
        assert p.answer.startswith("def f(x):\n")
        assert p.task == "code" and p.solution
        assert p.meta["entry_point"] == "f"
        tests = p.meta["tests"]
        assert len(tests) == 4 and all(set(t) == {"assert"} for t in tests)
        json.dumps(p.to_dict())  # JSON-serialisable
    assert CodeTask(families=["affine"]).generate(5, seed=0)[0].meta["family"] == "affine"


@pytest.mark.parametrize("kwargs", [{"families": []}, {"families": ["nope"]}, {"num_tests": 0}])
def test_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        CodeTask(**kwargs)


def check_reference_answers(n: int, n_wrong: int, seed: int) -> None:
    problems = CodeTask().generate(n, seed)
    assert {p.meta["family"] for p in problems[:n_wrong]} == set(FAMILIES)
    template = PromptTemplate(kind="plain")
    # The cold-start SFT target: <think> solution </think><answer> reference code </answer>.
    right = [template.completion_for(p.solution, p.answer) for p in problems]
    assert code_exec_batch(samples(problems, right)) == [1.0] * n
    wrong = ["<answer>def f(x):\n    return None</answer>"] * n_wrong
    assert code_exec_batch(samples(problems[:n_wrong], wrong)) == [0.0] * n_wrong


def test_reference_answers_pass_their_tests_and_wrong_ones_do_not() -> None:
    check_reference_answers(10, 5, seed=2)  # 75 sandboxed runs


@pytest.mark.slow
def test_reference_answers_pass_their_tests_many() -> None:
    check_reference_answers(100, 100, seed=0)


def write_rows(path: Path, rows: list[object]) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def test_load_code_jsonl(tmp_path: Path) -> None:
    rows = [
        {
            "question": "Add two numbers from stdin.",
            "tests": [{"input": "1 2\n", "output": "3\n"}],
            "solution": "Split and add.",
            "answer": "print(sum(map(int, input().split())))",
            "difficulty": "easy",
        },
        {
            "question": "Double x.",
            "tests": [{"assert": "assert f(2) == 4"}],
            "meta": {"source": "x"},
        },
    ]
    path = write_rows(tmp_path / "code.jsonl", [rows[0], "", rows[1]])
    first, second = load_code_jsonl(path)
    assert first == Problem(
        "Add two numbers from stdin.",
        "print(sum(map(int, input().split())))",
        "Split and add.",
        "code",
        {"difficulty": "easy", "tests": [{"input": "1 2\n", "output": "3\n"}]},
    )
    assert (second.answer, second.solution, second.task) == ("", "", "code")
    assert second.meta == {"source": "x", "tests": [{"assert": "assert f(2) == 4"}]}


GOOD = {"question": "q", "tests": [{"assert": "assert True"}]}


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("{not json", "not valid JSON"),
        ([1, 2], "expected a JSON object"),
        ({"tests": GOOD["tests"]}, "field 'question' is missing"),
        ({"question": "q"}, "field 'tests' is missing"),
        ({"question": "q", "tests": []}, "field 'tests' must be a non-empty list"),
        ({"question": "q", "tests": {"input": "1"}}, "field 'tests' must be a non-empty list"),
        ({"question": "q", "tests": ["assert True"]}, "item 0 must be an object"),
        ({"question": "q", "tests": [{"input": "1"}]}, "item 0 field 'output' must be a string"),
        ({"question": "q", "tests": [{"input": 1, "output": "1"}]}, "item 0 field 'input'"),
        ({"question": "q", "tests": [{"expected": "1"}]}, "item 0 needs either"),
        (
            {"question": "q", "tests": [{"assert": "assert 1", "input": "", "output": ""}]},
            "item 0 needs either",
        ),
        ({"question": "q", "tests": [{"assert": " "}]}, "item 0 field 'assert' is empty"),
        ({**GOOD, "answer": 3}, "field 'answer' must be a string"),
        ({**GOOD, "meta": [1]}, "field 'meta' must be a JSON object"),
    ],
)
def test_load_code_jsonl_bad_rows(tmp_path: Path, row: object, message: str) -> None:
    path = write_rows(tmp_path / "bad.jsonl", [GOOD, row])
    with pytest.raises(DataError, match=message) as info:
        load_code_jsonl(path)
    assert f"{path} line 2" in str(info.value)


def test_load_code_jsonl_bad_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        load_code_jsonl(tmp_path / "missing.jsonl")
    with pytest.raises(DataError, match="no problems"):
        load_code_jsonl(write_rows(tmp_path / "empty.jsonl", [""]))
    (tmp_path / "latin1.jsonl").write_bytes(b'{"question": "\xe9"}\n')
    with pytest.raises(DataError, match="not UTF-8"):
        load_code_jsonl(tmp_path / "latin1.jsonl")
