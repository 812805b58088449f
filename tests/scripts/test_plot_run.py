"""`scripts/plot_run.py`: the training panels and the behaviour curves from a metrics.csv."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib
import script_modules

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def load_script():
    return script_modules.load_script("plot_run")


plot_run = load_script()


def write_run(run: Path) -> None:
    """A metrics.csv as an RL run writes it: train rows each step, a val row at steps 0, 3."""
    columns = [
        "epoch", "step", "perf/step_s", "train/reward", "train/completion_len",
        "train/stop_rate", "train/reflection_rate/wait", "train/reflection_rate/check",
        "train/completion_len_correct", "train/completion_len_incorrect",
        "train/completion_len_level_1", "train/repetition_rate", "train/language_mixing_rate",
        "val/accuracy", "val/completion_len_correct",
    ]  # fmt: skip
    rows = []
    for step in range(4):
        rows.append(
            {
                "epoch": 0,
                "step": step,
                "perf/step_s": 30.0,
                "train/reward": step / 4,
                "train/completion_len": 50 + step,
                "train/stop_rate": 1.0,
                "train/reflection_rate/wait": step / 10,
                "train/reflection_rate/check": 0.0,  # never occurs: not drawn
                "train/completion_len_correct": 40 + step,
                "train/completion_len_incorrect": 60 + step,
                "train/completion_len_level_1": 45.0,
                "train/repetition_rate": 0.1,
                "train/language_mixing_rate": 0.0,
            }
        )
        if step in (0, 3):
            rows.append({"epoch": 0, "step": step, "val/accuracy": step / 6,
                         "val/completion_len_correct": 30.0})  # fmt: skip
    (run / "logs").mkdir(parents=True)
    with open(run / "logs" / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def test_series_are_against_minutes_of_training(tmp_path):
    write_run(tmp_path / "run")
    series, minutes = plot_run.read_series(tmp_path / "run")
    assert minutes
    assert series["train/reward"] == [(0.0, 0.0), (0.5, 0.25), (1.0, 0.5), (1.5, 0.75)]
    assert series["val/accuracy"] == [(0.0, 0.0), (1.5, 0.5)]


def test_the_behaviour_panels_draw_the_words_that_occur(tmp_path):
    write_run(tmp_path / "run")
    series, _ = plot_run.read_series(tmp_path / "run")
    words, lengths, levels, rates = (
        plot_run.matching(series, patterns, behaviour=True)
        for patterns, _, _ in plot_run.BEHAVIOUR_PANELS
    )
    assert words == ["train/reflection_rate/wait"]  # "check" never occurs
    assert lengths == [
        "train/completion_len_correct",
        "train/completion_len_incorrect",
        "val/completion_len_correct",
    ]
    assert levels == ["train/completion_len_level_1"]
    assert rates == ["train/repetition_rate", "train/language_mixing_rate"]
    for behaviour in (False, True):
        out = tmp_path / f"plot_{behaviour}.png"
        plot_run.plot([tmp_path / "run"], ["run"], out, "t", behaviour=behaviour)
        assert out.read_bytes().startswith(PNG_SIGNATURE)
