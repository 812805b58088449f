"""stage=distill through scripts/train.py: SFT of a student on a JSONL of teacher traces (the
`sft.jsonl` scripts/sample.py writes), each trained on verbatim."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

from run_files import logged_values

ROOT = Path(__file__).resolve().parents[2]


def test_distill_trains_a_student_on_teacher_traces(tmp_path):
    traces = tmp_path / "sft.jsonl"
    rows = [
        {
            "question": f"What is {i} + 2?",
            "answer": str(i + 2),
            "task": "arithmetic",
            "meta": {"language": "en"},
            "completion": f"<think>\n{i} plus 2 is {i + 2}\n</think>\n<answer>{i + 2}</answer>",
        }
        for i in range(24)
    ]
    traces.write_text("".join(json.dumps(r) + "\n" for r in rows))
    run = tmp_path / "run"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "train.py"),
            "stage=distill",
            "model=tiny",
            f"data.source.path={traces}",
            "data.num_val=4",
            "data.batch_size=4",
            "trainer.max_steps=3",
            "trainer.log_every_n_steps=1",
            "trainer.precision=32-true",
            "module.max_new_tokens=8",
            "validate_before_training=false",
            f"hydra.run.dir={run}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 3 and (run / "checkpoint" / "config.json").is_file()
    losses = logged_values(run, "train/loss")
    assert len(losses) == 3 and all(math.isfinite(x) for x in losses)
