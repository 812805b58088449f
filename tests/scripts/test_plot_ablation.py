"""`scripts/plot_ablation.py`: arms from Hydra overrides, seeds averaged, a readable PNG, the
final values as a table and JSON, and a clear message for a directory without runs."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import matplotlib
import pytest
import script_modules

matplotlib.use("Agg")
import matplotlib.image  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ARMS = {"r1_zero": 0.0, "lang_consistency": 0.5}  # reward arm -> offset of its values
SEEDS = [0, 1]
TRAIN_STEPS = range(6)
VAL_STEPS = [2, 5]


def load_script():
    return script_modules.load_script("plot_ablation")


plot_ablation = load_script()


def reward(arm: str, seed: int, step: int) -> float:
    return ARMS[arm] + 0.1 * step + 0.05 * seed


def accuracy(arm: str, seed: int, step: int) -> float:
    return ARMS[arm] / 2 + 0.02 * step + 0.1 * seed


def completion_len(arm: str, seed: int, step: int) -> float:
    return 100 + 10 * step + 40 * ARMS[arm] + seed


def write_metrics(path: Path, arm: str, seed: int) -> None:
    """A sparse CSVLogger file: train rows, and val rows at VAL_STEPS ("5.0"-style steps)."""
    lines = ["epoch,step,train/completion_len,train/reward,val/accuracy"]
    for step in TRAIN_STEPS:
        lines.append(f"0,{step},{completion_len(arm, seed, step)},{reward(arm, seed, step)},")
        if step in VAL_STEPS:
            lines.append(f"0,{step}.0,,,{accuracy(arm, seed, step)}")
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """A Hydra multirun directory: 2 reward arms x 2 seeds."""
    sweep = tmp_path / "sweep"
    job = 0
    for arm in ARMS:
        for seed in SEEDS:
            run = sweep / f"{job}_reward={arm},seed={seed}"
            write_metrics(run / "logs" / "metrics.csv", arm, seed)
            overrides = ["experiment=ablation_lang_reward", f"reward={arm}", f"seed={seed}"]
            (run / ".hydra").mkdir()
            (run / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
            job += 1
    (sweep / "multirun.yaml").write_text("hydra: {}\n")
    return sweep


def run_script(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "scripts/plot_ablation.py", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def final_mean_std(metric, arm: str, last_step: int) -> tuple[float, float]:
    values = [metric(arm, seed, last_step) for seed in SEEDS]
    return statistics.fmean(values), statistics.stdev(values)


def test_sweep_gives_png_json_and_table(sweep):
    result = run_script(sweep)
    assert result.returncode == 0, result.stderr
    out = sweep / "ablation.png"
    assert out.read_bytes()[:8] == PNG_SIGNATURE
    height, width, _ = matplotlib.image.imread(out).shape
    assert 300 < height < 3000 and 1000 < width < 4000

    finals = json.loads(out.with_suffix(".json").read_text())
    assert set(finals) == {"reward=r1_zero", "reward=lang_consistency"}
    for arm in ARMS:
        per_metric = finals[f"reward={arm}"]
        # train/reflection_words is a default panel that no fixture run logs: skipped
        assert set(per_metric) == {"train/reward", "val/accuracy", "train/completion_len"}
        for name, metric, last in [
            ("train/reward", reward, TRAIN_STEPS[-1]),
            ("train/completion_len", completion_len, TRAIN_STEPS[-1]),
            ("val/accuracy", accuracy, VAL_STEPS[-1]),
        ]:
            mean, std = final_mean_std(metric, arm, last)
            assert per_metric[name]["mean"] == pytest.approx(mean)
            assert per_metric[name]["std"] == pytest.approx(std)
            assert per_metric[name]["seeds"] == len(SEEDS)

    assert "reward=r1_zero" in result.stdout and "reward=lang_consistency" in result.stdout
    assert "skipping train/reflection_words" in result.stderr
    assert "Traceback" not in result.stderr


def test_out_metrics_title_and_missing_metric(sweep, tmp_path):
    out = tmp_path / "figs" / "lang.png"
    result = run_script(
        sweep, "--out", out, "--metrics", "val/accuracy", "train/no_such", "--title", "t"
    )
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:8] == PNG_SIGNATURE
    finals = json.loads((tmp_path / "figs" / "lang.json").read_text())
    assert all(set(m) == {"val/accuracy"} for m in finals.values())


def test_runs_from_several_directories(sweep, tmp_path):
    """Single run directories given one by one group like the sweep they came from."""
    runs = sorted(p for p in sweep.iterdir() if p.is_dir())
    out = tmp_path / "a.png"
    assert run_script(*runs, "--out", out).returncode == 0
    assert set(json.loads(out.with_suffix(".json").read_text())) == {
        "reward=r1_zero",
        "reward=lang_consistency",
    }


def test_pipeline_stages_group_by_directory_name(tmp_path):
    """--arms dirname: the same stage of one pipeline per seed is one arm, whatever its
    overrides (a checkpoint path that names the seed's pipeline)."""
    for seed in SEEDS:
        for stage, arm in (("rl_zero", "r1_zero"), ("rl_cold_start", "lang_consistency")):
            run = tmp_path / f"pipeline_seed{seed}" / stage
            write_metrics(run / "logs" / "metrics.csv", arm, seed)
            (run / ".hydra").mkdir()
            path = f"model.path={tmp_path}/pipeline_seed{seed}/cold_start/checkpoint"
            overrides = ["stage=grpo", f"seed={seed}"] + ([path] if arm != "r1_zero" else [])
            (run / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    out = tmp_path / "stages.png"
    result = run_script(tmp_path, "--arms", "dirname", "--out", out, "--metrics", "val/accuracy")
    assert result.returncode == 0, result.stderr
    finals = json.loads(out.with_suffix(".json").read_text())
    assert set(finals) == {"rl_zero", "rl_cold_start"}
    assert finals["rl_zero"]["val/accuracy"]["seeds"] == 2


def test_directory_without_runs_fails_naming_it(sweep, tmp_path):
    empty = tmp_path / "empty_sweep"
    empty.mkdir()
    result = run_script(sweep, empty)
    assert result.returncode != 0
    assert str(empty) in result.stderr and "no runs" in result.stderr
    assert "Traceback" not in result.stderr


def test_arm_labels_show_only_what_differs():
    overrides = [
        ["experiment=abl", "reward=r1_zero", "seed=0", "hydra.job.chdir=false"],
        ["experiment=abl", "reward=r1_zero", "seed=1", "resume=auto"],
        ["experiment=abl", "reward=lang_consistency", "seed=0"],
        ["experiment=abl", "reward=lang_consistency", "+seed=1"],
    ]
    labels = plot_ablation.arm_labels(overrides, ["a", "b", "c", "d"])
    assert labels == ["reward=r1_zero"] * 2 + ["reward=lang_consistency"] * 2


def test_arm_labels_several_overrides_and_defaults():
    overrides = [["reward=x", "module.kl_coef=0.1"], ["reward=y", "module.kl_coef=0.1"], []]
    labels = plot_ablation.arm_labels(overrides, ["a", "b", "c"])
    assert labels == ["reward=x, module.kl_coef=0.1", "reward=y, module.kl_coef=0.1", "(defaults)"]


def test_arm_labels_fall_back_to_run_names_when_nothing_differs():
    overrides = [["experiment=abl", "seed=0"], ["experiment=abl", "seed=1"]]
    assert plot_ablation.arm_labels(overrides, ["run_a", "run_b"]) == ["run_a", "run_b"]


def test_read_metrics_sparse_rows(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text(
        "epoch,step,train/reward,val/accuracy\n0,0,0.5,\n0,1,0.75,\n0,1.0,,0.25\n1,2,1.0,\n"
    )
    assert plot_ablation.read_metrics(path) == {
        "train/reward": {0: 0.5, 1: 0.75, 2: 1.0},
        "val/accuracy": {1: 0.25},
    }


def test_read_metrics_skips_nan_cells(tmp_path):
    # RLModule.log_metrics writes NaN for a metric with no signal at a step (e.g. a term whose
    # task had no prompt in the batch); it is a gap, not a value
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,step,train/reward/rules\n0,0,0.5\n0,1,nan\n0,2,0.75\n")
    assert plot_ablation.read_metrics(path) == {"train/reward/rules": {0: 0.5, 2: 0.75}}


def test_seed_band_uses_steps_every_seed_logged():
    steps, mean, low, high = plot_ablation.seed_band([{0: 1.0, 1: 2.0, 2: 3.0}, {0: 3.0, 1: 4.0}])
    assert steps == [0, 1]
    assert mean == [2.0, 3.0] and low == [1.0, 2.0] and high == [3.0, 4.0]


def test_final_value_is_each_seeds_last_value():
    final = plot_ablation.final_value([{0: 1.0, 5: 2.0}, {0: 0.0, 3: 4.0}])
    assert final == {
        "mean": 3.0,
        "std": pytest.approx(2**0.5),
        "se": pytest.approx(1.0),
        "seeds": 2,
    }
    assert plot_ablation.final_value([{0: 1.0}]) == {
        "mean": 1.0,
        "std": 0.0,
        "se": 0.0,
        "seeds": 1,
    }
