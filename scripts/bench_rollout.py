"""Rollout speed: generated tokens/s of r1's HF engine, Hugging Face `generate` and TRL's
GRPOTrainer generation path, each against this machine's own bound measured in the same run.

    python scripts/bench_rollout.py                        # default plan, ~10 min on 2 CPU cores
    python scripts/bench_rollout.py --quick                # 32 rows x 256; r1 also x 1024
    python scripts/bench_rollout.py --full                 # rows 8/32/64 x 16/256/1024/4096
    python scripts/bench_rollout.py --engines r1 hf --batches 32 --lengths 256 1024
    python scripts/bench_rollout.py --device cuda --quick  # GPU (the default when present)
    python scripts/bench_rollout.py --threads 1            # a CPU shared with other work

Each configuration is `rows` = prompts x G completions (G = --group, 8 as in GRPO) of exactly
`length` new tokens: sampling at temperature 1 (top-p 1, top-k off) with EOS unable to end a
row (r1: SamplingParams.ignore_eos; HF and TRL: min_new_tokens = max_new_tokens), from short
chat-templated prompts (~45 tokens). tokens/s = rows x length / the wall time of one generate
call, prompt prefill included; each engine warms up once per row count (8 tokens) before
timing. All three decode in bf16 autocast over fp32 weights: r1 with one autocast region
around its decode loop (HFRolloutEngine autocast_dtype="bfloat16"), HF with one region around
`model.generate`, TRL as GRPOTrainer does with GRPOConfig(bf16=True): accelerate wraps the
model's forward in autocast, one region per forward call. TRL's path is the trainer's own
method (GRPOTrainer._generate_single_turn: `unwrapped_model.generate(...)` with the
GenerationConfig TRL builds from its arguments) on a trainer built once, its own copy of the
model prepared by its accelerator as training would.

On a CPU that other processes share, torch's threads wait for each other at every op (2
threads ran 10x slower than 1 at a load average of 9 on 2 cores): use --threads 1 there; the
bound is measured with the run's thread count either way.

The machine's limits, measured first: memory bandwidth (a large tensor copy_, read + write
counted; and a read-only sum), bf16 matmul throughput at a large shape (2048^3; 8192^3 on a
GPU) and at decode shapes: [rows x in] by each [out x in] weight of the model, as its own
products and with q/k/v and gate/up concatenated (as r1's decode step runs them), each with
F.linear and, on a CPU, with the weight in oneDNN's blocked layout; the fastest counts.

The bound of a configuration (B = rows, P = padded prompt length, L = length; SmolLM2-135M:
30 layers, 3 KV heads of 64, 134.5M parameters):
    decode step bytes  = 2 x parameters (bf16 weights, a tied embedding / LM head once)
                         + layers x 2 (K, V) x kv_heads x head_dim x 2 bytes x B x (P + (L-1)/2)
    decode step time   = max(bytes / bandwidth,
                             sum of the measured times of the model's matmuls at B rows
                             + attention FLOPs (4 x layers x heads x head_dim x context x B)
                               / the decode matmul throughput)
    prefill time       = max(weight bytes / bandwidth, 2 x linear params x prompts x P FLOPs
                             (the LM head on the last position only) / large-matmul throughput)
    bound tokens/s     = B x L / (prefill time + (L - 1) x decode step time)
bandwidth is the larger of the copy and read figures, so the bound never assumes less than the
machine did; `decode_tokens_per_s` (B / decode step time) is the decode-only bound. The
matmul times are the linear layers' 2 x (non-embedding + LM head) parameters x B FLOPs, each
at its own measured rate. fraction_of_bound = tokens/s / bound tokens/s.

Writes outputs/bench/rollout.json (machine, limits, per-configuration results with their
bound and peak memory, skipped configurations, r1's per-token cost of 1,024 vs 256 tokens at
32 rows, the process's peak RSS) and prints a table. Peak memory per configuration: the
process's RSS sampled every 10 ms during the timed call (CPU), or
torch.cuda.max_memory_allocated (GPU). The default plan (and --quick) skip configurations that
would end past --budget-s of wall time (600 s on a CPU, 150 s on a GPU), as predicted from the
rate measured so far (the engine's at the nearest row count, or its warm-up's); any plan
skips one whose KV cache would not fit in memory.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import math
import os
import platform
import resource
import tempfile
import threading
import time
import warnings
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from r1.models.decode_step import FusedLinear, supported

ROOT = Path(__file__).resolve().parents[1]
ENGINES = ("r1", "hf", "trl")
BATCHES = (8, 32, 64)
LENGTHS = (16, 256, 1024, 4096)
# In order: the targets first, so that a budget cut keeps them.
DEFAULT_PLAN = [
    *[(e, 32, 256) for e in ENGINES],
    ("r1", 32, 1024),
    *[(e, rows, 16) for e in ENGINES for rows in BATCHES],
    *[(e, rows, 256) for e in ENGINES for rows in (8, 64)],
    ("hf", 32, 1024),
    ("r1", 8, 4096),
]
QUICK_PLAN = [*[(e, 32, 256) for e in ENGINES], ("r1", 32, 1024)]
WARMUP_TOKENS = 8
QUESTION = "What is {expression}? Answer with just the number."


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seconds_per_call(
    device: torch.device, fn, *args, repeats: int = 5, min_s: float = 0.05
) -> float:
    """The best seconds per call of `fn(*args)` over `repeats` timings of enough calls to last
    min_s each."""
    fn(*args)
    sync(device)
    start = time.perf_counter()
    fn(*args)
    sync(device)
    calls = max(1, int(min_s / max(time.perf_counter() - start, 1e-9)))
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn(*args)
        sync(device)
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def product_time(device: torch.device, rows: int, fan_in: int, fan_out: int) -> dict:
    """Seconds of [rows x fan_in] @ [fan_out x fan_in].T in bf16: F.linear, and on a CPU also
    with the weight reordered into oneDNN's blocked layout (r1's decode step); the faster."""
    x = torch.randn(rows, fan_in, device=device, dtype=torch.bfloat16)
    w = torch.randn(fan_out, fan_in, device=device, dtype=torch.bfloat16)
    times = {"plain": seconds_per_call(device, F.linear, x, w)}
    packed = FusedLinear([SimpleNamespace(weight=w, bias=None)], torch.bfloat16, rows)
    if packed.packed:
        times["packed"] = seconds_per_call(device, packed, x)
    s = min(times.values())
    return {"s": s, "gflops": 2 * rows * fan_in * fan_out / s / 1e9, "by_kernel_s": times}


def machine_limits(device: torch.device, row_counts, arrangements: dict[str, Counter]) -> dict:
    """Memory bandwidth and bf16 matmul throughput, measured on `device`. `arrangements`: the
    decode step's matrix products as (fan_in, fan_out) counts, the model's own ("separate")
    and, where r1's decode step applies, with q/k/v and gate/up concatenated ("fused"); the
    bound takes the faster, each product with the faster kernel."""
    n = 1 << 28 if device.type == "cuda" else 1 << 26  # fp32 elements: 1 GiB / 256 MiB
    src = torch.ones(n, device=device)
    dst = torch.empty_like(src)
    nbytes = src.numel() * src.element_size()
    copy_gb_s = 2 * nbytes / seconds_per_call(device, dst.copy_, src) / 1e9
    read_gb_s = nbytes / seconds_per_call(device, src.sum) / 1e9
    del src, dst

    size = 8192 if device.type == "cuda" else 2048
    a = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    b = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    large_gflops = 2 * size**3 / seconds_per_call(device, torch.matmul, a, b) / 1e9
    del a, b

    decode = {}
    for rows in row_counts:
        shapes, totals = {}, {}
        for arrangement, counts in arrangements.items():
            for fan_in, fan_out in counts:
                if f"{fan_in}x{fan_out}" not in shapes:
                    shapes[f"{fan_in}x{fan_out}"] = product_time(device, rows, fan_in, fan_out)
            totals[arrangement] = sum(shapes[f"{i}x{o}"]["s"] * c for (i, o), c in counts.items())
        fastest = min(totals, key=totals.get)
        total_flops = sum(2 * rows * i * o * c for (i, o), c in arrangements[fastest].items())
        decode[str(rows)] = {
            "shapes": shapes,
            "arrangements_s": totals,
            "arrangement": fastest,
            "model_s": totals[fastest],
            "model_gflops": total_flops / totals[fastest] / 1e9,
        }
    return {
        "copy_gb_per_s": copy_gb_s,
        "read_gb_per_s": read_gb_s,
        "bandwidth_gb_per_s": max(copy_gb_s, read_gb_s),
        "matmul_large": {"shape": [size] * 3, "gflops": large_gflops},
        "matmul_decode": decode,
    }


def model_costs(model) -> dict:
    config = model.config
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    shapes = Counter((m.in_features, m.out_features) for m in linears)
    head = model.get_output_embeddings()
    return {
        "parameters": sum(p.numel() for p in model.parameters()),  # a tied weight once
        "linear_parameters": sum(m.weight.numel() for m in linears),
        "lm_head_parameters": head.weight.numel(),
        "layers": config.num_hidden_layers,
        "heads": heads,
        "kv_heads": config.num_key_value_heads,
        "head_dim": head_dim,
        "kv_bytes_per_row_token": config.num_hidden_layers
        * 2
        * config.num_key_value_heads
        * head_dim
        * 2,
        "linear_shapes": shapes,
        "fused_shapes": fused_shapes(model) if supported(model) else None,
    }


def fused_shapes(model) -> Counter:
    """The decode step's products with q/k/v and gate/up concatenated (r1.models.decode_step)."""
    shapes = Counter()
    for layer in model.model.layers:
        attention, mlp = layer.self_attn, layer.mlp
        hidden = attention.q_proj.in_features
        qkv = sum(m.out_features for m in (attention.q_proj, attention.k_proj, attention.v_proj))
        shapes[(hidden, qkv)] += 1
        shapes[(attention.o_proj.in_features, attention.o_proj.out_features)] += 1
        shapes[(hidden, mlp.gate_proj.out_features + mlp.up_proj.out_features)] += 1
        shapes[(mlp.down_proj.in_features, mlp.down_proj.out_features)] += 1
    head = model.get_output_embeddings()
    shapes[(head.in_features, head.out_features)] += 1
    return shapes


def bound(costs: dict, limits: dict, prompts: int, prompt_len: int, rows: int, length: int) -> dict:
    """The fastest this machine could run the configuration (the module docstring's formula)."""
    bandwidth = limits["bandwidth_gb_per_s"] * 1e9
    decode = limits["matmul_decode"][str(rows)]
    weight_bytes = 2 * costs["parameters"]
    context = prompt_len + (length - 1) / 2
    step_bytes = weight_bytes + costs["kv_bytes_per_row_token"] * rows * context
    attention_flops = 4 * costs["layers"] * costs["heads"] * costs["head_dim"] * context * rows
    memory_s = step_bytes / bandwidth
    compute_s = decode["model_s"] + attention_flops / (decode["model_gflops"] * 1e9)
    step_s = max(memory_s, compute_s)
    prefill_flops = (
        2
        * prompts
        * (
            (costs["linear_parameters"] - costs["lm_head_parameters"]) * prompt_len
            + costs["lm_head_parameters"]
            + costs["layers"] * costs["heads"] * costs["head_dim"] * prompt_len**2
        )
    )
    prefill_s = max(
        weight_bytes / bandwidth, prefill_flops / (limits["matmul_large"]["gflops"] * 1e9)
    )
    total_s = prefill_s + (length - 1) * step_s
    return {
        "step_s": step_s,
        "step_memory_s": memory_s,
        "step_compute_s": compute_s,
        "limited_by": "memory" if memory_s >= compute_s else "compute",
        "prefill_s": prefill_s,
        "decode_tokens_per_s": rows / step_s,
        "tokens_per_s": rows * length / total_s,
    }


class PeakMemory:
    """Peak memory (GB) while the block runs: the process's RSS sampled every 10 ms on a CPU,
    torch.cuda.max_memory_allocated on a GPU."""

    def __init__(self, device: torch.device):
        self.device, self.peak_gb = device, 0.0

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            return self
        import psutil

        process, self.done = psutil.Process(), threading.Event()
        self.peak = process.memory_info().rss

        def sample():
            while not self.done.wait(0.01):
                self.peak = max(self.peak, process.memory_info().rss)

        self.sampler = threading.Thread(target=sample, daemon=True)
        self.sampler.start()
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            self.peak_gb = torch.cuda.max_memory_allocated(self.device) / 1e9
        else:
            self.done.set()
            self.sampler.join()
            self.peak_gb = self.peak / 1e9


def chat_prompts(tokenizer, count: int) -> list[list[int]]:
    from r1.data.tasks import ArithmeticTask

    problems = ArithmeticTask(digits=2, num_ops=1, ops=("+",), question_format=QUESTION).generate(
        count, seed=0
    )
    return [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": p.question}], add_generation_prompt=True, return_dict=True
        )["input_ids"]
        for p in problems
    ]


class Engines:
    """The three generation paths on one model; each `generate` returns the tokens it made."""

    def __init__(self, model, tokenizer, device: torch.device, workdir: str):
        from r1.rollout.hf import HFRolloutEngine

        self.model, self.tokenizer, self.device, self.workdir = model, tokenizer, device, workdir
        self.r1 = HFRolloutEngine(model, tokenizer, autocast_dtype="bfloat16")
        self.trainer = None

    def generate(self, engine: str, prompts: list[list[int]], group: int, length: int) -> int:
        return getattr(self, f"_{engine}")(prompts, group, length)

    def _r1(self, prompts, group, length):
        from r1.rollout.types import SamplingParams

        params = SamplingParams(max_new_tokens=length, temperature=1.0, ignore_eos=True)
        return int(self.r1.generate(prompts, params, group).completion_mask.sum())

    @torch.no_grad()
    def _hf(self, prompts, group, length):
        from transformers import GenerationConfig

        from r1.algorithms.padding import pad_left

        rows = [p for p in prompts for _ in range(group)]
        ids = pad_left(rows, self.tokenizer.pad_token_id).to(self.device)
        mask = pad_left([[1] * len(p) for p in rows], 0).to(self.device)
        config = GenerationConfig(
            max_new_tokens=length,
            min_new_tokens=length,
            do_sample=True,
            temperature=1.0,
            top_p=1.0,
            top_k=0,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.tokenizer.eos_token_id,
        )
        with torch.autocast(self.device.type, dtype=torch.bfloat16):
            out = self.model.generate(input_ids=ids, attention_mask=mask, generation_config=config)
        return out[:, ids.shape[1] :].numel()

    def _trl(self, prompts, group, length):
        trainer = self.trl_trainer(len(prompts) * group, group)
        # What GRPOConfig(max_completion_length=length, generation_kwargs={"min_new_tokens":
        # length}) would give, without building a trainer per length.
        trainer.generation_kwargs.update(max_new_tokens=length, min_new_tokens=length)
        trainer.generation_config.update(max_new_tokens=length, min_new_tokens=length)
        rows = [p for p in prompts for _ in range(group)]  # TRL's RepeatSampler order
        completions, _ = trainer._generate_single_turn(rows, None, {}, group)
        return sum(len(c) for c in completions)

    def trl_trainer(self, rows: int, group: int):
        """A GRPOTrainer as scripts/bench_grpo.py builds it (bf16, temperature 1, no KL), with
        its own copy of the model, prepared by its accelerator as `train()` would."""
        if self.trainer is not None and self.trainer.num_generations == group:
            return self.trainer
        from datasets import Dataset
        from trl import GRPOConfig, GRPOTrainer

        self.trainer = None
        gc.collect()
        config = GRPOConfig(
            output_dir=self.workdir,
            per_device_train_batch_size=rows,
            num_generations=group,
            max_completion_length=WARMUP_TOKENS,
            generation_kwargs={"min_new_tokens": WARMUP_TOKENS},
            temperature=1.0,
            beta=0.0,
            report_to=[],
            use_cpu=self.device.type == "cpu",
            bf16=True,
            save_strategy="no",
            disable_tqdm=True,
        )
        trainer = GRPOTrainer(
            model=copy.deepcopy(self.model),
            processing_class=self.tokenizer,
            reward_funcs=lambda completions, **kwargs: [0.0] * len(completions),
            args=config,
            train_dataset=Dataset.from_list([{"prompt": "unused"}] * rows),
        )
        trainer.model_wrapped = trainer.accelerator.prepare(trainer.model)
        self.trainer = trainer
        return trainer

    def trl_call(self) -> dict:
        import trl

        return {
            "version": trl.__version__,
            "call": "GRPOTrainer._generate_single_turn(prompt_ids, None, {}, num_generations): "
            "with unwrap_model_for_generation(model_wrapped, accelerator, generation_kwargs=...)"
            " as unwrapped_model: unwrapped_model.generate(input_ids, attention_mask, "
            "generation_config=trainer.generation_config)",
            # max_new_tokens = min_new_tokens: each configuration's length (the last one here)
            "generation_config": self.trainer.generation_config.to_diff_dict(),
            "mixed_precision": self.trainer.accelerator.mixed_precision,
        }


def plan_of(args) -> tuple[list[tuple[str, int, int]], float]:
    """The configurations to run, in order, and the wall-time budget (inf: none)."""
    if args.full or args.lengths or args.batches:
        plan = [
            (e, r, n)
            for e in ENGINES
            for r in args.batches or BATCHES
            for n in args.lengths or LENGTHS
        ]
        budget = args.budget_s
    else:
        plan = QUICK_PLAN if args.quick else DEFAULT_PLAN
        budget = (
            args.budget_s
            if args.budget_s is not None
            else (600 if args.device.type == "cpu" else 150)
        )
    return [c for c in plan if c[0] in args.engines], budget or math.inf


def free_memory_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    import psutil

    return psutil.virtual_memory().available


def machine(device: torch.device) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    import transformers

    cpuinfo = Path("/proc/cpuinfo")
    names = (
        [line for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
        if cpuinfo.exists()
        else []
    )
    try:
        trl_version = version("trl")
    except PackageNotFoundError:
        trl_version = None
    return {
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "cpu": names[0].split(":", 1)[1].strip() if names else platform.processor(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": os.getloadavg(),  # other work on the machine skews timings
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "trl": trl_version,
    }


def timed(engines: Engines, engine: str, prompts, group: int, length: int, device):
    """(tokens generated, seconds) of one generate call."""
    sync(device)
    start = time.perf_counter()
    tokens = engines.generate(engine, prompts, group, length)
    sync(device)
    return tokens, time.perf_counter() - start


def run_plan(args, plan, budget, model, tokenizer, costs, limits, started):
    """Each configuration timed once, after its engine's warm-up at that row count. One whose
    KV cache would not fit in memory is skipped, and so is one that would end past the budget
    as predicted from this engine's rate at the nearest row count measured so far (or, before
    any, its warm-up's rate)."""
    pool = chat_prompts(tokenizer, max(rows for _, rows, _ in plan))
    results, skipped, rate, warm_rate = [], [], {}, {}  # (engine, rows) -> tokens/s

    def skip(engine, rows, length, reason):
        skipped.append({"engine": engine, "rows": rows, "length": length, "reason": reason})
        print(f"skip {engine} {rows} x {length}: {reason}", flush=True)

    with tempfile.TemporaryDirectory(prefix="bench_rollout_") as workdir:
        engines = Engines(model, tokenizer, args.device, workdir)
        for engine, rows, length in plan:
            group = min(args.group, rows)
            prompts = pool[: rows // group]
            prompt_len = max(len(p) for p in prompts)
            cache_bytes = costs["kv_bytes_per_row_token"] * rows * (prompt_len + length)
            if 2 * cache_bytes > 0.8 * free_memory_bytes(args.device):  # room for its copies
                skip(engine, rows, length, f"memory: a {cache_bytes / 1e9:.1f} GB KV cache")
                continue
            if time.perf_counter() - started > budget:
                skip(engine, rows, length, "budget: spent")
                continue
            if (engine, rows) not in warm_rate:
                tokens, seconds = timed(engines, engine, prompts, group, WARMUP_TOKENS, args.device)
                warm_rate[engine, rows] = tokens / seconds
            measured = sorted((abs(r - rows), r) for e, r in rate if e == engine)
            speed = rate[engine, measured[0][1]] if measured else warm_rate[engine, rows]
            predicted_s, left_s = rows * length / speed, budget - (time.perf_counter() - started)
            if predicted_s > left_s:
                reason = f"budget: {predicted_s:.0f} s predicted, {left_s:.0f} s left"
                skip(engine, rows, length, reason)
                continue
            gc.collect()
            with PeakMemory(args.device) as memory:
                tokens, seconds = timed(engines, engine, prompts, group, length, args.device)
            rate[engine, rows] = tokens / seconds
            limit = bound(costs, limits, len(prompts), prompt_len, rows, length)
            results.append(
                {
                    "engine": engine,
                    "rows": rows,
                    "prompts": len(prompts),
                    "group": group,
                    "prompt_tokens": prompt_len,
                    "length": length,
                    "tokens": tokens,
                    "seconds": seconds,
                    "tokens_per_s": tokens / seconds,
                    "peak_mem_gb": memory.peak_gb,
                    "bound": limit,
                    "fraction_of_bound": tokens / seconds / limit["tokens_per_s"],
                }
            )
            print(f"{engine} {rows} x {length}: {tokens / seconds:.1f} tokens/s", flush=True)
        trl_call = engines.trl_call() if engines.trainer else None
    return results, skipped, trl_call


def cost_ratio(results, rows: int = 32) -> float | None:
    """r1's seconds per token at 1,024 new tokens over that at 256 (target: at most 1.15)."""
    per_token = {
        r["length"]: r["seconds"] / r["tokens"]
        for r in results
        if r["engine"] == "r1" and r["rows"] == rows
    }
    return per_token[1024] / per_token[256] if {256, 1024} <= set(per_token) else None


def print_summary(report: dict, out: Path) -> None:
    limits = report["limits"]
    large = limits["matmul_large"]
    decode = ", ".join(
        f"{v['model_gflops']:.3g} at {r} rows" for r, v in limits["matmul_decode"].items()
    )
    print(
        f"copy {limits['copy_gb_per_s']:.1f} GB/s, read {limits['read_gb_per_s']:.1f} GB/s; "
        f"bf16 matmul GFLOP/s {large['gflops']:.0f} at {large['shape'][0]}^3, {decode} (decode)"
    )
    print(
        f"{'engine':<7}{'rows':>5}{'length':>7}{'tokens/s':>10}{'bound':>9}{'fraction':>10}{'peak GB':>9}"
    )
    for r in sorted(
        report["results"], key=lambda r: (ENGINES.index(r["engine"]), r["rows"], r["length"])
    ):
        print(
            f"{r['engine']:<7}{r['rows']:>5}{r['length']:>7}{r['tokens_per_s']:>10.1f}"
            f"{r['bound']['tokens_per_s']:>9.0f}{r['fraction_of_bound']:>10.3f}{r['peak_mem_gb']:>9.2f}"
        )
    ratio = report["r1_per_token_cost_1024_over_256_at_32_rows"]
    if ratio:
        print(f"r1 per-token cost, 1024 vs 256 new tokens at 32 rows: {ratio:.2f}x")
    print(f"peak RSS {report['peak_rss_gb']:.2f} GB, {report['wall_s']:.0f} s; wrote {out}")


def chart(report: dict, path: Path) -> None:
    """Bars of tokens/s per configuration and engine, the bound as a line over each group."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = report["results"]
    configs = sorted({(r["rows"], r["length"]) for r in results})
    engines = [e for e in ENGINES if any(r["engine"] == e for r in results)]
    width = 0.8 / len(engines)
    fig, ax = plt.subplots(figsize=(max(5, 1.4 * len(configs)), 3.6))
    for k, engine in enumerate(engines):
        rate = {
            (r["rows"], r["length"]): r["tokens_per_s"] for r in results if r["engine"] == engine
        }
        xs = [i + (k - (len(engines) - 1) / 2) * width for i, c in enumerate(configs) if c in rate]
        ax.bar(xs, [rate[c] for c in configs if c in rate], width, label=engine)
    bounds = {(r["rows"], r["length"]): r["bound"]["tokens_per_s"] for r in results}
    for i, c in enumerate(configs):
        ax.hlines(bounds[c], i - 0.45, i + 0.45, colors="black", linestyles="dashed")
    ax.plot([], [], "k--", label="bound (this run)")
    ax.set_xticks(range(len(configs)), [f"{rows} x {length}" for rows, length in configs])
    ax.set_xlabel("rows x new tokens")
    ax.set_ylabel("generated tokens/s")
    threads = report["machine"].get("torch_threads")
    ax.set_title(f"{report['settings']['model']}, {threads} thread(s)", fontsize=9)
    ax.set_ylim(0, 1.3 * max(bounds.values()))
    ax.legend(fontsize=8, ncol=len(engines) + 1, loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="smollm2_135m", help="a load_model name (tiny: tests)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--batches", nargs="+", type=int, help="rows (prompts x group); a grid")
    parser.add_argument("--lengths", nargs="+", type=int, help="new tokens per row; a grid")
    parser.add_argument("--full", action="store_true", help="the whole grid, no budget")
    parser.add_argument("--quick", action="store_true", help="the issue's targets only")
    parser.add_argument("--group", type=int, default=8, help="completions per prompt (G)")
    parser.add_argument(
        "--budget-s", type=float, help="wall time (default plans: 600 CPU, 150 GPU)"
    )
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--out", default=str(ROOT / "outputs" / "bench" / "rollout.json"))
    parser.add_argument("--chart", help="also draw the results into this PNG")
    parser.add_argument(
        "--from-json", help="print (and --chart) a report written before, running nothing"
    )
    args = parser.parse_args()
    if args.from_json:
        report = json.loads(Path(args.from_json).read_text())
        print_summary(report, Path(args.from_json))
        if args.chart:
            chart(report, Path(args.chart))
        return
    args.device = torch.device(args.device)
    if any(rows > args.group and rows % args.group for rows in args.batches or ()):
        parser.error(f"--batches: each must be a multiple of --group {args.group} (or below it)")
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()

    import transformers

    from r1.models.loading import load_model

    transformers.logging.set_verbosity_error()
    warnings.filterwarnings("ignore", category=FutureWarning)  # TRL's deprecated-argument notes
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    torch.manual_seed(0)
    plan, budget = plan_of(args)
    info = machine(args.device)
    model, tokenizer = load_model(args.model)
    model.to(args.device).eval()
    costs = model_costs(model)
    arrangements = {"separate": costs["linear_shapes"]}
    if costs["fused_shapes"]:
        arrangements["fused"] = costs["fused_shapes"]
    limits = machine_limits(args.device, sorted({r for _, r, _ in plan}), arrangements)
    results, skipped, trl_call = run_plan(
        args, plan, budget, model, tokenizer, costs, limits, started
    )
    shapes = {f"{i}x{o}": c for (i, o), c in costs.pop("linear_shapes").items()}
    fused = costs.pop("fused_shapes")
    costs["fused_shapes"] = fused and {f"{i}x{o}": c for (i, o), c in fused.items()}
    report = {
        "machine": {**info, "load_average_at_end": os.getloadavg()},
        "settings": {
            "model": args.model,
            "group_size": args.group,
            "sampling": {"temperature": 1.0, "top_p": 1.0, "top_k": 0, "eos": "cannot end a row"},
            "precision": {
                "r1": "bf16 autocast over fp32 weights, one region around the decode loop",
                "hf": "bf16 autocast over fp32 weights, one region around model.generate",
                "trl": "bf16 autocast over fp32 weights, one region per forward call "
                "(accelerate's wrapper, GRPOConfig(bf16=True))",
            },
            "trl": trl_call,
            "plan": [list(c) for c in plan],
            "budget_s": None if budget == math.inf else budget,
            "peak_mem": "process RSS sampled every 10 ms"
            if args.device.type == "cpu"
            else "torch.cuda.max_memory_allocated",
        },
        "model_costs": {**costs, "linear_shapes": shapes},
        "limits": limits,
        "results": results,
        "skipped": skipped,
        "r1_per_token_cost_1024_over_256_at_32_rows": cost_ratio(results),
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9,
        "wall_s": time.perf_counter() - started,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print_summary(report, out)
    if args.chart:
        chart(report, Path(args.chart))


if __name__ == "__main__":
    main()
