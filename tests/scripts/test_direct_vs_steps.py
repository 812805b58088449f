"""scripts/direct_vs_steps.py on the tiny model: every style scored per level on the same
problems, the one-shot examples drawn from outside them."""

from __future__ import annotations

import json

from script_modules import load_script


def test_each_style_is_scored_per_level_with_examples_outside_the_problems(tmp_path):
    script = load_script("direct_vs_steps")
    out = tmp_path / "dvs.json"
    args = ["--model", "tiny", "--tasks", "multiplication", "--problems", "2"]
    script.main([*args, "--max-new-tokens", "2", "--out", str(out)])
    report = json.loads(out.read_text())["tasks"]["multiplication"]
    assert [k for k in report if k != "seconds"] == [s[0] for s in script.STYLES]
    for style in script.STYLES:
        assert list(report[style[0]]) == ["1", "2", "3", "4"]
        assert all(cell["problems"] == 2 for cell in report[style[0]].values())
    from r1.data.tasks import MultiplicationTask

    problem = MultiplicationTask().generate(1, seed=0)[0]
    assert script.example_text(problem, worked=True) == (
        f"Example.\n{script.STEPS.format(question=problem.question)}\n{problem.solution}\n"
        f"{problem.answer}\n\nNow you.\n"
    )
    assert script.example_text(problem, worked=False) == (
        f"Example.\n{script.DIRECT.format(question=problem.question)}\n{problem.answer}"
        "\n\nNow you.\n"
    )
