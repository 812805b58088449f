"""Rollouts with the training model itself (Hugging Face transformers, any device).

Each prompt is prefilled once and its KV cache copied to its G samples, so a group pays for
its (usually longer) prompt once. Decoding samples all N = B * G rows in step; finished rows
feed padding and are masked. Prompts go in chunks of `max_prompts_per_chunk` to bound memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext

import torch

from r1.algorithms.padding import pad_left
from r1.algorithms.sampling import sample_tokens
from r1.models.forward import prefill_groups
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
        # One autocast region for the whole loop: autocast caches the low-precision copies of
        # the weights only until its region exits, so a region per step re-casts every weight
        # for every token.
        autocast = (
            torch.autocast(device.type, dtype=self.autocast_dtype)
            if self.autocast_dtype
            else nullcontext()
        )
        try:
            with autocast:
                return self._decode(model, device, prompts, params, n, pad, eos)
        finally:
            model.train(was_training)

    def _decode(self, model, device, prompts, params: SamplingParams, n: int, pad: int, eos: int):
        ids = pad_left(prompts, pad).to(device)
        mask = pad_left([[1] * len(p) for p in prompts], 0).to(device)
        prefix_logits, cache, positions = prefill_groups(model, ids, mask, n)
        logits = prefix_logits[:, -1].repeat_interleave(n, 0)  # [N, V]
        attention = mask.repeat_interleave(n, 0)  # [N, P + t]
        next_position = positions[:, -1:].repeat_interleave(n, 0) + 1  # [N, 1]
        rows = logits.shape[0]
        done = torch.zeros(rows, dtype=torch.bool, device=device)
        ended_by_eos = torch.zeros(rows, dtype=torch.bool, device=device)
        step_tokens, step_logprobs, step_alive = [], [], []  # each [N] per step
        for step in range(params.max_new_tokens):
            token, logprob = sample_tokens(logits, params.temperature, params.top_p, params.top_k)
            alive = ~done
            step_tokens.append(token)
            step_logprobs.append(logprob)
            step_alive.append(alive)
            hit = alive & (token == eos) if not params.ignore_eos else torch.zeros_like(alive)
            ended_by_eos |= hit
            if params.stop:
                hit |= self._hit_stop_string(
                    torch.stack(step_tokens, 1), torch.stack(step_alive, 1), alive, params.stop
                )
            done |= hit
            if done.all() or step == params.max_new_tokens - 1:
                break
            token = torch.where(alive, token, torch.full_like(token, pad))
            attention = torch.cat([attention, alive.long()[:, None]], dim=1)
            out = model(
                input_ids=token[:, None],
                attention_mask=attention,
                position_ids=next_position,
                past_key_values=cache,
                use_cache=True,
            )
            logits = out.logits[:, -1]
            next_position = next_position + 1
        kept = torch.stack(step_alive, 1).cpu()  # [N, steps]
        token_rows = torch.stack(step_tokens, 1).cpu().tolist()
        logprob_rows = torch.stack(step_logprobs, 1).float().cpu().tolist()
        lengths = kept.sum(1).tolist()
        tokens = [row[:k] for row, k in zip(token_rows, lengths)]
        logprobs = [row[:k] for row, k in zip(logprob_rows, lengths)]
        ends = [
            "eos" if by_eos else "stop" if finished else "length"
            for by_eos, finished in zip(ended_by_eos.cpu().tolist(), done.cpu().tolist())
        ]
        return tokens, logprobs, ends

    def _hit_stop_string(
        self, tokens: torch.Tensor, kept: torch.Tensor, alive: torch.Tensor, stops: Sequence[str]
    ) -> torch.Tensor:
        """[N] True where a still-running row's text now ends in a stop string.
        tokens, kept: [N, t] sampled so far and whether each belongs to its completion."""
        hit = torch.zeros_like(alive)
        for i in alive.nonzero().flatten().tolist():
            row = tokens[i][kept[i]][-STOP_WINDOW:].tolist()
            tail = self.tokenizer.decode(row)
            hit[i] = any(s in tail for s in stops)
        return hit
