"""The policy as search and labelling need it: continue a prompt plus a partial solution.

Math-Shepherd labelling rolls out to a final answer from each step prefix; MCTS expands a
node by sampling candidate next steps, each stopped at the step separator. Both go through
`continue_texts`, which wraps any `RolloutEngine` (HF or vLLM) and returns each continuation
as a `Generation`: its tokens, their log-probabilities and why it ended (eos | stop | length).
"""

from __future__ import annotations

from collections.abc import Sequence

from r1.rollout.types import Generation, SamplingParams


def continue_texts(
    engine, tokenizer, texts: Sequence[str], params: SamplingParams, n: int
) -> list[list[Generation]]:
    """n sampled continuations of each text (prompt + partial solution), one call to the
    engine for all of them. The texts are tokenised whole, as the policy reads a prompt."""
    if not texts:
        return []
    prompt_ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    generations = engine.generate(prompt_ids, params, n=n).generations()
    return [generations[i * n : (i + 1) * n] for i in range(len(texts))]
