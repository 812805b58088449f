"""Rollouts with the training model itself (Hugging Face transformers, any device).

Each prompt is prefilled once and its KV cache copied to its G samples, so a group pays for
its (usually longer) prompt once. Decoding samples all N = B * G rows in step; finished rows
feed padding and are masked. Prompts go in chunks of `max_prompts_per_chunk` to bound memory.

Per token, for Llama-family models: one decode step written out with each layer's weights
fused and prepared once per generation (r1.models.decode_step; other models run their own
forward); the KV cache is written in place (r1.models.decode.GrowingCache), attention for the
one new token is two batched matmuls (r1.models.decode.grouped_attention), the draw is one
uniform number per row (r1.algorithms.sampling), tokens and log-probs go into preallocated
tensors, and only rows whose new token could complete a stop string are decoded to text.
Measured by scripts/bench_rollout.py against the machine's own bound (docs/results/rollout_speed.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager, nullcontext

import torch
from transformers import DynamicCache

from r1.algorithms.padding import pad_left
from r1.algorithms.sampling import sample_tokens
from r1.models.decode import GrowingCache, cache_argument, grouped_attention_on
from r1.models.decode_step import DecodeStep
from r1.models.gather import unsharded
from r1.rollout.types import Rollout, SamplingParams, build_rollout

STOP_WINDOW = 16  # trailing tokens decoded to look for stop strings


class HFRolloutEngine:
    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer,
        max_prompts_per_chunk: int = 64,
        autocast_dtype: str | None = None,
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.max_prompts_per_chunk = max_prompts_per_chunk
        self.autocast_dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16, None: None}[
            autocast_dtype
        ]
        self._stop_tables: dict[tuple, torch.Tensor] = {}
        self._reuse_steps = 0  # > 0 inside same_weights()
        self._kept_step: tuple[tuple, DecodeStep | None] | None = None

    @contextmanager
    def same_weights(self):
        """Inside, generate calls share one prepared decode step (DecodeStep.build casts and
        reorders every weight: ~0.3 s for SmolLM2 on one core, as long as a 16-token
        generation) while the weights stay unchanged; rebuilt if they change all the same
        (their version counters). Released on exit, so the training step never holds it."""
        self._reuse_steps += 1
        try:
            yield
        finally:
            self._reuse_steps -= 1
            if not self._reuse_steps:
                self._kept_step = None

    def _decode_step(self, model, rows: int) -> DecodeStep | None:
        if not self._reuse_steps:
            return DecodeStep.build(model, rows)
        device = next(model.parameters()).device
        key = (
            id(model),
            torch.get_autocast_dtype(device.type)
            if torch.is_autocast_enabled(device.type)
            else None,
            tuple(p._version for p in model.parameters()),
        )
        if self._kept_step is None or self._kept_step[0] != key:
            self._kept_step = None  # the old copy goes before the new one is made
            self._kept_step = (key, DecodeStep.build(model, rows))
        return self._kept_step[1]

    def update_weights(self, model: torch.nn.Module) -> None:
        self.model = model  # samples with the training model: nothing to copy

    def generate(
        self, prompt_ids: Sequence[Sequence[int]], params: SamplingParams, n: int
    ) -> Rollout:
        with unsharded(self.model):  # FSDP2: gather once, decode locally
            pieces = [
                self._generate_chunk(prompt_ids[i : i + self.max_prompts_per_chunk], params, n)
                for i in range(0, len(prompt_ids), self.max_prompts_per_chunk)
            ]
        tokens = [row for piece in pieces for row in piece[0]]
        logprobs = [row for piece in pieces for row in piece[1]]
        ends = [e for piece in pieces for e in piece[2]]
        return build_rollout(self.tokenizer, prompt_ids, tokens, logprobs, ends, n)

    @torch.no_grad()
    def _generate_chunk(self, prompts: Sequence[Sequence[int]], params: SamplingParams, n: int):
        model, device = self.model, next(self.model.parameters()).device
        pad, eos = self.tokenizer.pad_token_id, self.tokenizer.eos_token_id
        was_training = model.training
        model.eval()
        # One caching autocast region for the whole loop: autocast keeps the low-precision
        # copies of the weights only until its region exits, so a region per step re-casts
        # every weight for every token. Lightning's region does not cache, and a nested region
        # inherits that unless told: cache_enabled=True. Inside a caller's region (held-out
        # generation) the engine opens its own of the same dtype.
        dtype = self.autocast_dtype
        if dtype is None and torch.is_autocast_enabled(device.type):
            dtype = torch.get_autocast_dtype(device.type)
        autocast = (
            torch.autocast(device.type, dtype=dtype, cache_enabled=True) if dtype else nullcontext()
        )
        try:
            with autocast:
                return self._decode(model, device, prompts, params, n, pad, eos)
        finally:
            model.train(was_training)

    def _decode(self, model, device, prompts, params: SamplingParams, n: int, pad: int, eos: int):
        ids = pad_left(prompts, pad).to(device)
        mask = pad_left([[1] * len(p) for p in prompts], 0).to(device)
        prompt_len, budget = ids.shape[1], params.max_new_tokens
        positions = (mask.cumsum(1) - 1).clamp(min=0)
        prefix = DynamicCache()
        out = model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            logits_to_keep=1,
            **{cache_argument(model): prefix},
        )
        logits = out.logits[:, -1].repeat_interleave(n, 0)  # [N, V]
        rows = logits.shape[0]
        step_logits = self._decode_step(model, rows)  # None: the model's own forward per token
        # The last sampled token is never fed back: P + budget - 1 positions are ever written.
        cache = GrowingCache(
            prefix,
            n,
            limit=prompt_len + budget - 1,
            dtype=step_logits.compute_dtype if step_logits else None,
        )
        del prefix, out
        attend = torch.zeros(rows, 1, 1, prompt_len + budget - 1, dtype=torch.bool, device=device)
        attend[:, 0, 0, :prompt_len] = mask.bool().repeat_interleave(n, 0)
        next_position = positions[:, -1:].repeat_interleave(n, 0) + 1  # [N, 1]
        tokens = torch.full((rows, budget), pad, dtype=torch.long, device=device)
        logprobs = torch.zeros(rows, budget, dtype=torch.float32, device=device)
        kept = torch.zeros(rows, budget, dtype=torch.bool, device=device)
        done = torch.zeros(rows, dtype=torch.bool, device=device)
        ended_by_eos = torch.zeros(rows, dtype=torch.bool, device=device)
        may_stop = self._stop_candidates(params.stop, logits.shape[-1], device)
        # Asking whether every row has finished waits for the device: on an accelerator ask
        # every few steps (a finished row's extra tokens are not kept); on CPU it costs nothing.
        check_every = 1 if device.type == "cpu" else 8
        with grouped_attention_on(model):
            for step in range(budget):
                token, logprob = sample_tokens(
                    logits, params.temperature, params.top_p, params.top_k
                )
                alive = ~done
                tokens[:, step], logprobs[:, step], kept[:, step] = token, logprob, alive
                hit = alive & (token == eos) if not params.ignore_eos else torch.zeros_like(alive)
                ended_by_eos |= hit
                if may_stop is not None:
                    hit |= self._hit_stop_string(
                        tokens[:, : step + 1], kept[:, : step + 1], alive & may_stop[token], params
                    )
                done |= hit
                if step == budget - 1 or (step % check_every == check_every - 1 and done.all()):
                    break
                attend[:, 0, 0, prompt_len + step] = alive
                fed = torch.where(alive, token, pad)
                visible = attend[:, :, :, : cache.width(prompt_len + step + 1)]
                if step_logits is not None:
                    logits = step_logits(fed, next_position, cache, visible)
                else:
                    logits = model(
                        input_ids=fed[:, None],
                        attention_mask=visible,
                        position_ids=next_position,
                        use_cache=True,
                        logits_to_keep=1,
                        **{cache_argument(model): cache},
                    ).logits[:, -1]
                next_position = next_position + 1
        lengths = kept.sum(1).cpu().tolist()
        token_rows, logprob_rows = tokens.cpu().tolist(), logprobs.cpu().tolist()
        token_rows = [row[:k] for row, k in zip(token_rows, lengths)]
        logprob_rows = [row[:k] for row, k in zip(logprob_rows, lengths)]
        ends = [
            "eos" if by_eos else "stop" if finished else "length"
            for by_eos, finished in zip(ended_by_eos.cpu().tolist(), done.cpu().tolist())
        ]
        return token_rows, logprob_rows, ends

    def _stop_candidates(self, stops: Sequence[str], vocab: int, device) -> torch.Tensor | None:
        """[V] True for the tokens after which a row's text may newly end in a stop string: those
        whose text holds a stop string's last character, or an incomplete UTF-8 sequence (its
        text depends on the next token). Only rows that sampled one are decoded to check."""
        if not stops:
            return None
        key = (tuple(stops), vocab, str(device))
        if key not in self._stop_tables:
            last = {s[-1] for s in stops if s}
            known = min(vocab, len(self.tokenizer))
            pieces = self.tokenizer.batch_decode([[i] for i in range(known)])
            table = torch.ones(vocab, dtype=torch.bool)  # ids the tokenizer lacks: always check
            if not any(c.isspace() for c in last):  # decoders may drop a token's leading space
                table[:known] = torch.tensor(
                    [("\ufffd" in p) or any(c in p for c in last) for p in pieces]
                )
            self._stop_tables[key] = table.to(device)
        return self._stop_tables[key]

    def _hit_stop_string(
        self, tokens: torch.Tensor, kept: torch.Tensor, check: torch.Tensor, params: SamplingParams
    ) -> torch.Tensor:
        """[N] True where a row to check now ends in a stop string.
        tokens, kept: [N, t] sampled so far and whether each belongs to its completion."""
        hit = torch.zeros_like(check)
        for i in check.nonzero().flatten().tolist():
            row = tokens[i][kept[i]][-STOP_WINDOW:].tolist()
            tail = self.tokenizer.decode(row)
            hit[i] = any(s in tail for s in params.stop)
        return hit
