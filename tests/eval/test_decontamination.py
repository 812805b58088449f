"""Decontamination on a training fixture with planted overlaps: copied benchmark questions
(re-cased, re-punctuated, inside a longer text) are found and removed; near misses are kept;
scripts/decontaminate.py writes the clean file and the report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from r1.data.problem import Problem
from r1.eval.decontamination import NgramIndex, benchmark_text, decontaminate, words

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).parent / "fixtures"

BENCH = {
    "math500": [
        Problem(
            "How many vertical asymptotes does the graph of $y=\\frac{2}{x^2+x-6}$ have?",
            "2",
            meta={"id": "m1"},
        ),
    ],
    "mmlu": [
        Problem(
            "Short one?",
            "Paris",
            task="choice",
            meta={"id": "q1", "options": ["Berlin", "Paris"], "answer_index": 1},
        ),
    ],
}
TRAIN = [
    # planted: the benchmark question, upper-cased, other spacing, inside a longer text
    "Warm-up. HOW MANY vertical   asymptotes does the graph of y = frac{2}{x^2+x-6} have? Show work.",
    # clean: shares only 9 consecutive words with it
    "How many vertical asymptotes does the graph of y = 3 have at all",
    # planted: the short multiple-choice item with its options, word for word
    "Short one? A) Berlin B) Paris",
    "Something else entirely, about trains and apples.",
]


def test_words_ignore_case_punctuation_and_latex():
    assert words("The \\frac{2}{x}, AND it!") == ["the", "frac", "2", "x", "and", "it"]


def test_planted_overlaps_are_found_and_near_misses_kept():
    index = NgramIndex.build(BENCH, n=10)
    kept, removed = decontaminate(TRAIN, index)
    assert kept == [1, 3]
    assert [(i, m.benchmark, m.problem_id) for i, m in removed] == [
        (0, "math500", "m1"),
        (2, "mmlu", "q1"),
    ]
    assert removed[0][1].ngram.startswith("how many vertical asymptotes")
    assert len(removed[0][1].ngram.split()) == 10
    assert removed[1][1].ngram == "short one a berlin b paris"  # shorter than n: all of it


def test_the_ngram_length_is_a_setting():
    kept, _ = decontaminate(TRAIN, NgramIndex.build(BENCH, n=9))
    assert 1 not in kept  # at 9 words the near miss overlaps too
    with pytest.raises(ValueError):
        NgramIndex.build(BENCH, n=0)


def test_benchmark_text_shows_the_options():
    assert benchmark_text(BENCH["mmlu"][0]) == "Short one?\n\nA) Berlin\nB) Paris"


def test_the_script_writes_the_clean_training_set(tmp_path):
    train = tmp_path / "train.jsonl"
    rows = [
        {
            "question": "Tom has 3 apples and buys 4 more. How many apples does he have?",
            "answer": "7",
        },
        {"question": "What is 2 + 2?", "answer": "4", "solution": "2 + 2 = 4"},
        # planted in the solution: MATH-500's second fixture problem, copied
        {
            "question": "Next:",
            "answer": "1",
            "solution": "We asked: Solve $x^2 = 9$ for $x > 0$. ok",
        },
    ]
    train.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "clean.jsonl"
    command = [
        sys.executable,
        "scripts/decontaminate.py",
        "--train",
        str(train),
        "--benchmarks",
        "gsm8k,math500",
        "--path",
        f"gsm8k={FIXTURES / 'gsm8k.jsonl'}",
        "--path",
        f"math500={FIXTURES / 'math500.jsonl'}",
        "--out",
        str(out),
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert [json.loads(line) for line in out.read_text().splitlines()] == [rows[1]]
    report = json.loads((tmp_path / "clean.report.json").read_text())
    assert report["rows"] == 3 and report["kept"] == 1 and report["ngram"] == 10
    assert [(r["row"], r["benchmark"]) for r in report["removed"]] == [(0, "gsm8k"), (2, "math500")]
    assert "2 of 3 training rows" in result.stdout

    unknown = subprocess.run(
        [*command[:4], "--benchmarks", "nope"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert unknown.returncode == 2 and "unknown preset 'nope'" in unknown.stderr
