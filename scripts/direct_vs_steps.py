"""Does writing out the steps pay on a task, before any RL? Greedy accuracy of a model (SmolLM2
as shipped by default) per difficulty level, answering directly vs writing intermediate
results, on the procedural tasks with levels.

    python scripts/direct_vs_steps.py                          # sums, arithmetic, multiplication
    python scripts/direct_vs_steps.py --tasks multiplication --problems 100
    python scripts/direct_vs_steps.py --model tiny --problems 4 --max-new-tokens 8   # smoke

All styles use the model's chat template, no system prompt, and differ only in the text
around the question: the instruction (DIRECT, STEPS), and in the `_example` styles one worked
example before it, a problem of the same level answered the same way (the bare answer, or the
task's worked solution then the answer), so the two one-shot styles differ only in whether the
example writes its intermediate results. A completion counts as right when it stops
within --max-new-tokens and its last number is the gold answer (r1.eval.heldout.score_text,
answer_source=last_number). Each level's problems are the same for both styles (seeded).
Writes outputs/bench/direct_vs_steps.json and prints a table with the standard error of
each accuracy (binomial, sqrt(p (1 - p) / n)).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from r1.data.tasks import ArithmeticTask, MultiplicationTask  # noqa: E402
from r1.data.templates import PromptTemplate  # noqa: E402
from r1.eval.heldout import score_text  # noqa: E402
from r1.models.loading import load_model  # noqa: E402
from r1.rollout.hf import HFRolloutEngine  # noqa: E402
from r1.rollout.types import SamplingParams  # noqa: E402

DIRECT = "{question} Answer with just the number."
STEPS = (
    "{question} Work it out step by step: write each intermediate result on its own line, "
    "then the final answer on the last line."
)
# (name, instruction, one worked example first, the example writes its steps)
STYLES = (
    ("direct", DIRECT, False, False),
    ("steps", STEPS, False, False),
    ("direct_example", DIRECT, True, False),
    ("steps_example", STEPS, True, True),
)
TASKS = {
    # level = number of additions of one-digit numbers: each step is easy, the whole less so
    "sums": lambda: ArithmeticTask(digits=1, num_ops=[1, 2, 4, 6], ops=["+"]),
    # level = number of operations (+, -, * on two-digit numbers)
    "arithmetic": lambda: ArithmeticTask(digits=2, num_ops=[1, 2, 3, 4]),
    # level = 2x1, 2x2, 3x2, 3x3 digits
    "multiplication": lambda: MultiplicationTask(),
}


EXAMPLE = "Example.\n{question}\n{response}\n\nNow you.\n"


def example_text(problem, worked: bool) -> str:
    instruction = STEPS if worked else DIRECT
    response = f"{problem.solution}\n{problem.answer}" if worked else problem.answer
    return EXAMPLE.format(question=instruction.format(question=problem.question), response=response)


def accuracy_by_level(
    engine, tokenizer, problems, style: str, max_new_tokens: int, examples=None, worked=False
) -> dict:
    """examples: level -> the worked example shown before each question of that level."""
    template = PromptTemplate(kind="chat", system=None, user_format="{question}")
    texts = [
        (example_text(examples[p.meta["level"]], worked) if examples else "")
        + style.format(question=p.question)
        for p in problems
    ]
    prompts = [
        tokenizer(template.render(t, tokenizer), add_special_tokens=False)["input_ids"]
        for t in texts
    ]
    params = SamplingParams(max_new_tokens=max_new_tokens, temperature=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        generations = engine.generate(prompts, params, n=1).generations()
    by_level: dict[int, list[bool]] = {}
    lengths: dict[int, list[int]] = {}
    for problem, generation in zip(problems, generations):
        level = problem.meta["level"]
        right = score_text(problem, generation.text, generation.end != "length", "last_number")
        by_level.setdefault(level, []).append(right.correct)
        lengths.setdefault(level, []).append(generation.num_tokens)
    return {
        level: {
            "accuracy": sum(rights) / len(rights),
            "stderr": math.sqrt(
                max(sum(rights) / len(rights) * (1 - sum(rights) / len(rights)), 0) / len(rights)
            ),
            "problems": len(rights),
            "mean_tokens": sum(lengths[level]) / len(lengths[level]),
            "example": next(
                g.text for p, g in zip(problems, generations) if p.meta["level"] == level
            ),
        }
        for level, rights in sorted(by_level.items())
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="smollm2_135m")
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS), default=list(TASKS))
    parser.add_argument("--problems", type=int, default=50, help="per level")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "outputs" / "bench" / "direct_vs_steps.json"))
    args = parser.parse_args(argv)
    model, tokenizer = load_model(args.model)
    engine = HFRolloutEngine(model, tokenizer)
    results: dict = {"settings": vars(args), "tasks": {}}
    for name in args.tasks:
        task = TASKS[name]()
        pool = task.generate(args.problems * 12, seed=args.seed)
        levels = sorted({p.meta["level"] for p in pool})
        per_level = {lv: [q for q in pool if q.meta["level"] == lv] for lv in levels}
        problems = [p for lv in levels for p in per_level[lv][: args.problems]]
        examples = {lv: per_level[lv][args.problems] for lv in levels}  # not evaluated
        started = time.perf_counter()
        results["tasks"][name] = {
            style_name: accuracy_by_level(
                engine,
                tokenizer,
                problems,
                style,
                args.max_new_tokens,
                examples if shots else None,
                worked,
            )
            for style_name, style, shots, worked in STYLES
        }
        results["tasks"][name]["seconds"] = time.perf_counter() - started
    results["styles"] = {"direct": DIRECT, "steps": STEPS, "example": EXAMPLE}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2, ensure_ascii=False))
    names = [style[0] for style in STYLES]
    print(f"{'task':<16}{'level':>6}" + "".join(f"{n:>16}" for n in names) + "  tokens")
    for name, styles in results["tasks"].items():
        for level in styles["direct"]:
            cells = [styles[n][level] for n in names]
            print(
                f"{name:<16}{level:>6}"
                + "".join(f"{c['accuracy']:>9.2f} ± {c['stderr']:.2f}" for c in cells)
                + "  "
                + " / ".join(f"{c['mean_tokens']:.0f}" for c in cells)
            )
    print(f"wrote {args.out}")
    return results


if __name__ == "__main__":
    from r1.malloc import tune_malloc

    tune_malloc()
    main()
