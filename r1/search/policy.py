"""The policy as search and labelling need it: continue a prompt plus a partial solution.

Math-Shepherd labelling rolls out to a final answer from each step prefix; MCTS expands a
node by sampling candidate next steps, each stopped at the step separator. Both go through
`continue_texts`, which wraps any `RolloutEngine` (HF or vLLM) and keeps, per continuation,
its tokens, its log-probability and why it stopped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from r1.rollout.types import SamplingParams


@dataclass(frozen=True)
class Continuation:
    text: str  # the generated text (special tokens removed, stop string kept)
    tokens: int  # tokens generated, EOS included
    logprob: float  # sum of the sampled tokens' log-probs under the sampling distribution
    ended: bool  # the model ended the text itself (EOS)
    stopped: bool  # a stop string ended it (False on EOS and on running out of tokens)


def continue_texts(
    engine, tokenizer, texts: Sequence[str], params: SamplingParams, n: int
) -> list[list[Continuation]]:
    """n sampled continuations of each text (prompt + partial solution), one call to the
    engine for all of them. The texts are tokenised whole, as the policy reads a prompt."""
    if not texts:
        return []
    prompt_ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    rollout = engine.generate(prompt_ids, params, n=n)
    eos = tokenizer.eos_token_id
    lengths = rollout.completion_lengths.tolist()
    out: list[list[Continuation]] = []
    for i in range(len(texts)):
        group = []
        for row in range(i * n, (i + 1) * n):
            length = int(lengths[row])
            last = int(rollout.completion_ids[row, length - 1]) if length else None
            finished = bool(rollout.finished[row])
            ended = finished and last == eos
            group.append(
                Continuation(
                    text=rollout.texts[row],
                    tokens=length,
                    logprob=float(rollout.sampling_logprobs[row, :length].sum()),
                    ended=ended,
                    stopped=finished and not ended,
                )
            )
        out.append(group)
    return out
