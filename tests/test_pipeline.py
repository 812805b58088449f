"""The multi-stage pipeline: stage wiring, commands, skipping finished stages, the table
(with a stand-in for subprocess.run); and the real experiment=r1_pipeline on the tiny model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from r1.checks import ConfigError
from r1.pipeline import run_pipeline, stages_from_config

ROOT = Path(__file__).resolve().parents[1]
SPEC = {
    "sft": {"label": "Dev1", "overrides": ["stage=sft"]},
    "rl": {"label": "Dev2", "model_from": "sft", "overrides": ["stage=grpo"]},
    "sample": {"script": "sample", "model_from": "rl", "overrides": ["sample.k=2"]},
    "sft2": {"label": "Dev3", "data_from": "sample", "overrides": ["stage=sft"]},
}


class FakeRunner:
    """Records commands and writes what each script would leave behind."""

    def __init__(self, fail: str | None = None):
        self.commands: list[list[str]] = []
        self.fail = fail

    def __call__(self, command):
        self.commands.append(command)
        directory = Path(command[-1].removeprefix("hydra.run.dir="))
        if self.fail and directory.name == self.fail:
            return SimpleNamespace(returncode=3)
        directory.mkdir(parents=True, exist_ok=True)
        script = Path(command[1]).stem
        if script == "train":
            (directory / "summary.json").write_text('{"seconds": 100.0}')
        elif script == "sample":
            (directory / "rejection.json").write_text('{"seconds": 20.0}')
        elif script == "label_steps":
            (directory / "labels.json").write_text('{"seconds": 30.0}')
        else:
            score = 0.1 * len(self.commands)
            metrics = {"pass@1": score, "format_rate": 1.0, "completion_len_mean": 40.0}
            (directory / "eval.json").write_text(json.dumps({"metrics": metrics}))
        return SimpleNamespace(returncode=0)


def test_stages_are_wired_and_finished_ones_are_not_run_again(tmp_path):
    stages = stages_from_config(SPEC)
    runner = FakeRunner()
    rows = run_pipeline(
        stages, tmp_path, shared=["model=tiny"], evaluation=["eval.k=2"], runner=runner
    )
    scripts = [Path(c[1]).stem for c in runner.commands]
    assert scripts == [
        "evaluate",
        "train",
        "evaluate",
        "train",
        "evaluate",
        "sample",
        "train",
        "evaluate",
    ]
    rl = runner.commands[3]
    assert rl[2:4] == ["model=tiny", "stage=grpo"]
    assert f"model.path={tmp_path / 'sft' / 'checkpoint'}" in rl and "resume=auto" in rl
    assert rl[-1] == f"hydra.run.dir={tmp_path / 'rl'}"
    sample = runner.commands[5]
    assert f"model.path={tmp_path / 'rl' / 'checkpoint'}" in sample and "resume=auto" not in sample
    sft2 = runner.commands[6]
    assert "data=jsonl" in sft2 and f"data.source.path={tmp_path / 'sample' / 'sft.jsonl'}" in sft2
    assert not any(a.startswith("model.path=") for a in sft2)  # from the base model
    evaluation = runner.commands[2]
    assert (
        "eval.k=2" in evaluation and f"model.path={tmp_path / 'sft' / 'checkpoint'}" in evaluation
    )
    assert [r["label"] for r in rows] == ["base model", "Dev1", "Dev2", "Dev3"]
    table = (tmp_path / "pipeline.md").read_text()
    assert (
        "| Dev2 | 0.500 | - | - | - | 1.000 | - | 40.0 | 100 |" in table
    )  # the 5th command scored it
    assert "| Dev3 | 0.800 | - | - | - | 1.000 | - | 40.0 | 120 |" in table  # SFT + its sampling
    # The same command again: everything is done, nothing runs.
    again = FakeRunner()
    assert run_pipeline(stages, tmp_path, runner=again) == rows and again.commands == []


def test_a_prm_is_trained_on_labelled_steps_and_not_evaluated_as_a_policy(tmp_path):
    spec = {
        "sft": {"overrides": ["stage=sft"]},
        "label": {"script": "label_steps", "model_from": "sft"},
        "prm": {
            "data_from": "label",
            "model_from": "sft",
            "evaluate": False,
            "overrides": ["stage=prm"],
        },
        "rl": {"model_from": "sft", "overrides": ["stage=grpo"]},
        "mcts": {
            "script": "evaluate",
            "label": "MCTS",
            "model_from": "sft",
            "overrides": ["search=mcts"],
        },
    }
    runner = FakeRunner()
    rows = run_pipeline(stages_from_config(spec), tmp_path, evaluation=["eval.k=8"], runner=runner)
    scripts = [Path(c[1]).stem for c in runner.commands]
    assert scripts == [
        "evaluate",
        "train",
        "evaluate",
        "label_steps",
        "train",
        "train",
        "evaluate",
        "evaluate",
    ]
    prm = runner.commands[4]
    assert "data=steps" in prm and f"data.path={tmp_path / 'label' / 'steps.jsonl'}" in prm
    assert [r["stage"] for r in rows] == ["base", "sft", "rl", "mcts"]
    mcts = runner.commands[-1]  # the pipeline's protocol, then the stage's own search
    assert mcts[-4:-1] == [
        "eval.k=8",
        "search=mcts",
        f"model.path={tmp_path / 'sft' / 'checkpoint'}",
    ]
    assert run_pipeline(stages_from_config(spec), tmp_path, runner=FakeRunner()) == rows
    # a stage set to null is dropped (an experiment that includes another's stages)
    assert [s.name for s in stages_from_config({**spec, "rl": None})] == [
        "sft",
        "label",
        "prm",
        "mcts",
    ]


def test_a_failed_stage_stops_the_pipeline_and_says_how_to_continue(tmp_path):
    runner = FakeRunner(fail="rl")
    with pytest.raises(SystemExit, match="stage 'rl' failed .*Rerun the same command"):
        run_pipeline(stages_from_config(SPEC), tmp_path, runner=runner)
    assert not (tmp_path / "sample").exists()


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"a": {"model_from": "b"}}, "model_from='b' is not an earlier stage"),
        ({"a": {"script": "eval"}}, "script='eval'"),
        ({"a": {"script": "sample"}, "b": {"model_from": "a"}}, "is not a train stage"),
        ({"a": {}, "b": {"data_from": "a"}}, "is not a stage that writes data"),
        ({"a": {"lr": 1}}, r"unknown setting\(s\) \['lr'\]"),
        ({}, "no stages"),
    ],
)
def test_bad_pipeline_specs_are_named(spec, message):
    with pytest.raises(ConfigError, match=message):
        stages_from_config(spec)


@pytest.mark.slow
def test_r1_pipeline_runs_end_to_end_on_the_tiny_model(tmp_path):
    """experiment=r1_pipeline, shrunk to the tiny model and a few steps per stage: every stage
    runs from the previous one's output, the table is printed, and a rerun skips them all."""

    def listed(*items):  # a Hydra list override whose items contain "="
        return "[" + ",".join(f"'{item}'" for item in items) + "]"

    small = [
        "pipeline.shared=['model=tiny']",
        "pipeline.train="
        + listed(
            "trainer.precision=32-true",
            "data.num_val=4",
            "trainer.max_steps=2",
            "data.num_train=16",
            "data.batch_size=2",
        ),
        "pipeline.evaluation="
        + listed("data=arithmetic", "data.num_val=4", "eval.k=2", "sampling.max_new_tokens=8"),
        f"pipeline.dir={tmp_path / 'pipeline'}",
        "pipeline.stages.rejection_sampling.overrides="
        + listed(
            "data.num_train=8",
            "sample.k=2",
            "sampling.max_new_tokens=8",
            "filters.correct=false",
            "filters.min_language_consistency=null",
            "filters.max_repetition=null",
        ),
        "pipeline.stages.reasoning_rl.overrides="
        + listed(
            "experiment=r1_cold_start_rl",
            "trainer.max_steps=2",
            "trainer.val_check_interval=null",
            "module.group_size=2",
            "module.sampling.max_new_tokens=8",
            "module.max_new_tokens=8",
        ),
        "pipeline.stages.all_scenarios_rl.overrides="
        + listed(
            "module.group_size=2",
            "module.sampling.max_new_tokens=8",
            "module.max_new_tokens=8",
            "stage=grpo",
            "module.dynamic_sampling=false",  # as conf/experiment/r1_pipeline.yaml
            "data=mixture",
            "reward=all_scenarios",
            "reward.terms.preference.params.name=tiny",
            "reward.terms.preference.start_step=1",
        ),
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    command = [sys.executable, str(ROOT / "scripts" / "train.py"), "experiment=r1_pipeline", *small]
    first = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=1200)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "held-out evaluation after each stage" in first.stdout
    rows = json.loads((tmp_path / "pipeline" / "pipeline.json").read_text())
    assert [r["stage"] for r in rows] == [
        "base",
        "cold_start",
        "reasoning_rl",
        "rejection_sft",
        "all_scenarios_rl",
    ]
    again = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and again.stdout.count("not run again") == 5


SHIPPED_PIPELINES = sorted(
    path.stem
    for path in (ROOT / "conf" / "experiment").glob("*.yaml")
    if any(line.startswith("pipeline:") for line in path.read_text().splitlines())
)


@pytest.mark.parametrize("experiment", SHIPPED_PIPELINES)
def test_every_override_of_the_shipped_pipelines_parses(experiment, tmp_path):
    """A stage's overrides are only parsed when the stage starts, possibly an hour in: check
    the grammar of all of them now (quoting of values with brackets, '=' or '<')."""
    from compose import compose_config
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    cfg = compose_config([f"experiment={experiment}"], tmp_path)
    spec = OmegaConf.to_container(cfg.pipeline, resolve=True)
    parser = OverridesParser.create()
    lists = [spec["shared"], spec["train"], spec["evaluation"]]
    lists += [stage.get("overrides", []) for stage in spec["stages"].values() if stage]
    for overrides in lists:
        parser.parse_overrides(overrides)  # raises on a bad one
    assert stages_from_config(spec["stages"])
