"""`--help` of every Hydra script: its own description first, real commands, the config groups
it composes (conf/hydra/help/), and neither Hydra's generic text nor a dump of the config."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# script -> (how its description starts, a command it shows, a group line it composes)
SCRIPTS = {
    "train": (
        "Train one stage of the DeepSeek-R1 recipe",
        "python scripts/train.py experiment=grpo_addition",
        "  stage: distill, grpo, opd, ppo, prm, rm, sft  [sft]",
    ),
    "evaluate": (
        "Evaluate a model as the paper does",
        "python scripts/evaluate.py run=outputs/runs/",
        "  search: best_of_n, mcts, none  [none]",
    ),
    "sample": (
        "Rejection sampling (DeepSeek-R1 stage 3)",
        "python scripts/sample.py data=countdown sample.k=8",
        "  sampling: greedy, paper, rollout, sft_data, step_labels  [sft_data]",
    ),
    "label_steps": (
        "Math-Shepherd step labels for PRM training",
        "python scripts/train.py stage=prm data=steps",
        "  sampling: greedy, paper, rollout, sft_data, step_labels  [step_labels]",
    ),
    "filter_by_pass_rate": (
        "Offline difficulty filtering",
        "python scripts/filter_by_pass_rate.py data=multiplication measure.k=8",
        "  sampling: greedy, paper, rollout, sft_data, step_labels  [rollout]",
    ),
    "search_traces": (
        "Expert iteration's data: MCTS on training problems",
        "python scripts/search_traces.py traces.num_prompts=20",
        "  search: best_of_n, mcts, none  [mcts]",
    ),
}


def test_every_hydra_script_is_covered():
    hydra_scripts = {
        path.stem for path in (ROOT / "scripts").glob("*.py") if "@hydra.main" in path.read_text()
    }
    assert hydra_scripts == set(SCRIPTS)


@pytest.mark.parametrize("script", list(SCRIPTS))
def test_help_describes_the_script(script):
    description, example, group = SCRIPTS[script]
    result = subprocess.run(
        [sys.executable, f"scripts/{script}.py", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    text = result.stdout
    assert text.startswith(description), text[:300]
    assert example in text
    assert group in text.splitlines()
    assert f"python scripts/{script}.py [overrides] --cfg job" in text
    assert "powered by hydra" not in text.lower()
    # no config dump, and no group that is not the user's choice
    assert "_target_" not in text and "== Config ==" not in text
    groups = [line.split(":")[0].strip() for line in text.splitlines() if line.startswith("  ")]
    assert not [g for g in groups if g.startswith("hydra") or g == "local"]
