"""r1's GRPO against TRL's GRPOTrainer: same model, prompts, G, completion length, batch,
learning rate, reward and number of steps, one after the other.

    python scripts/bench_grpo.py                 # 10 steps each, bf16 autocast for both
    python scripts/bench_grpo.py --steps 20 --precision fp32
    python scripts/bench_grpo.py --device cuda --model-path /path/to/checkpoint   # on a GPU

Writes outputs/bench/grpo_vs_trl.json: samples/s, generated tokens/s, s/step, peak RSS and
the reward curve for each, and the ratios r1/TRL. Each side runs in its own child process
(started in turn by this one), so each peak-memory figure is that side's alone; the parent
samples the child's RSS every 50 ms (on CUDA each side also reports its
torch.cuda.max_memory_allocated). The first step of each side is warm-up and not timed.

The work (the TRL comparison task of issue 4): SmolLM2-135M-Instruct, "What is 47 + 38?
Answer with just the number." in the chat template, 4 prompts x 8 samples, 16 new tokens,
temperature 1.0, lr 3e-5, no KL; reward 1 when the last number is the sum and the completion
ended with EOS.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from r1.cli import scratch_dir

ROOT = Path(__file__).resolve().parents[1]
PROMPTS_PER_STEP, GROUP, MAX_NEW, LR = 4, 8, 16, 3e-5
EVALUATE = os.environ.get("R1_BENCH_EVAL") == "1"  # set by --eval for the child processes
QUESTION = "What is {expression}? Answer with just the number."


def problems(n: int):
    from r1.data.tasks import ArithmeticTask

    return ArithmeticTask(digits=2, num_ops=1, ops=("+",), question_format=QUESTION).generate(
        n, seed=0
    )


def heldout_accuracy(model, tokenizer, num: int = 100) -> dict[str, float]:
    """Greedy on the held-out problems of experiment=grpo_addition, scored the same way for
    both sides: strict = stops within 32 tokens and the last number is the sum; lenient = the
    last number within the first 12 tokens is the sum (TRL's own scoring of this task)."""
    import torch

    from r1.algorithms.padding import pad_left
    from r1.data.datamodule import SPLIT_SEED
    from r1.data.tasks import ArithmeticTask
    from r1.eval.heldout import generate_greedy
    from r1.rewards.accuracy import math_equal
    from r1.text import last_number

    held_out = ArithmeticTask(digits=2, num_ops=1, ops=("+",), question_format=QUESTION).generate(
        num, SPLIT_SEED
    )
    ids = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": p.question}], add_generation_prompt=True, return_dict=True
        )["input_ids"]
        for p in held_out
    ]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        completions = generate_greedy(
            model,
            tokenizer,
            pad_left(ids, tokenizer.pad_token_id),
            pad_left([[1] * len(i) for i in ids], 0),
            max_new_tokens=32,
        )
    strict = lenient = 0
    for problem, completion in zip(held_out, completions):
        number = last_number(completion.text)
        strict += completion.stopped and number is not None and math_equal(number, problem.answer)
        first = tokenizer.decode(
            tokenizer(completion.text, add_special_tokens=False)["input_ids"][:12]
        )
        early = last_number(first)
        lenient += early is not None and math_equal(early, problem.answer)
    return {
        "strict": strict / num,
        "lenient": lenient / num,
        "stop_rate": sum(c.stopped for c in completions) / num,
        "samples": [c.text for c in completions[:5]],
    }


def peak_cuda_gb() -> float | None:
    import torch

    return torch.cuda.max_memory_allocated() / 1e9 if torch.cuda.is_initialized() else None


def run_r1(steps: int, precision: str, out: Path, device: str, model_path: str | None) -> None:
    """r1 through its real entry point's pieces (the same config as experiment=grpo_addition)."""
    import lightning as L
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import instantiate
    from omegaconf import open_dict

    from r1.malloc import tune_malloc

    tune_malloc()  # as cli.run does for every script
    overrides = [
        "experiment=grpo_addition",
        f"trainer.max_steps={steps}",
        "validate_before_training=false",
        "+trainer.limit_val_batches=0",
        "trainer.val_check_interval=null",
        "logger=csv",
        f"trainer.precision={'bf16-mixed' if precision == 'bf16' else '32-true'}",
        "+trainer.enable_progress_bar=false",
        "+trainer.enable_model_summary=false",
        f"trainer.accelerator={'gpu' if device == 'cuda' else 'cpu'}",
    ]
    if model_path:
        overrides.append(f"model.path={model_path}")
    overrides += json.loads(os.environ.get("R1_BENCH_OVERRIDES", "[]"))
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = scratch_dir(prefix="bench_r1_")
    HydraConfig.instance().set_config(cfg)
    L.seed_everything(0)
    model, tokenizer = instantiate(cfg.model)
    datamodule = instantiate(cfg.data, tokenizer=tokenizer)
    module = instantiate(cfg.module, model=model, tokenizer=tokenizer)
    step_times, rewards, tokens = [], [], []

    class Timer(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            self.started = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            step_times.append(time.perf_counter() - self.started)
            logged = trainer.callback_metrics  # what the step just logged
            rewards.append(float(logged.get("train/reward", float("nan"))))
            tokens.append(int(logged["rollout/tokens"]))

    trainer = instantiate(cfg.trainer, logger=False, callbacks=[Timer()])
    trainer.fit(module, datamodule)
    module.reward.close()
    result = {"step_s": step_times, "reward": rewards, "tokens": tokens}
    result["peak_cuda_gb"] = peak_cuda_gb()
    if EVALUATE:
        result["heldout"] = heldout_accuracy(module.model, tokenizer)
    out.write_text(json.dumps(result))


def run_trl(steps: int, precision: str, out: Path, device: str, model_path: str | None) -> None:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from r1.models.builtin import smollm2_checkpoint_dir
    from r1.rewards.accuracy import math_equal
    from r1.text import last_number

    path = model_path or str(smollm2_checkpoint_dir())
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    data = problems(400)
    dataset = Dataset.from_list(
        [{"prompt": [{"role": "user", "content": p.question}], "gold": p.answer} for p in data]
    )
    eos = tokenizer.eos_token_id

    def stops_with_right_sum(prompts, completions, completion_ids, gold, **kwargs):
        texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
        return [
            float(eos in ids and (n := last_number(t)) is not None and math_equal(n, g))
            for t, ids, g in zip(texts, completion_ids, gold)
        ]

    config = GRPOConfig(
        output_dir=scratch_dir(prefix="bench_trl_"),
        per_device_train_batch_size=PROMPTS_PER_STEP * GROUP,
        num_generations=GROUP,
        max_completion_length=MAX_NEW,
        temperature=1.0,
        learning_rate=LR,
        beta=0.0,
        max_steps=steps,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=device == "cpu",
        bf16=precision == "bf16",
        seed=0,
        lr_scheduler_type="constant",
        warmup_steps=0,
        dataloader_num_workers=0,
        disable_tqdm=True,
        # TRL >= 1.x checkpoints activations by default; r1's SmolLM2 config does not, and
        # recomputing the forward in backward would be a different setting, not TRL's speed.
        gradient_checkpointing=False,
    )
    step_times, rewards, tokens = [], [], []

    class Timer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            self.started = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            step_times.append(time.perf_counter() - self.started)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "reward" in logs:
                rewards.append(logs["reward"])
                tokens.append(logs.get("completions/mean_length", 0) * PROMPTS_PER_STEP * GROUP)

    trainer = GRPOTrainer(
        model=model,
        processing_class=tokenizer,
        reward_funcs=stops_with_right_sum,
        args=config,
        train_dataset=dataset,
        callbacks=[Timer()],
    )
    trainer.train()
    result = {"step_s": step_times, "reward": rewards, "tokens": tokens}
    result["peak_cuda_gb"] = peak_cuda_gb()
    if EVALUATE:
        result["heldout"] = heldout_accuracy(trainer.model.eval(), tokenizer)
    out.write_text(json.dumps(result))


def measure(side: str, args: argparse.Namespace) -> dict:
    """Run one side in a child process, sampling its resident memory."""
    import psutil

    out = Path(tempfile.mkstemp(suffix=".json")[1])
    command = [sys.executable, __file__, "--child", side, "--child-out", str(out)]
    command += ["--steps", str(args.steps), "--precision", args.precision, "--device", args.device]
    command += ["--model-path", args.model_path] if args.model_path else []
    child = subprocess.Popen(command, cwd=ROOT)
    peak, process = 0, psutil.Process(child.pid)
    done = threading.Event()

    def sample():
        nonlocal peak
        while not done.is_set():
            try:
                peak = max(peak, process.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = child.wait()
    done.set()
    sampler.join()
    if code != 0:
        raise SystemExit(f"{side} run failed with exit code {code}")
    result = json.loads(out.read_text())
    timed = result["step_s"][1:]  # the first step is warm-up
    timed_tokens = result["tokens"][1:] if len(result["tokens"]) > 1 else result["tokens"]
    samples_per_step = PROMPTS_PER_STEP * GROUP
    seconds = sum(timed)
    return {
        "side": side,
        "steps_timed": len(timed),
        "s_per_step": seconds / len(timed),
        "samples_per_s": samples_per_step * len(timed) / seconds,
        "generated_tokens_per_s": sum(timed_tokens[: len(timed)]) / seconds,
        "peak_rss_gb": peak / 2**30,
        "peak_cuda_gb": result["peak_cuda_gb"],
        "reward_per_step": result["reward"],
        "heldout": result.get("heldout"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument(
        "--model-path", help="a checkpoint directory for both sides (default: SmolLM2-135M)"
    )
    parser.add_argument("--sides", nargs="+", default=["r1", "trl"])
    parser.add_argument(
        "--eval", action="store_true", help="score each side's final model on the held-out set"
    )
    # Identical settings: TRL has no dynamic sampling and runs a constant LR here.
    parser.add_argument(
        "--r1-overrides",
        nargs="*",
        default=["module.dynamic_sampling=false", "module.min_lr_ratio=1.0"],
        help="config overrides for r1 (default: no dynamic sampling, constant LR)",
    )
    parser.add_argument("--out", default=str(ROOT / "outputs" / "bench" / "grpo_vs_trl.json"))
    parser.add_argument("--child", choices=["r1", "trl"], help=argparse.SUPPRESS)
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        (run_r1 if args.child == "r1" else run_trl)(
            args.steps, args.precision, Path(args.child_out), args.device, args.model_path
        )
        return

    if args.eval:
        os.environ["R1_BENCH_EVAL"] = "1"
    os.environ["R1_BENCH_OVERRIDES"] = json.dumps(args.r1_overrides)
    results = {side: measure(side, args) for side in args.sides}
    report = {
        "settings": {
            "steps": args.steps,
            "precision": args.precision,
            "device": args.device,
            "model": args.model_path or "SmolLM2-135M-Instruct",
            "prompts_per_step": PROMPTS_PER_STEP,
            "group_size": GROUP,
            "max_new_tokens": MAX_NEW,
            "lr": LR,
            "kl": 0.0,
        },
        "results": results,
    }
    if {"r1", "trl"} <= set(results):
        r1, trl = results["r1"], results["trl"]
        report["ratios_r1_over_trl"] = {
            "samples_per_s": r1["samples_per_s"] / trl["samples_per_s"],
            "generated_tokens_per_s": r1["generated_tokens_per_s"] / trl["generated_tokens_per_s"],
            "peak_rss": r1["peak_rss_gb"] / trl["peak_rss_gb"],
        }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"{'side':<6}{'s/step':>9}{'samples/s':>11}{'gen tok/s':>11}{'peak RSS GB':>13}")
    for r in results.values():
        print(
            f"{r['side']:<6}{r['s_per_step']:>9.2f}{r['samples_per_s']:>11.2f}"
            f"{r['generated_tokens_per_s']:>11.1f}{r['peak_rss_gb']:>13.2f}"
        )
    for r in results.values():
        if r["heldout"]:
            h = r["heldout"]
            print(
                f"{r['side']}: held-out strict {h['strict']:.2f}, lenient {h['lenient']:.2f}, "
                f"stop rate {h['stop_rate']:.2f}"
            )
    if "ratios_r1_over_trl" in report:
        print(
            "r1 / TRL: "
            + ", ".join(f"{k} {v:.2f}x" for k, v in report["ratios_r1_over_trl"].items())
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
