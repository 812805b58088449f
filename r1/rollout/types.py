"""The records of generation and the engine interface: the sampling settings an engine takes
(SamplingParams), what it returns (Rollout: a batch; Generation: one completion), and the
RolloutEngine protocol every engine (HF, vLLM) implements."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal, Protocol, runtime_checkable

import torch

from r1.algorithms.padding import pad_left, pad_right
from r1.checks import ConfigError, check_float, check_int
from r1.text import THINK_OPEN, opens_think


@dataclass(frozen=True)
class SamplingParams:
    max_new_tokens: int = 64
    temperature: float = 1.0  # 0 = greedy
    top_p: float = 1.0
    top_k: int = 0  # 0 = off
    stop: tuple[str, ...] = ()  # stop strings (kept in the output), in addition to EOS
    ignore_eos: bool = False  # decode every row to max_new_tokens (benchmarks; vLLM's option)

    def __post_init__(self):
        check_int("sampling.max_new_tokens", self.max_new_tokens, 1)
        check_float("sampling.temperature", self.temperature, 0.0)
        check_float("sampling.top_p", self.top_p, 0.0, 1.0, exclusive_minimum=True)
        check_int("sampling.top_k", self.top_k, 0)


def sampling_params(settings: Mapping[str, Any] | None) -> SamplingParams:
    """SamplingParams from a config mapping; an unknown key is named with the valid ones."""
    settings = dict(settings or {})
    valid = [f.name for f in fields(SamplingParams)]
    unknown = sorted(set(settings) - set(valid))
    if unknown:
        raise ConfigError(
            f"unknown sampling setting(s) {', '.join(unknown)}; valid: {', '.join(valid)}"
        )
    return SamplingParams(**{**settings, "stop": tuple(settings.get("stop") or ())})


END_REASONS = ("eos", "stop", "length")
End = Literal["eos", "stop", "length"]


@dataclass(frozen=True)
class Generation:
    """One completion, the same record wherever r1 generates (training rollouts, held-out
    evaluation, rejection sampling, step labelling, search).

    text: decoded, special tokens removed, a stop string kept; token_ids: the generated
    tokens, EOS included; logprobs: each token's log-prob under the sampling distribution
    (softmax(logits / temperature), before top-p/top-k truncation); end: why it ended: `eos`
    (the model's end token), `stop` (a stop string), `length` (the token budget ran out)."""

    text: str
    token_ids: tuple[int, ...]
    logprobs: tuple[float, ...]
    end: End

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)

    @property
    def logprob(self) -> float:
        """The completion's log-probability under the sampling distribution."""
        return float(sum(self.logprobs))

    @property
    def finished(self) -> bool:
        """It ended within the budget (EOS or a stop string), not by running out of tokens."""
        return self.end != "length"


@dataclass
class Rollout:
    """G completions for each of B prompts: N = B * G rows, a prompt's G rows contiguous.

    prompt_ids, prompt_mask: [B, P] left-padded, one row per prompt (its G samples share it).
    completion_ids: [N, C] right-padded with the pad id.
    completion_mask: [N, C] 1 on generated tokens, up to and including EOS or a stop string.
    sampling_logprobs: [N, C] log-prob of each sampled token under the sampling distribution
      (softmax(logits / temperature), before top-p/top-k truncation); 0 where masked.
    ends: N reasons each completion ended: eos | stop | length (see Generation).
    texts: N decoded completions (special tokens removed, stop strings kept).
    """

    prompt_ids: torch.Tensor
    prompt_mask: torch.Tensor
    completion_ids: torch.Tensor
    completion_mask: torch.Tensor
    sampling_logprobs: torch.Tensor
    ends: list[str]
    texts: list[str]
    group_size: int

    def __post_init__(self):
        unknown = sorted(set(self.ends) - set(END_REASONS))
        if unknown or len(self.ends) != len(self.texts):
            raise ValueError(
                f"{len(self.ends)} end reasons for {len(self.texts)} completions "
                f"(valid: {', '.join(END_REASONS)}; got {unknown or 'the wrong count'})"
            )

    @property
    def finished(self) -> torch.Tensor:  # [N] bool
        """True where a completion ended within the budget (EOS or a stop string)."""
        return torch.tensor([end != "length" for end in self.ends], dtype=torch.bool)

    def generations(self) -> list[Generation]:
        """The N completions as records, a prompt's G contiguous."""
        lengths = self.completion_lengths.tolist()
        ids, logprobs = self.completion_ids.tolist(), self.sampling_logprobs.tolist()
        return [
            Generation(text, tuple(ids[i][: lengths[i]]), tuple(logprobs[i][: lengths[i]]), end)
            for i, (text, end) in enumerate(zip(self.texts, self.ends))
        ]

    @property
    def num_prompts(self) -> int:
        return self.prompt_ids.shape[0]

    @property
    def completion_lengths(self) -> torch.Tensor:  # [N]
        return self.completion_mask.sum(1)

    def to(self, device: torch.device | str) -> Rollout:
        tensors = {k: v.to(device) for k, v in self.__dict__.items() if isinstance(v, torch.Tensor)}
        return Rollout(**{**self.__dict__, **tensors})


THINK_TAIL_TOKENS = 8  # a prompt's last tokens decoded to see whether it opened the think block


def build_rollout(
    tokenizer,
    prompt_ids: Sequence[Sequence[int]],
    tokens: Sequence[Sequence[int]],
    logprobs: Sequence[Sequence[float]],
    ends: Sequence[str],
    group_size: int,
) -> Rollout:
    """A Rollout from an engine's per-sample lists (B prompts; N = B * G completions, each
    prompt's G contiguous): token ids, their sampling log-probs, and why each ended."""
    pad = tokenizer.pad_token_id
    width = max((len(r) for r in logprobs), default=0)
    return Rollout(
        prompt_ids=pad_left(prompt_ids, pad),
        prompt_mask=pad_left([[1] * len(p) for p in prompt_ids], 0),
        completion_ids=pad_right(tokens, pad),
        completion_mask=pad_right([[1] * len(t) for t in tokens], 0),
        sampling_logprobs=torch.tensor(
            [list(r) + [0.0] * (width - len(r)) for r in logprobs], dtype=torch.float32
        ),
        ends=list(ends),
        texts=response_texts(tokenizer, prompt_ids, tokens, group_size),
        group_size=group_size,
    )


def response_texts(tokenizer, prompt_ids, tokens, group_size: int) -> list[str]:
    """The completions decoded, each as the response it continues: where a prompt ends by
    opening the think block (data.template.response_prefix="<think>"), its completions are
    the rest of that block, so the tag goes in front, and rewards, scores and sampled SFT
    data see the whole `<think>..</think><answer>..</answer>` response."""
    texts = tokenizer.batch_decode(tokens, skip_special_tokens=True)
    tails = tokenizer.batch_decode([list(p[-THINK_TAIL_TOKENS:]) for p in prompt_ids])
    opened = [opens_think(tail) for tail in tails]
    return [THINK_OPEN + t if opened[i // group_size] else t for i, t in enumerate(texts)]


def concat_rollouts(parts: list[Rollout]) -> Rollout:
    """Join rollouts of the same group size (e.g. refills of dynamic sampling), re-padding."""
    if len(parts) == 1:
        return parts[0]
    if len({p.group_size for p in parts}) != 1:
        raise ValueError("cannot join rollouts of different group sizes")

    def cat(name: str, left: bool, value: float = 0) -> torch.Tensor:
        tensors = [getattr(p, name) for p in parts]
        width = max(t.shape[1] for t in tensors)
        padded = []
        for t in tensors:
            pad = torch.full(
                (t.shape[0], width - t.shape[1]), value, dtype=t.dtype, device=t.device
            )
            padded.append(torch.cat([pad, t] if left else [t, pad], dim=1))
        return torch.cat(padded)

    # Padded positions are masked everywhere, so the pad value in the id tensors is arbitrary.
    return Rollout(
        prompt_ids=cat("prompt_ids", left=True),
        prompt_mask=cat("prompt_mask", left=True),
        completion_ids=cat("completion_ids", left=False),
        completion_mask=cat("completion_mask", left=False),
        sampling_logprobs=cat("sampling_logprobs", left=False),
        ends=[e for p in parts for e in p.ends],
        texts=[t for p in parts for t in p.texts],
        group_size=parts[0].group_size,
    )


def select_groups(rollout: Rollout, keep: torch.Tensor) -> Rollout:
    """The rollout restricted to the prompts where keep [B] is True (with all their samples)."""
    rows = keep.repeat_interleave(rollout.group_size)
    return Rollout(
        prompt_ids=rollout.prompt_ids[keep],
        prompt_mask=rollout.prompt_mask[keep],
        completion_ids=rollout.completion_ids[rows],
        completion_mask=rollout.completion_mask[rows],
        sampling_logprobs=rollout.sampling_logprobs[rows],
        ends=[e for e, r in zip(rollout.ends, rows.tolist()) if r],
        texts=[t for t, r in zip(rollout.texts, rows.tolist()) if r],
        group_size=rollout.group_size,
    )


@runtime_checkable
class RolloutEngine(Protocol):
    def generate(
        self, prompt_ids: Sequence[Sequence[int]], params: SamplingParams, n: int
    ) -> Rollout:
        """Sample `n` completions for each prompt (token ids, no padding)."""
        ...

    def update_weights(self, model: torch.nn.Module) -> None:
        """Make the engine sample from `model`'s current weights (a no-op for an engine that
        samples with the training model itself)."""
        ...
