import json
from pathlib import Path

import pytest

from r1.data.loaders import DataError, last_boxed, load_hf, load_jsonl, save_jsonl
from r1.data.problem import Problem

PROBLEMS = [
    Problem("What is 2 + 3?", "5", "2 + 3 = 5", "arithmetic", {"expression": "2 + 3"}),
    Problem(
        "Using the numbers [3, 4], create 12.",
        "3 * 4",
        "3 * 4 = 12",
        "countdown",
        {"numbers": [3, 4], "target": 12},
    ),
    Problem("Ünïcode → ∑?\u2028next\r\nline", "∞", "a\u2029b\x0cc"),
]


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_rows(path: Path, rows: list[dict]) -> Path:
    return write_lines(path, [json.dumps(row) for row in rows])


def test_save_load_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "problems.jsonl"
    save_jsonl(PROBLEMS, path)
    assert load_jsonl(path) == PROBLEMS
    assert sorted(p.name for p in path.parent.iterdir()) == ["problems.jsonl"]
    assert json.loads(path.read_text(encoding="utf-8").splitlines()[1])["meta"] == {
        "numbers": [3, 4],
        "target": 12,
    }


def test_save_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "problems.jsonl"
    save_jsonl(PROBLEMS[:1], path)
    before = path.read_text(encoding="utf-8")

    def crashing():
        yield PROBLEMS[1]
        raise RuntimeError("crash")

    with pytest.raises(RuntimeError, match="crash"):
        save_jsonl(crashing(), path)
    assert path.read_text(encoding="utf-8") == before
    assert [p.name for p in tmp_path.iterdir()] == ["problems.jsonl"]


def test_load_custom_fields_and_meta(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "rows.jsonl",
        [
            json.dumps({"problem": "1 + 1?", "final": 2, "level": 3}),
            "",
            "   ",
            json.dumps({"problem": "Half of 3?", "final": 1.5, "cot": "3 / 2 = 1.5"}),
        ],
    )
    problems = load_jsonl(path, "problem", "final", solution_field="cot", task="toy")
    assert problems == [
        Problem("1 + 1?", "2", "", "toy", {"level": 3}),
        Problem("Half of 3?", "1.5", "3 / 2 = 1.5", "toy", {}),
    ]


def test_solution_field_none_keeps_solution_in_meta(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "rows.jsonl", [{"question": "q", "answer": "a", "solution": "s"}])
    assert load_jsonl(path, solution_field=None) == [Problem("q", "a", "", "", {"solution": "s"})]


def test_task_argument_overrides_row_task(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "rows.jsonl", [{"question": "q", "answer": "a", "task": "old"}])
    assert load_jsonl(path)[0].task == "old"
    assert load_jsonl(path, task="new")[0] == Problem("q", "a", "", "new", {"task": "old"})


GOOD = json.dumps({"question": "q", "answer": "1"})


@pytest.mark.parametrize(
    ("lines", "line_no", "message"),
    [
        (
            [GOOD, json.dumps({"question": "q", "solution": "s"})],
            2,
            "field 'answer' is missing; fields present: question, solution",
        ),
        ([json.dumps({"answer": "1"})], 1, "field 'question' is missing; fields present: answer"),
        ([json.dumps({"question": "  ", "answer": "1"})], 1, "field 'question' is empty"),
        ([json.dumps({"question": "q", "answer": ""})], 1, "field 'answer' is empty"),
        (
            [json.dumps({"question": 5, "answer": "1"})],
            1,
            "field 'question' must be a string, got int",
        ),
        (
            [json.dumps({"question": "q", "answer": True})],
            1,
            "field 'answer' must be a string, got bool",
        ),
        (
            [json.dumps({"question": "q", "answer": None})],
            1,
            "field 'answer' must be a string, got NoneType",
        ),
        (
            [json.dumps({"question": "q", "answer": [1]})],
            1,
            "field 'answer' must be a string, got list",
        ),
        (
            [GOOD, GOOD, json.dumps({"question": "q", "answer": "1", "solution": 3})],
            3,
            "field 'solution' must be a string, got int",
        ),
        (
            [GOOD, json.dumps({"question": "q", "answer": "1", "meta": [1]})],
            2,
            "field 'meta' must be a JSON object",
        ),
        ([GOOD, '{"question": "q", "answer": '], 2, "not valid JSON"),
        ([GOOD, "", "", "{'question': 'q'}"], 4, "not valid JSON"),
        (["[1, 2]"], 1, "expected a JSON object, got list"),
        ([GOOD, '"just text"'], 2, "expected a JSON object, got str"),
    ],
)
def test_malformed_rows_name_file_line_and_field(
    tmp_path: Path, lines: list[str], line_no: int, message: str
) -> None:
    path = write_lines(tmp_path / "bad.jsonl", lines)
    with pytest.raises(DataError) as info:
        load_jsonl(path)
    assert str(info.value).startswith(f"{path} line {line_no}: {message}")


def test_missing_and_empty_files(tmp_path: Path) -> None:
    missing = tmp_path / "missing.jsonl"
    with pytest.raises(DataError, match="missing.jsonl: file not found"):
        load_jsonl(missing)
    for name, text in [("empty.jsonl", ""), ("blank.jsonl", "\n  \n\n")]:
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(DataError, match=f"{name}: file contains no problems"):
            load_jsonl(path)
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b"\xff\xfe{}\n")
    with pytest.raises(DataError, match="binary.jsonl: not UTF-8 text"):
        load_jsonl(binary)
    assert issubclass(DataError, ValueError)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"so \boxed{5}.", "5"),
        (r"\boxed{\frac{1}{2}}", r"\frac{1}{2}"),
        (r"\boxed{1} then \boxed{x^{2} + \sqrt{y_{1}}} done", r"x^{2} + \sqrt{y_{1}}"),
        (r"\boxed{}", ""),
        (r"\boxed{\frac{1}{2}", None),
        ("no box", None),
        (r"\boxed 5", None),
    ],
)
def test_last_boxed(text: str, expected: str | None) -> None:
    assert last_boxed(text) == expected


@pytest.fixture
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep the datasets cache of these tests inside tmp_path."""
    datasets = pytest.importorskip("datasets")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf_cache")
    return tmp_path


GSM8K_ROWS = [
    {
        "question": "Natalia sold clips to 48 friends in April, and half as many in May. "
        "How many clips did she sell altogether?",
        "answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n"
        "Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72",
    },
    {"question": "How many grams are in a kilogram?", "answer": "1 kg is 1,000 g.\n#### 1,000"},
    {"question": "What is 3 - 5?", "answer": "3 - 5 = <<3-5=-2>>-2\n####  -2 "},
]


def test_load_hf_gsm8k(hf_cache: Path) -> None:
    path = write_rows(hf_cache / "gsm8k.jsonl", GSM8K_ROWS)
    problems = load_hf("json", data_files=str(path), answer_format="gsm8k")
    assert problems == [
        Problem(
            GSM8K_ROWS[0]["question"],
            "72",
            "Natalia sold 48/2 = 24 clips in May.\n"
            "Natalia sold 48+24 = 72 clips altogether in April and May.",
            "json",
        ),
        Problem("How many grams are in a kilogram?", "1000", "1 kg is 1,000 g.", "json"),
        Problem("What is 3 - 5?", "-2", "3 - 5 = -2", "json"),
    ]
    assert load_hf("json", data_files=str(path), answer_format="gsm8k", limit=2) == problems[:2]


MATH_ROWS = [
    {
        "problem": "What is $1 \\div 2$?",
        "solution": "Dividing gives $\\boxed{\\frac{1}{2}}$.",
        "level": "Level 1",
    },
    {
        "problem": "Expand $(x+1)^2$.",
        "solution": "First $\\boxed{x}$ is wrong; it is $\\boxed{x^{2}+2x+1}$.",
        "level": "Level 2",
    },
]


def test_load_hf_boxed(hf_cache: Path) -> None:
    path = write_rows(hf_cache / "math.jsonl", MATH_ROWS)
    problems = load_hf(
        "json",
        data_files=str(path),
        question_field="problem",
        answer_field="solution",
        answer_format="boxed",
    )
    assert problems == [
        Problem(row["problem"], answer, row["solution"], "json", {"level": row["level"]})
        for row, answer in zip(MATH_ROWS, [r"\frac{1}{2}", "x^{2}+2x+1"], strict=True)
    ]


def test_load_hf_plain(hf_cache: Path) -> None:
    path = write_rows(hf_cache / "plain.jsonl", [{"question": "1 + 1?", "answer": " 2 "}])
    assert load_hf("json", data_files=str(path)) == [Problem("1 + 1?", "2", "", "json")]


@pytest.mark.parametrize(
    ("rows", "kwargs", "message"),
    [
        (
            [GSM8K_ROWS[0], {"question": "q", "answer": "no final line"}],
            {"answer_format": "gsm8k"},
            "dataset 'json' split 'train' row 1: field 'answer' has no final '#### <answer>' line",
        ),
        (
            [{"question": "q", "answer": "#### "}],
            {"answer_format": "gsm8k"},
            "dataset 'json' split 'train' row 0: field 'answer' has no final '#### <answer>' line",
        ),
        (
            [MATH_ROWS[0], MATH_ROWS[1], {"problem": "q", "solution": r"\boxed{\frac{1}{2}"}],
            {"answer_format": "boxed", "question_field": "problem", "answer_field": "solution"},
            "dataset 'json' split 'train' row 2: field 'solution' has no complete \\boxed{...}",
        ),
        (
            MATH_ROWS,
            {"answer_format": "boxed"},
            "dataset 'json' split 'train' row 0: field 'question' is missing; "
            "fields present: problem, solution, level",
        ),
    ],
)
def test_load_hf_bad_rows(hf_cache: Path, rows: list[dict], kwargs: dict, message: str) -> None:
    path = write_rows(hf_cache / "bad.jsonl", rows)
    with pytest.raises(DataError) as info:
        load_hf("json", data_files=str(path), **kwargs)
    assert str(info.value).startswith(message)


def test_load_hf_unknown_answer_format() -> None:
    with pytest.raises(
        ValueError, match="unknown answer_format 'latex'; valid: plain, gsm8k, boxed"
    ):
        load_hf("json", answer_format="latex")
