"""Multi-stage recipes (the DeepSeek-R1 pipeline) as a sequence of ordinary runs.

Each stage is one `scripts/train.py` or `scripts/sample.py` run in its own directory under the
pipeline's directory, started from an earlier stage's checkpoint (or the base model) and, for
SFT on sampled data, an earlier sampling stage's `sft.jsonl`. Stages run as child processes,
one after another, so each is exactly what a user would get running it by hand (its own
`.hydra/`, logs, checkpoint and summary). A stage whose outputs exist is not run again; an
interrupted training stage continues from its last checkpoint (`resume=auto`). After each
training stage the same held-out evaluation (`scripts/evaluate.py` with the pipeline's
`evaluation` overrides) is run, and the end prints one table of it across stages.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from r1.checks import ConfigError

ROOT = Path(__file__).resolve().parents[1]
# script -> (the file a finished run leaves, the data it writes for a later stage's `data_from`)
SCRIPTS = {
    "train": ("summary.json", None),
    "sample": ("rejection.json", ["data=jsonl", "data.source.path={dir}/sft.jsonl"]),
    "search_traces": ("search.json", ["data=jsonl", "data.source.path={dir}/sft.jsonl"]),
    "label_steps": ("labels.json", ["data=steps", "data.path={dir}/steps.jsonl"]),
    "evaluate": ("eval.json", None),  # a row of the table itself (e.g. a search at test time)
}
# Columns of the final table: (eval.json metric, header)
COLUMNS = (
    ("pass@1", "pass@1"),
    ("cons@k", "cons@k"),
    ("selected", "chosen answer right"),
    ("tokens_per_problem", "tokens/problem"),
    ("format_rate", "format"),
    ("lang_consistency", "language consistency"),
    ("completion_len_mean", "mean length"),
    ("seconds", "wall s"),
)


@dataclass(frozen=True)
class Stage:
    """One run of the pipeline.

    name: its directory under the pipeline's; label: its row in the table (e.g. the paper's
    "Dev1"); script: train | sample | search_traces | label_steps | evaluate (a row of the
    table with its own overrides, e.g. search=mcts); overrides: its command-line
    overrides; model_from: the stage whose checkpoint it starts from (None: the base model in
    `overrides`); data_from: a data-writing stage whose output is its training data (sample and
    search_traces: sft.jsonl; label_steps: steps.jsonl for stage=prm); evaluate: a training
    stage is evaluated on the held-out problems afterwards (false for a stage that trains no
    policy, e.g. stage=prm)."""

    name: str
    script: str = "train"
    label: str = ""
    overrides: Sequence[str] = field(default_factory=list)
    model_from: str | None = None
    data_from: str | None = None
    evaluate: bool = True


def stages_from_config(spec: Mapping[str, Mapping[str, Any]]) -> list[Stage]:
    stages: list[Stage] = []
    for name, settings in spec.items():
        if settings is None:  # `stages.<name>: null` drops a stage of an included pipeline
            continue
        settings = dict(settings)
        unknown = set(settings) - {
            "script",
            "label",
            "overrides",
            "model_from",
            "data_from",
            "evaluate",
        }
        if unknown:
            raise ConfigError(f"pipeline stage {name!r}: unknown setting(s) {sorted(unknown)}")
        stage = Stage(name=name, **{**settings, "overrides": list(settings.get("overrides") or [])})
        if stage.script not in SCRIPTS:
            raise ConfigError(
                f"pipeline stage {name!r}: script={stage.script!r}; valid: {', '.join(SCRIPTS)}"
            )
        earlier = {s.name: s for s in stages}
        for key in ("model_from", "data_from"):
            source = getattr(stage, key)
            if source is not None and source not in earlier:
                raise ConfigError(
                    f"pipeline stage {name!r}: {key}={source!r} is not an earlier stage "
                    f"({', '.join(earlier) or 'none'})"
                )
        if stage.data_from is not None and SCRIPTS[earlier[stage.data_from].script][1] is None:
            raise ConfigError(
                f"pipeline stage {name!r}: data_from={stage.data_from!r} is not a stage that "
                "writes data (sample, search_traces, label_steps)"
            )
        if stage.model_from is not None and earlier[stage.model_from].script != "train":
            raise ConfigError(
                f"pipeline stage {name!r}: model_from={stage.model_from!r} is not a train stage"
            )
        stages.append(stage)
    if not stages:
        raise ConfigError("pipeline has no stages")
    return stages


def is_done(stage: Stage, directory: Path) -> bool:
    return (directory / SCRIPTS[stage.script][0]).is_file()


def command(
    stage: Stage,
    directory: Path,
    root: Path,
    shared: Sequence[str],
    train: Sequence[str] = (),
    data_script: str = "sample",
    evaluation: Sequence[str] = (),
) -> list[str]:
    """The stage's command line; `data_script`: the script of its `data_from` stage. Training
    stages get the `train` overrides, evaluate stages the pipeline's `evaluation` ones."""
    own = {"train": train, "evaluate": evaluation}.get(stage.script, ())
    args = [
        sys.executable,
        str(ROOT / "scripts" / f"{stage.script}.py"),
        *shared,
        *own,
        *stage.overrides,
    ]
    if stage.model_from is not None:
        args.append(f"model.path={root / stage.model_from / 'checkpoint'}")
    if stage.data_from is not None:
        data_args = SCRIPTS[data_script][1] or []
        args += [a.format(dir=root / stage.data_from) for a in data_args]
    if stage.script == "train":
        args.append("resume=auto")  # an interrupted stage continues in its own directory
    return [*args, f"hydra.run.dir={directory}"]


def run_pipeline(
    stages: Sequence[Stage],
    root: str | Path,
    shared: Sequence[str] = (),
    evaluation: Sequence[str] = (),
    train: Sequence[str] = (),
    runner=subprocess.run,
) -> list[dict[str, Any]]:
    """Run the stages not yet done, evaluate the base model and every training stage with the
    same `evaluation` overrides, write pipeline.json / pipeline.md and return the table rows.
    `shared`: overrides every script gets (model, seed, data settings); `train`: overrides
    every training stage gets (before its own). `runner`: subprocess.run's stand-in (tests)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rows = [_evaluate("base", "base model", shared, root, evaluation, runner)]
    for stage in stages:
        directory = root / stage.name
        if is_done(stage, directory):
            print(f"[pipeline] {stage.name}: done earlier ({directory}), not run again", flush=True)
        else:
            print(f"[pipeline] {stage.name}: running ({directory})", flush=True)
            scripts = {s.name: s.script for s in stages}
            data_script = scripts.get(stage.data_from, "sample")
            result = runner(command(stage, directory, root, shared, train, data_script, evaluation))
            if result.returncode != 0:
                raise SystemExit(
                    f"pipeline stage {stage.name!r} failed (exit {result.returncode}); its "
                    f"output is in {directory}. Rerun the same command to continue from there."
                )
        if stage.script == "evaluate":
            rows.append(_row(stage.name, stage.label or stage.name, directory / "eval.json"))
        if stage.script == "train" and stage.evaluate:
            checkpoint = [f"model.path={directory / 'checkpoint'}"]
            row = _evaluate(
                stage.name,
                stage.label or stage.name,
                [*shared, *checkpoint],
                root,
                evaluation,
                runner,
            )
            sources = [directory] + ([root / stage.data_from] if stage.data_from else [])
            row["seconds"] = sum(stage_seconds(s) for s in sources) or None
            rows.append(row)
    write_table(rows, root)
    return rows


def stage_seconds(directory: Path) -> float:
    """Wall time a finished stage recorded (summary.json, rejection.json, search.json,
    labels.json); 0 if it recorded none."""
    for name in ("summary.json", "rejection.json", "search.json", "labels.json"):
        path = directory / name
        if path.is_file():
            return float(json.loads(path.read_text()).get("seconds") or 0.0)
    return 0.0


def _evaluate(name, label, model_overrides, root: Path, evaluation, runner) -> dict[str, Any]:
    directory = root / f"eval_{name}"
    report = directory / "eval.json"
    if not report.is_file():
        args = [
            sys.executable,
            str(ROOT / "scripts" / "evaluate.py"),
            *model_overrides,
            *evaluation,
        ]
        result = runner([*args, f"hydra.run.dir={directory}"])
        if result.returncode != 0:
            raise SystemExit(
                f"evaluating {name!r} failed (exit {result.returncode}); see {directory}"
            )
    return _row(name, label, report)


def _row(name: str, label: str, report: Path) -> dict[str, Any]:
    """A table row from an eval.json. "selected": whether the one answer chosen per problem
    without the gold answer is right: a search's pick, or plain sampling's majority vote."""
    metrics = dict(json.loads(report.read_text())["metrics"])
    metrics["selected"] = metrics.get("accuracy", metrics.get("cons@k"))
    return {"stage": name, "label": label, **{key: metrics.get(key) for key, _ in COLUMNS}}


def render(rows: Sequence[dict[str, Any]]) -> str:
    header = "| stage | " + " | ".join(h for _, h in COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 1)]
    for row in rows:
        cells = []
        for key, _ in COLUMNS:
            value = row.get(key)
            cells.append(
                "-"
                if value is None
                else f"{value:.0f}"
                if key in ("seconds", "tokens_per_problem")
                else f"{value:.1f}"
                if key.startswith("completion_len")
                else f"{value:.3f}"
            )
        lines.append(f"| {row['label']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_table(rows: Sequence[dict[str, Any]], root: Path) -> None:
    (root / "pipeline.json").write_text(json.dumps(list(rows), indent=2))
    table = render(rows)
    (root / "pipeline.md").write_text(table + "\n")
    print("\nheld-out evaluation after each stage (same problems, same protocol):\n" + table)
