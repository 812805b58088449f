"""One RL step broken into phases: generation, rewards, old/reference log-probs, the training
forward, backward and the optimizer step; each phase's wall time, share of the step, matmul
throughput and peak memory.

    python scripts/bench_step.py                                  # SmolLM2, 4 x 8 x 256 tokens
    python scripts/bench_step.py --new-tokens 1024 --logit-chunk-tokens 0   # chunking off
    python scripts/bench_step.py --device cuda
    python scripts/bench_step.py --model tiny --new-tokens 8      # a smoke test

The step is the real one (scripts/train.py's pieces: Hydra compose + instantiate, a Lightning
Trainer, bf16-mixed by default): the module's own methods are wrapped with timers. The first
step is warm-up (--warmup-new-tokens: a shorter one); the second is reported. Every completion runs to --new-tokens
(sampling.ignore_eos), so the token counts are the ones asked for.

Peak memory per phase: on CPU the process's resident-set high-water mark (VmHWM, reset at
each phase boundary through /proc/self/clear_refs), on CUDA torch.cuda.max_memory_allocated.
A phase's peak includes what earlier phases left alive (weights, optimizer state, the batch).
The script's malloc is tuned as every r1 script's is (r1.malloc; R1_MALLOC_TUNING=0 for
glibc's defaults). GFLOP/s counts 2 x parameters x tokens per forward token (4 x in backward), attention left
out; tokens are the padded shapes the forwards run on. --max-rss-gb stops a run whose
resident memory passes that bound (naming the phase) instead of letting it exhaust the machine.

Writes outputs/bench/step.json and prints a table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from r1.cli import scratch_dir  # noqa: E402
from r1.rollout.producer import peak_memory_gb, reset_peak_memory  # noqa: E402

PHASES = ("generation", "rewards", "old/ref log-probs", "forward", "backward", "optimizer")


def rss_gb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1e6
    return 0.0


class PhaseClock:
    """Exclusive wall time and peak memory per phase; phases nest (a phase's time excludes
    the phases inside it) and repeat (times add up, peaks take the max)."""

    def __init__(self, device: str):
        self.device = device
        self.stack: list[str] = []
        self.seconds: dict[str, float] = {}
        self.peak_gb: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.mark = time.perf_counter()

    def flush(self) -> None:
        """Charge the time and peak since the last boundary to the running phase."""
        now, name = time.perf_counter(), self.stack[-1] if self.stack else "other"
        if self.device == "cuda":
            torch.cuda.synchronize()
            now = time.perf_counter()
        self.seconds[name] = self.seconds.get(name, 0.0) + now - self.mark
        self.peak_gb[name] = max(self.peak_gb.get(name, 0.0), peak_memory_gb())
        reset_peak_memory()
        self.mark = now

    def reset(self) -> None:
        self.stack, self.seconds, self.peak_gb, self.calls = [], {}, {}, {}
        reset_peak_memory()
        self.mark = time.perf_counter()

    def enter(self, name: str) -> None:
        self.flush()
        self.stack.append(name)
        self.calls[name] = self.calls.get(name, 0) + 1

    def exit(self) -> None:
        self.flush()
        self.stack.pop()

    def wrap(self, name: str, fn):
        def timed(*args, **kwargs):
            self.enter(name)
            try:
                return fn(*args, **kwargs)
            finally:
                self.exit()

        return timed


def guard_memory(limit_gb: float, clock: PhaseClock) -> None:
    """Exit (code 3) when the resident set passes `limit_gb`, naming the running phase."""

    def watch():
        while True:
            if rss_gb() > limit_gb:
                phase = clock.stack[-1] if clock.stack else "other"
                print(f"resident memory passed {limit_gb} GB during {phase!r}: stopped", flush=True)
                os._exit(3)
            time.sleep(0.02)

    threading.Thread(target=watch, daemon=True).start()


def overrides_for(args: argparse.Namespace) -> list[str]:
    overrides = [
        f"stage={args.stage}",
        f"model={args.model}",
        f"reward={args.reward}",
        f"data.batch_size={args.prompts}",
        f"module.group_size={args.group}",
        f"module.sampling.max_new_tokens={args.new_tokens}",
        "++module.sampling.ignore_eos=true",
        f"module.kl_coef={args.kl_coef}",
        f"module.inner_updates={args.inner_updates}",
        "module.sample_table_every=0",
        "trainer.max_steps=2",
        "validate_before_training=false",
        "+trainer.limit_val_batches=0",
        "trainer.val_check_interval=null",
        f"trainer.precision={'bf16-mixed' if args.precision == 'bf16' else '32-true'}",
        f"trainer.accelerator={'gpu' if args.device == 'cuda' else 'cpu'}",
        "+trainer.enable_progress_bar=false",
        "+trainer.enable_model_summary=false",
    ]
    if args.stage == "grpo":
        overrides.append("module.dynamic_sampling=false")  # no refills: one generation
    if args.logit_chunk_tokens is not None:
        chunk = args.logit_chunk_tokens or "null"
        overrides.append(f"module.logit_chunk_tokens={chunk}")
    return overrides + list(args.override)


def run_step(args: argparse.Namespace) -> dict:
    import lightning as L
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import instantiate
    from omegaconf import open_dict

    overrides = overrides_for(args)
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = scratch_dir(prefix="bench_step_")
    HydraConfig.instance().set_config(cfg)
    L.seed_everything(args.seed)
    model, tokenizer = instantiate(cfg.model)
    datamodule = instantiate(cfg.data, tokenizer=tokenizer)
    module = instantiate(cfg.module, model=model, tokenizer=tokenizer)
    clock = PhaseClock(args.device)
    if args.max_rss_gb:
        guard_memory(args.max_rss_gb, clock)
    steps: list[dict] = []
    seen: dict = {}

    class Profile(L.Callback):
        def on_train_start(self, trainer, pl_module):
            producer = pl_module.producer
            engine = producer.engine
            engine.generate = clock.wrap("generation", engine.generate)

            def produce(*a, **k):
                seen["scored"] = scored = real_produce(*a, **k)
                return scored

            real_produce = producer.produce
            producer.produce = clock.wrap("rewards", produce)
            for method, phase in [
                ("reference_logprobs", "old/ref log-probs"),
                ("prepare", "old/ref log-probs"),
                ("micro_batch_loss", "forward"),
                ("manual_backward", "backward"),
            ]:
                setattr(pl_module, method, clock.wrap(phase, getattr(pl_module, method)))
            passes = pl_module.logprobs_of

            def counted(*a, **k):
                seen["no_grad_passes"] = seen.get("no_grad_passes", 0) + 1
                return passes(*a, **k)

            pl_module.logprobs_of = counted
            optimizer = pl_module.optimizers().optimizer
            optimizer.register_step_pre_hook(lambda *a: clock.enter("optimizer"))
            optimizer.register_step_post_hook(lambda *a: clock.exit())

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if batch_idx == 0:  # a shorter warm-up when asked
                self.sampling = pl_module.producer.sampling
                warmup = args.warmup_new_tokens or self.sampling.max_new_tokens
                pl_module.producer.sampling = dataclasses.replace(
                    self.sampling, max_new_tokens=warmup
                )
            else:
                pl_module.producer.sampling = self.sampling
            seen["no_grad_passes"] = 0
            clock.reset()
            self.started = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            clock.flush()
            total = time.perf_counter() - self.started
            steps.append(
                {
                    "step_s": total,
                    "seconds": dict(clock.seconds),
                    "peak_gb": dict(clock.peak_gb),
                    "calls": dict(clock.calls),
                    "no_grad_passes": seen["no_grad_passes"],
                    "shapes": shapes(seen["scored"].rollout),
                }
            )

    trainer = instantiate(cfg.trainer, logger=False, callbacks=[Profile()])
    trainer.fit(module, datamodule)
    module.reward.close()
    params = sum(p.numel() for p in module.model.parameters())
    return report(args, overrides, steps, params, module)


def shapes(rollout) -> dict[str, int]:
    return {
        "prompts": rollout.num_prompts,
        "rows": rollout.completion_ids.shape[0],
        "prompt_length": rollout.prompt_ids.shape[1],
        "completion_length": rollout.completion_ids.shape[1],
        "completion_tokens": int(rollout.completion_mask.sum()),
    }


def report(args, overrides, steps, params, module) -> dict:
    step = steps[-1]  # the first is warm-up
    s = step["shapes"]
    prompt_tokens = s["prompts"] * s["prompt_length"]
    completion_tokens = s["rows"] * s["completion_length"]
    if module.shared_prefix:
        forward_tokens = prompt_tokens + completion_tokens
    else:
        forward_tokens = s["rows"] * (s["prompt_length"] + s["completion_length"])
    flops = {
        "generation": 2 * params * (prompt_tokens + completion_tokens),
        "old/ref log-probs": 2 * params * forward_tokens * step["no_grad_passes"],
        "forward": 2 * params * forward_tokens * module.inner_updates,
        "backward": 4 * params * forward_tokens * module.inner_updates,
    }
    phases = {}
    for name in (*PHASES, "other"):
        seconds = step["seconds"].get(name, 0.0)
        phases[name] = {
            "seconds": seconds,
            "share": seconds / step["step_s"],
            "gflop_per_s": flops[name] / seconds / 1e9 if name in flops and seconds else None,
            "peak_mem_gb": step["peak_gb"].get(name),
        }
    return {
        "settings": {
            **{k: v for k, v in vars(args).items() if k not in ("out",)},
            "overrides": overrides,
            "parameters": params,
            "logit_chunk_tokens": getattr(module, "logit_chunk_tokens", "default"),
            "memory": "torch.cuda.max_memory_allocated"
            if args.device == "cuda"
            else "resident set high-water mark (VmHWM)",
        },
        "shapes": s,
        "step_s": step["step_s"],
        "peak_mem_gb": max(v for v in step["peak_gb"].values()),
        "warmup": {
            "step_s": steps[0]["step_s"],
            "peak_mem_gb": max(steps[0]["peak_gb"].values()),
            "new_tokens": steps[0]["shapes"]["completion_length"],
        },
        "phases": phases,
    }


def print_table(result: dict) -> None:
    s = result["shapes"]
    print(
        f"{s['prompts']} prompts x {s['rows'] // s['prompts']} samples, prompt "
        f"{s['prompt_length']} + {s['completion_length']} new tokens; step "
        f"{result['step_s']:.2f} s, peak {result['peak_mem_gb']:.2f} GB"
    )
    print(f"{'phase':<20}{'s':>9}{'share':>8}{'GFLOP/s':>10}{'peak GB':>10}")
    for name, p in result["phases"].items():
        gflops = f"{p['gflop_per_s']:.0f}" if p["gflop_per_s"] is not None else "-"
        peak = f"{p['peak_mem_gb']:.2f}" if p["peak_mem_gb"] is not None else "-"
        print(f"{name:<20}{p['seconds']:>9.2f}{p['share']:>8.1%}{gflops:>10}{peak:>10}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="smollm2_135m", help="a conf/model option")
    parser.add_argument("--stage", choices=["grpo", "ppo"], default="grpo")
    parser.add_argument("--reward", default="lang_consistency", help="a conf/reward option")
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--group", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument(
        "--warmup-new-tokens", type=int, default=None, help="the warm-up step's (default: same)"
    )
    parser.add_argument(
        "--logit-chunk-tokens",
        type=int,
        default=None,
        help="module.logit_chunk_tokens (0: no chunking; default: the config's)",
    )
    parser.add_argument("--kl-coef", type=float, default=0.04, help="> 0: reference log-probs")
    parser.add_argument("--inner-updates", type=int, default=1, help="> 1: old log-probs")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-rss-gb", type=float, default=None)
    parser.add_argument("--override", nargs="*", default=[], help="more config overrides")
    parser.add_argument("--out", default=str(ROOT / "outputs" / "bench" / "step.json"))
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    result = run_step(args)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print_table(result)
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    from r1.malloc import tune_malloc

    tune_malloc()  # as scripts/train.py does (r1.cli.run): the memory users get
    main()
