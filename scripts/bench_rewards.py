"""Reward scoring throughput: completions/s for reward configs on 2,048 completions.

    python scripts/bench_rewards.py                       # r1_zero and lang_consistency
    python scripts/bench_rewards.py --rewards r1_zero --workers 0 2 --n 4096

Composes the same `conf/reward/<name>.yaml` a training run uses, scores a realistic mix of
completions (right, wrong, malformed, truncated; English and Chinese chains of thought;
a few adversarial answers), and writes outputs/bench/rewards.json. Worker settings are run
side by side in one process, so their ratio is meaningful on a noisy machine.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from r1.data.tasks import ArithmeticTask
from r1.rewards import RewardSample

ROOT = Path(__file__).resolve().parents[1]


def completions(n: int, seed: int = 0) -> list[RewardSample]:
    rng = random.Random(seed)
    problems = ArithmeticTask(digits=2, num_ops=3, ops=("+", "-", "*")).generate(n, seed)
    samples = []
    for problem in problems:
        steps = problem.solution
        kind = rng.random()
        if kind < 0.40:  # right, English chain of thought
            text = f"<think>\nLet me work it out step by step.\n{steps}\nSo the result is {problem.answer}.\n</think>\n<answer>{problem.answer}</answer>"
        elif kind < 0.55:  # right, Chinese chain of thought
            text = f"<think>\n我们一步一步计算。\n{steps}\n所以结果是 {problem.answer}。\n</think>\n<answer>{problem.answer}</answer>"
        elif kind < 0.70:  # wrong, mixed languages
            text = f"<think>\nFirst 我们计算 {steps.splitlines()[0]}, wait, let me verify.\n</think>\n<answer>{int(problem.answer) + 1}</answer>"
        elif kind < 0.80:  # malformed
            text = f"The answer is {problem.answer}. <answer>{problem.answer}"
        elif kind < 0.90:  # truncated rambling
            text = "<think>\n" + f"{steps} " * 8
        elif kind < 0.98:  # LaTeX forms
            text = f"<think>\n{steps}\n</think>\n<answer>\\frac{{{2 * int(problem.answer)}}}{{2}}</answer>"
        else:  # adversarial
            text = rng.choice(
                [
                    "<answer>10**10**10</answer>",
                    "<answer>" + "\\sqrt{" * 300 + "</answer>",
                    "<answer>" + "9" * 3000 + "</answer>",
                ]
            )
        samples.append(
            RewardSample(
                completion=text,
                gold=problem.answer,
                task=problem.task,
                meta=problem.meta,
                prompt=problem.question,
                num_tokens=len(text) // 3,
                max_tokens=256,
                truncated=kind >= 0.80 and kind < 0.90,
            )
        )
    return samples


def bench(reward_name: str, workers: int, samples: list[RewardSample], repeats: int) -> dict:
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[f"reward={reward_name}", f"reward.workers={workers}"])
    reward = instantiate(cfg.reward)
    try:
        reward.score(samples[:64])  # start workers, import math-verify: not part of the figure
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            out = reward.score(samples)
            times.append(time.perf_counter() - started)
    finally:
        reward.close()
    best = min(times)
    return {
        "reward": reward_name,
        "workers": workers,
        "completions": len(samples),
        "seconds": best,
        "completions_per_s": len(samples) / best,
        "terms": sorted(out.terms),
        "errors": out.errors,
        "mean_reward": out.metrics()["train/reward"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rewards", nargs="+", default=["r1_zero", "lang_consistency"])
    parser.add_argument("--workers", nargs="+", type=int, default=[0, 2])
    parser.add_argument("--n", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "outputs" / "bench" / "rewards.json"))
    args = parser.parse_args()

    samples = completions(args.n)
    results = [bench(r, w, samples, args.repeats) for r in args.rewards for w in args.workers]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"{'reward':<20}{'workers':>8}{'completions/s':>16}{'s / 2048':>10}  errors")
    for r in results:
        per = r["seconds"] * 2048 / r["completions"]
        print(
            f"{r['reward']:<20}{r['workers']:>8}{r['completions_per_s']:>16.0f}{per:>10.2f}  {r['errors']}"
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
