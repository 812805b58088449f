"""Load problems from JSONL files and Hugging Face datasets; save them as JSONL."""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from r1.checks import ConfigError
from r1.data.problem import Problem
from r1.text import last_boxed

Row = TypeVar("Row")


class DataError(ConfigError):
    """A data file or dataset row that cannot be turned into a Problem."""


def _fields(row: Mapping[str, Any]) -> str:
    return ", ".join(row) or "none"


def _text_field(row: Mapping[str, Any], name: str, where: str, numbers_ok: bool = False) -> str:
    """``row[name]`` as a non-empty string; raises DataError prefixed with ``where``."""
    if name not in row:
        raise DataError(f"{where}: field {name!r} is missing; fields present: {_fields(row)}")
    value = row[name]
    if numbers_ok and isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise DataError(
            f"{where}: field {name!r} must be a string, got {type(value).__name__} {value!r:.80}"
        )
    if not value.strip():
        raise DataError(f"{where}: field {name!r} is empty")
    return value


def load_jsonl(
    path: str | os.PathLike[str],
    question_field: str = "question",
    answer_field: str | None = "answer",
    solution_field: str | None = "solution",
    task: str | None = None,
) -> list[Problem]:
    """Problems from a JSONL file with one JSON object per line.

    Files written by :func:`save_jsonl` load back unchanged: a ``task`` key is used
    when the ``task`` argument is None, and a ``meta`` object is merged into meta.
    Any other keys go to meta as well.
    """
    return read_jsonl(
        path,
        lambda line, where: _jsonl_row(
            line, where, question_field, answer_field, solution_field, task
        ),
    )


def json_object(line: str, where: str) -> dict[str, Any]:
    """One JSONL line as a dict, or a DataError naming `where`."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise DataError(f"{where}: not valid JSON ({e})") from None
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
    return row


def read_jsonl(
    path: str | os.PathLike[str],
    parse_row: Callable[[str, str], Row],
    what: str = "problems",
) -> list[Row]:
    """Rows (problems, by default) from the non-blank lines of a JSONL file; `parse_row(line,
    where)` gets each line and a "file line N" label for its error messages."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        lines = path.read_text(encoding="utf-8").split("\n")  # not splitlines: JSON may hold U+2028
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e})") from None
    problems = [
        parse_row(line, f"{path} line {line_no}")
        for line_no, line in enumerate(lines, start=1)
        if line.strip()
    ]
    if not problems:
        raise DataError(f"{path}: file contains no {what}")
    return problems


def _jsonl_row(
    line: str,
    where: str,
    question_field: str,
    answer_field: str | None,
    solution_field: str | None,
    task: str | None,
) -> Problem:
    row = json_object(line, where)
    question = _text_field(row, question_field, where)
    # answer_field=None: rows without a gold answer (general requests answered by `completion`)
    answer = "" if answer_field is None else _text_field(row, answer_field, where, True).strip()
    solution = ""
    if solution_field is not None and row.get(solution_field) is not None:
        solution = row[solution_field]
        if not isinstance(solution, str):
            raise DataError(
                f"{where}: field {solution_field!r} must be a string, got {type(solution).__name__}"
            )
    rest = {k: v for k, v in row.items() if k not in (question_field, answer_field, solution_field)}
    meta = rest.pop("meta", None) or {}
    if not isinstance(meta, dict):
        raise DataError(f"{where}: field 'meta' must be a JSON object, got {type(meta).__name__}")
    row_task = rest.pop("task", None)
    if task is None and isinstance(row_task, str):
        task = row_task
    elif row_task is not None:
        rest["task"] = row_task
    return Problem(question, answer, solution, task or "", {**meta, **rest})


def _parse_plain(text: str) -> tuple[str, str] | None:
    return text.strip(), ""


def _parse_gsm8k(text: str) -> tuple[str, str] | None:
    """``"...<<48/2=24>>24 ...\\n#### 1,024"`` -> ``("1024", "... 24 ...")``."""
    reasoning, sep, final = text.rpartition("####")
    answer = final.strip().replace(",", "")
    if not sep or not answer:
        return None
    return answer, re.sub(r"<<[^<>]*>>", "", reasoning).strip()


def _parse_boxed(text: str) -> tuple[str, str] | None:
    answer = last_boxed(text)
    if answer is None or not answer.strip():
        return None
    return answer.strip(), text


ANSWER_FORMATS: dict[str, Callable[[str], tuple[str, str] | None]] = {
    "plain": _parse_plain,
    "gsm8k": _parse_gsm8k,
    "boxed": _parse_boxed,
}

_FORMAT_HINTS = {
    "plain": "is empty",
    "gsm8k": "has no final '#### <answer>' line",
    "boxed": "has no complete \\boxed{...}",
}


def load_hf(
    name: str,
    split: str = "train",
    subset: str | None = None,
    question_field: str = "question",
    answer_field: str = "answer",
    answer_format: str = "plain",
    data_files: str | None = None,
    limit: int | None = None,
) -> list[Problem]:
    """Problems from ``datasets.load_dataset(name, subset, split=split, data_files=data_files)``.

    ``answer_format`` says how the gold answer and solution come out of the answer
    field: ``plain`` (the field is the answer), ``gsm8k`` (``... #### 42``) or
    ``boxed`` (MATH-style, the last ``\\boxed{...}``; the field is the solution).
    Fields other than the question and answer go to meta.
    """
    if answer_format not in ANSWER_FORMATS:
        raise ConfigError(
            f"unknown answer_format {answer_format!r}; valid: {', '.join(ANSWER_FORMATS)}"
        )
    import datasets  # heavy; only needed here

    rows = datasets.load_dataset(name, subset, split=split, data_files=data_files)
    if limit is not None:
        rows = rows.select(range(min(limit, len(rows))))
    parse = ANSWER_FORMATS[answer_format]
    source = f"dataset {name!r}" + (f" subset {subset!r}" if subset else "")
    problems = []
    for index, row in enumerate(rows):
        where = f"{source} split {split!r} row {index}"
        question = _text_field(row, question_field, where)
        answer_text = _text_field(row, answer_field, where, numbers_ok=True)
        parsed = parse(answer_text)
        if parsed is None:
            raise DataError(
                f"{where}: field {answer_field!r} {_FORMAT_HINTS[answer_format]} "
                f"(answer_format={answer_format!r}): {answer_text[-80:]!r}"
            )
        answer, solution = parsed
        meta = {k: v for k, v in row.items() if k not in (question_field, answer_field)}
        problems.append(Problem(question, answer, solution, name, meta))
    return problems


def save_jsonl(problems: Iterable[Problem], path: str | os.PathLike[str]) -> None:
    """Write one ``Problem.to_dict`` JSON object per line, atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for problem in problems:
                f.write(json.dumps(problem.to_dict(), ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
