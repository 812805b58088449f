"""Rollouts with vLLM, colocated: every training rank runs its own in-process engine on its
own GPU, generates for its own prompts, and receives the policy's weights after optimizer steps.

The engine is built from the policy's config alone (`load_format="dummy"`: random weights,
nothing read from disk) and gets the real weights before its first generation, so any model
the trainer holds (hub id, local path, tiny, LoRA) works. Weights go parameter by parameter
through `r1.models.gather.full_parameters`, which gathers FSDP2 shards and ZeRO-3 partitions
and merges LoRA adapters out of place; names are the checkpoint names vLLM's `load_weights`
maps onto its fused layers. After a push the prefix cache is reset (cached prompt states
were computed with the old weights).

Sleep mode (`sleep_mode: true`) frees the engine's GPU memory while the trainer works:
    wake_up(weights) -> push -> reset_prefix_cache -> wake_up(kv_cache) -> generate -> sleep
Level 2 discards the weights, so they are pushed before every generation (and sync_every
must be 1); level 1 keeps them in CPU memory.

Log-probs are vLLM's "processed" ones (after temperature and top-k/top-p), the distribution
that actually sampled; the trainer's differ slightly (other kernels): GRPO logs the ratio
(`rollout/is_ratio_*`) and can correct for it (`module.is_correction`).

Tested against a fake with vLLM's method names and signatures (tests/support/fake_vllm);
not run on a GPU here (see the README's support table).
"""

from __future__ import annotations

import atexit
import os
import random
import shutil
from collections.abc import Sequence
from pathlib import Path
from tempfile import mkdtemp
from typing import Any

import torch

from r1.checks import ConfigError, check_choice, check_float, check_int
from r1.models.gather import full_parameters
from r1.rollout.types import Rollout, SamplingParams, build_rollout

VLLM_MISSING = (
    "rollout=vllm needs vLLM, which is not installed: pip install '.[vllm]' (CUDA GPUs "
    "only). On a machine without one, use rollout=hf."
)


def cuda_available() -> bool:
    return torch.cuda.is_available()


def import_vllm():
    try:
        import vllm
    except ImportError as err:
        raise ConfigError(VLLM_MISSING) from err
    return vllm


class VLLMRolloutEngine:
    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        gpu_memory_utilization: float = 0.3,
        sleep_mode: bool = False,
        sleep_level: int = 2,
        sync_every: int = 1,
        max_model_len: int | None = None,
        dtype: str = "bfloat16",
        enable_prefix_caching: bool = True,
        seed: int = 0,
        llm_kwargs: dict[str, Any] | None = None,
        autocast_dtype: str | None = None,  # the HF engine's setting; vLLM has its own dtype
    ):
        check_float(
            "rollout.gpu_memory_utilization",
            gpu_memory_utilization,
            0.0,
            1.0,
            exclusive_minimum=True,
        )
        check_choice("rollout.sleep_level", sleep_level, (1, 2))
        check_int("rollout.sync_every", sync_every, 1)
        if sleep_mode and sleep_level == 2 and sync_every > 1:
            raise ConfigError(
                f"rollout.sync_every={sync_every} with rollout.sleep_level=2: level 2 discards "
                "vLLM's weights, so they are pushed before every generation; use sleep_level=1 "
                "to keep them between syncs"
            )
        self.vllm = import_vllm()
        if not cuda_available():
            raise ConfigError(
                "rollout=vllm needs a CUDA GPU (torch.cuda.is_available() is False); use rollout=hf"
            )
        self.model, self.tokenizer = model, tokenizer
        self.settings = {
            "gpu_memory_utilization": gpu_memory_utilization,
            "enable_sleep_mode": sleep_mode,
            "max_model_len": max_model_len,
            "dtype": dtype,
            "enable_prefix_caching": enable_prefix_caching,
            **dict(llm_kwargs or {}),
        }
        self.sleep_mode, self.sleep_level, self.sync_every = sleep_mode, sleep_level, sync_every
        self.seed = seed
        self.llm = None
        self.stale = True  # the engine's weights are not the policy's (dummy at first)
        self.updates_since_push = 0
        self.weights_asleep = False

    # -- building ---------------------------------------------------------------------------
    def _build(self) -> None:
        rank, world = 0, 1
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
            # vLLM's external launcher joins the trainer's processes (env:// rendezvous).
            os.environ.setdefault("RANK", str(rank))
            os.environ.setdefault("WORLD_SIZE", str(world))
            os.environ.setdefault("LOCAL_RANK", str(rank % max(torch.cuda.device_count(), 1)))
            self.settings.setdefault("distributed_executor_backend", "external_launcher")
        # In-process engine core: its model object is reachable for weight pushes.
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        config_dir = self._config_only_checkpoint(rank)
        states = (random.getstate(), torch.get_rng_state())
        cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
        try:  # vLLM seeds the global generators: the trainer's streams must not move
            self.llm = self.vllm.LLM(
                model=str(config_dir),
                tokenizer=str(config_dir),
                load_format="dummy",
                tensor_parallel_size=1,
                seed=self.seed + rank,  # ranks sample differently
                logprobs_mode="processed_logprobs",
                **{k: v for k, v in self.settings.items() if v is not None},
            )
        finally:
            random.setstate(states[0])
            torch.set_rng_state(states[1])
            if cuda_states is not None:
                torch.cuda.set_rng_state_all(cuda_states)
        if self.sleep_mode:
            self._sleep()

    def _config_only_checkpoint(self, rank: int) -> Path:
        """The policy's config and tokenizer, without weights: what vLLM builds from."""
        directory = Path(mkdtemp(prefix=f"r1-vllm-rank{rank}-"))
        # removed when the process ends (vLLM may read it until the engine is up), so runs
        # and tests leave no directory behind in /tmp
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        self.model.config.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
        return directory

    # -- weights ----------------------------------------------------------------------------
    def update_weights(self, model: torch.nn.Module) -> None:
        """Called after each optimizer step (and at train start): the next generation uses
        these weights if `sync_every` steps have passed since the last push."""
        self.model = model
        self.updates_since_push += 1
        if self.updates_since_push >= self.sync_every:
            self.stale = True

    def _engine_model(self):
        return self.llm.llm_engine.model_executor.driver_worker.worker.model_runner.model

    def _push_weights(self) -> None:
        engine_model = self._engine_model()
        # Every rank gathers (collective for sharded weights), each pushes to its own engine.
        for name, tensor in full_parameters(self.model):
            engine_model.load_weights(weights=[(name, tensor)])
        self.llm.reset_prefix_cache()
        self.stale, self.updates_since_push = False, 0

    def _sleep(self) -> None:
        self.llm.sleep(level=self.sleep_level)
        self.weights_asleep = True
        if self.sleep_level == 2:
            self.stale = True  # discarded: push again before the next generation

    # -- generation -------------------------------------------------------------------------
    def sampling_params(self, params: SamplingParams, n: int):
        return self.vllm.SamplingParams(
            n=n,
            temperature=params.temperature,
            top_p=params.top_p,
            top_k=params.top_k if params.top_k > 0 else -1,  # -1 = off in every vLLM version
            max_tokens=params.max_new_tokens,
            stop=list(params.stop) or None,
            include_stop_str_in_output=True,  # the HF engine keeps stop strings too
            ignore_eos=params.ignore_eos,
            logprobs=0,  # the sampled token's log-prob only
            skip_special_tokens=True,
        )

    def generate(
        self, prompt_ids: Sequence[Sequence[int]], params: SamplingParams, n: int
    ) -> Rollout:
        if self.llm is None:
            self._build()
        if self.weights_asleep:
            self.llm.wake_up(tags=["weights"])
        if self.stale:
            self._push_weights()
        if self.weights_asleep:
            self.llm.wake_up(tags=["kv_cache"])
            self.weights_asleep = False
        greedy = params.temperature == 0
        # vLLM samples a greedy request once: repeat the prompt instead of asking for n.
        requests = [
            {"prompt_token_ids": list(ids)} for ids in prompt_ids for _ in range(n if greedy else 1)
        ]
        outputs = self.llm.generate(
            requests,
            sampling_params=self.sampling_params(params, 1 if greedy else n),
            use_tqdm=False,
        )
        if self.sleep_mode:
            self._sleep()
        samples = [
            sample for output in outputs for sample in sorted(output.outputs, key=lambda s: s.index)
        ]
        tokens = [list(s.token_ids) for s in samples]
        logprobs = [
            [position[token].logprob for position, token in zip(s.logprobs, s.token_ids)]
            for s in samples
        ]
        # finish_reason "stop" is EOS or a stop string: stop_reason names the string (None: EOS)
        ends = [
            "length"
            if s.finish_reason != "stop"
            else "stop"
            if isinstance(getattr(s, "stop_reason", None), str)
            else "eos"
            for s in samples
        ]
        return build_rollout(self.tokenizer, prompt_ids, tokens, logprobs, ends, n)
