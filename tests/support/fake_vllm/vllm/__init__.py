"""A stand-in for vLLM with the names and signatures r1.rollout.vllm calls (vLLM >= 0.10.2,
V1 engine, in-process): `LLM(...)`, `LLM.generate(prompts, sampling_params=, use_tqdm=)`,
`LLM.sleep(level=)`, `LLM.wake_up(tags=)`, `LLM.reset_prefix_cache()`,
`llm.llm_engine.model_executor.driver_worker.worker.model_runner.model.load_weights(weights=)`,
`SamplingParams(...)`, and outputs shaped like RequestOutput / CompletionOutput / Logprob.

It really runs a model: built from the config directory it is given (random weights, like
load_format="dummy"), updated only through load_weights (unknown names and wrong shapes
raise), and sampled with r1's HF engine. Sleeping at level 2 scrambles the weights and
generating while asleep raises, as vLLM would give garbage. Every call is appended to
`LLM.events` (class attribute: the engine under test builds its own instance)."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import torch

__version__ = "0.10.2+fake"


@dataclass
class SamplingParams:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    seed: int | None = None
    stop: list[str] | None = None
    max_tokens: int | None = 16
    logprobs: int | None = None
    include_stop_str_in_output: bool = False
    ignore_eos: bool = False
    skip_special_tokens: bool = True
    detokenize: bool = True


@dataclass
class Logprob:
    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    cumulative_logprob: float | None
    logprobs: list[dict[int, Logprob]] | None
    finish_reason: str | None = None
    stop_reason: int | str | None = None  # the stop string that ended it (None: EOS or length)


@dataclass
class RequestOutput:
    request_id: str
    prompt_token_ids: list[int]
    outputs: list[CompletionOutput] = field(default_factory=list)
    finished: bool = True


class _ModelRunnerModel:
    """vLLM's model object: load_weights takes (checkpoint name, tensor) pairs."""

    def __init__(self, hf_model, events):
        self.hf_model, self.events = hf_model, events
        self.params = dict(hf_model.named_parameters())
        if getattr(hf_model.config, "tie_word_embeddings", False):
            self.params.setdefault("lm_head.weight", hf_model.get_output_embeddings().weight)

    def load_weights(self, weights):
        loaded = set()
        for name, tensor in weights:
            if name not in self.params:
                raise KeyError(f"fake vLLM: no parameter named {name!r}")
            if tuple(tensor.shape) != tuple(self.params[name].shape):
                raise ValueError(f"fake vLLM: {name} has shape {tuple(tensor.shape)}")
            with torch.no_grad():
                self.params[name].copy_(tensor)
            self.events.append(("load_weights", name, tuple(tensor.shape)))
            loaded.add(name)
        return loaded


class LLM:
    events: list = []
    instances: list = []

    def __init__(self, model: str, tokenizer: str | None = None, **kwargs):
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        if kwargs.get("load_format") != "dummy":
            raise AssertionError("the fake only builds dummy-weight engines")
        self.kwargs = {"model": model, "tokenizer": tokenizer, **kwargs}
        self.events.append(("init", self.kwargs))
        LLM.instances.append(self)
        torch.manual_seed(kwargs.get("seed", 0))  # like vLLM: seeds the global generator
        config = AutoConfig.from_pretrained(model)
        self.hf_model = AutoModelForCausalLM.from_config(config).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer or model)
        runner = SimpleNamespace(model=_ModelRunnerModel(self.hf_model, self.events))
        worker = SimpleNamespace(worker=SimpleNamespace(model_runner=runner))
        self.llm_engine = SimpleNamespace(model_executor=SimpleNamespace(driver_worker=worker))
        self.asleep: set[str] = set()

    def sleep(self, level: int = 1):
        self.events.append(("sleep", level))
        self.asleep = {"weights", "kv_cache"}
        if level == 2:  # weights discarded
            with torch.no_grad():
                for p in self.hf_model.parameters():
                    p.fill_(float("nan"))

    def wake_up(self, tags: list[str] | None = None):
        self.events.append(("wake_up", tuple(tags or ("weights", "kv_cache"))))
        self.asleep -= set(tags or ("weights", "kv_cache"))

    def reset_prefix_cache(self):
        self.events.append(("reset_prefix_cache",))
        return True

    def generate(self, prompts, sampling_params=None, *, use_tqdm=True):
        from r1.rollout.hf import HFRolloutEngine
        from r1.rollout.types import SamplingParams as R1Sampling

        if self.asleep:
            raise RuntimeError(f"fake vLLM: generate while asleep ({sorted(self.asleep)})")
        params = sampling_params
        self.events.append(("generate", len(prompts), params))
        engine = HFRolloutEngine(self.hf_model, self.tokenizer)
        r1_params = R1Sampling(
            max_new_tokens=params.max_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            top_k=max(params.top_k, 0),
            stop=tuple(params.stop or ()),
            ignore_eos=params.ignore_eos,
        )
        ids = [p["prompt_token_ids"] for p in prompts]
        rollout = engine.generate(ids, r1_params, params.n)
        results = []
        for i, prompt in enumerate(ids):
            outputs = []
            for j in range(params.n):
                row = i * params.n + j
                length = int(rollout.completion_mask[row].sum())
                tokens = rollout.completion_ids[row, :length].tolist()
                lps = rollout.sampling_logprobs[row, :length].tolist()
                outputs.append(
                    CompletionOutput(
                        index=j,
                        text=rollout.texts[row],
                        token_ids=tokens,
                        cumulative_logprob=sum(lps),
                        logprobs=[{t: Logprob(lp, 1)} for t, lp in zip(tokens, lps)],
                        finish_reason="length" if rollout.ends[row] == "length" else "stop",
                        stop_reason=next(
                            (s for s in r1_params.stop if s in rollout.texts[row]), None
                        )
                        if rollout.ends[row] == "stop"
                        else None,
                    )
                )
            results.append(RequestOutput(str(i), prompt, outputs))
        return results
