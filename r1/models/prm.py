"""A process reward model (PRM): the language model with a scalar head read at each step end.

The PRM is a token-classification model with one output (`AutoModelForTokenClassification`,
num_labels=1): the policy's backbone and a linear head on every position. The text it reads
is the prompt and the completion rebuilt from its steps (`r1.text.steps_text`: "<think>\\n",
then each step followed by "\\n"); step i's score is sigmoid(head(hidden state)) at the last
token of step i, its "\\n". Prompt and steps are tokenised piece by piece, so the step ends are
exact token positions. Training is binary cross-entropy against Math-Shepherd labels (hard 0/1
or soft fractions), on step ends only (`r1.algorithms.losses.step_bce`).

A saved PRM is a plain HF checkpoint (`save_pretrained`), loaded back by `load_prm`. It is
used by the `prm` reward term (its scorer built here: `prm_reward_params`), by GRPO with
process supervision (`ProcessRewards`) and by test-time search (r1.search.searchers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from r1.algorithms.padding import pad_right
from r1.models.loading import LoadOnFirstUse, classifier_from_policy, load_classifier, log
from r1.text import STEP_SEPARATOR, THINK_START, completion_steps


@dataclass(frozen=True)
class StepExample:
    input_ids: list[int]  # prompt tokens, then each step's tokens with its separator
    step_ends: list[int]  # position in input_ids of each step's last token (its separator)
    labels: list[float]  # one per step in step_ends (empty when only scoring)


def encode_steps(
    tokenizer,
    prompt: str,
    steps: Sequence[str],
    labels: Sequence[float] | None = None,
    max_length: int | None = None,
) -> StepExample:
    """Tokenise prompt + steps for the PRM. Steps that would end past `max_length` tokens are
    dropped with their labels (the prompt is always kept whole)."""
    if labels is not None and len(labels) != len(steps):
        raise ValueError(f"{len(labels)} labels for {len(steps)} steps")
    ids = list(tokenizer(prompt + THINK_START, add_special_tokens=False)["input_ids"])
    ends: list[int] = []
    for step in steps:
        piece = tokenizer(step + STEP_SEPARATOR, add_special_tokens=False)["input_ids"]
        if not piece or (max_length is not None and len(ids) + len(piece) > max_length):
            break
        ids.extend(piece)
        ends.append(len(ids) - 1)
    kept = [float(x) for x in labels[: len(ends)]] if labels is not None else []
    return StepExample(input_ids=ids, step_ends=ends, labels=kept)


def collate_steps(examples: Sequence[StepExample], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch: input_ids, attention_mask [B, T]; step_positions, step_labels,
    step_mask [B, S] (S = most steps in the batch; padding steps point at position 0)."""
    width = max((len(e.step_ends) for e in examples), default=0)
    return {
        "input_ids": pad_right([e.input_ids for e in examples], pad_id),
        "attention_mask": pad_right([[1] * len(e.input_ids) for e in examples], 0),
        "step_positions": torch.tensor(
            [e.step_ends + [0] * (width - len(e.step_ends)) for e in examples], dtype=torch.long
        ).view(len(examples), width),
        "step_labels": torch.tensor(
            [e.labels + [0.0] * (width - len(e.labels)) for e in examples], dtype=torch.float32
        ).view(len(examples), width),
        "step_mask": torch.tensor(
            [[True] * len(e.step_ends) + [False] * (width - len(e.step_ends)) for e in examples],
            dtype=torch.bool,
        ).view(len(examples), width),
    }


def step_logits(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The PRM's logit at each step end: [B, S] (fp32; padding steps hold junk, mask them)."""
    logits = model(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False
    ).logits[..., 0]  # [B, T]
    return logits.gather(1, batch["step_positions"]).float()


def prm_from_policy(policy: torch.nn.Module) -> torch.nn.Module:
    """A new PRM on the policy's backbone: the same architecture as a token classifier with
    one output, the backbone's weights copied, a freshly initialised head."""
    from transformers import AutoModelForTokenClassification

    return classifier_from_policy(AutoModelForTokenClassification, policy, "PRM")


def load_prm(
    name: str | None = None,
    path: str | None = None,
    dtype: str = "float32",
    seed: int = 0,
    device: str | None = None,
):
    """A process reward model and its tokenizer: a token-classification model with one
    output, e.g. the `checkpoint/` of a `stage=prm` run. `tiny` builds a random one (tests).
    A checkpoint of another kind (a plain causal LM) loads with an untrained head, which is
    warned about: its scores mean nothing."""
    from transformers import AutoModelForTokenClassification

    model, tokenizer = load_classifier(
        AutoModelForTokenClassification, "PRM", name, path, dtype, seed, device
    )
    architectures = getattr(model.config, "architectures", None) or []
    if architectures and not any(a.endswith("ForTokenClassification") for a in architectures):
        log.warning(
            "PRM %s is a %s checkpoint, not a trained PRM: its step head is untrained",
            path or name,
            architectures[0],
        )
    return model, tokenizer


class PRMScorer:
    """Per-step scores in [0, 1] for (prompt, steps) pairs, batched, without gradients."""

    def __init__(self, model, tokenizer, batch_size: int = 16, max_length: int = 1024):
        self.model, self.tokenizer = model, tokenizer
        self.batch_size, self.max_length = batch_size, max_length

    @torch.no_grad()
    def score(
        self, prompts: Sequence[str], step_lists: Sequence[Sequence[str]]
    ) -> list[list[float]]:
        """One score per step (steps past max_length get none)."""
        model = self.model
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        scores: list[list[float]] = []
        try:
            for start in range(0, len(prompts), self.batch_size):
                examples = [
                    encode_steps(self.tokenizer, p, s, max_length=self.max_length)
                    for p, s in zip(
                        prompts[start : start + self.batch_size],
                        step_lists[start : start + self.batch_size],
                    )
                ]
                batch = collate_steps(examples, self.tokenizer.pad_token_id)
                batch = {k: v.to(device) for k, v in batch.items()}
                probs = torch.sigmoid(step_logits(model, batch)).cpu()
                scores.extend(probs[i, : len(e.step_ends)].tolist() for i, e in enumerate(examples))
        finally:
            model.train(was_training)
        return scores

    def score_completions(
        self, prompts: Sequence[str], completions: Sequence[str], delimiter: str = "auto"
    ) -> list[list[float]]:
        """Score whole completions, cut into steps by `completion_steps`."""
        return self.score(prompts, [completion_steps(c, delimiter) for c in completions])


def prm_scorer(
    name: str | None = None,
    path: str | None = None,
    dtype: str = "float32",
    seed: int = 0,
    batch_size: int = 16,
    max_length: int = 1024,
    device: str | None = None,
) -> PRMScorer:
    """A `PRMScorer` on the PRM `load_prm` loads by built-in name, hub id or directory."""
    model, tokenizer = load_prm(name=name, path=path, dtype=dtype, seed=seed, device=device)
    return PRMScorer(model, tokenizer, batch_size=batch_size, max_length=max_length)


def prm_reward_params(
    path: str | None = None,
    name: str | None = None,
    dtype: str = "float32",
    seed: int = 0,
    batch_size: int = 16,
    max_length: int = 1024,
    **term: Any,
) -> dict[str, Any]:
    """The params of the `prm` reward term (r1.rewards.prm.prm_score), as conf/reward/prm.yaml
    builds them (`params._target_`): `scorer`, the PRM of `path` or built-in `name`, loaded
    here (reward terms never load models) on its first use, and the term's own settings
    (aggregate, delimiter) as they are."""
    scorer = LoadOnFirstUse(
        prm_scorer,
        name=name,
        path=path,
        dtype=dtype,
        seed=seed,
        batch_size=batch_size,
        max_length=max_length,
    )
    return {"scorer": scorer, **term}


def token_steps(
    token_ids: Sequence[int], tokenizer, newline_cache: dict[int, bool] | None = None
) -> tuple[list[str], list[int]]:
    """A completion's steps read off its tokens, for dense per-step rewards: (step texts,
    index of each step's last token). A step ends at a token whose text holds a newline, or
    at the last token; pieces that are blank or only the opening <think> are no step (as in
    `completion_steps`, so the PRM sees the same steps either way)."""
    texts: list[str] = []
    ends: list[int] = []
    start = 0
    cache = {} if newline_cache is None else newline_cache  # token id -> holds a newline
    for i, token in enumerate(token_ids):
        if token not in cache:
            cache[token] = "\n" in tokenizer.decode([token])
        if i < len(token_ids) - 1 and not cache[token]:
            continue
        piece = tokenizer.decode(list(token_ids[start : i + 1]), skip_special_tokens=True)
        start = i + 1
        for line in piece.split("\n"):
            text = line.strip()
            if text and text != THINK_START.strip():
                texts.append(text)
                ends.append(i)
    return texts, ends


class ProcessRewards:
    """Per-step PRM rewards of a rollout for GRPO with process supervision: for each
    completion, its steps' scores and the token index where each step ends
    (r1.algorithms.advantages.process_advantages). The rollout is anything with
    completion_ids [N, T], completion_lengths [N] and group_size (r1.rollout.types.Rollout)."""

    def __init__(self, scorer: PRMScorer):
        self.scorer = scorer
        self.newline_tokens: dict[int, bool] = {}  # each token id decoded once per run

    def __call__(
        self, rollout, prompts: Sequence[str]
    ) -> tuple[list[list[float]], list[list[int]]]:
        tokenizer = self.scorer.tokenizer
        lengths = rollout.completion_lengths.tolist()
        steps, ends = [], []
        for row, length in enumerate(lengths):
            texts, positions = token_steps(
                rollout.completion_ids[row, : int(length)].tolist(), tokenizer, self.newline_tokens
            )
            steps.append(texts)
            ends.append(positions)
        group = rollout.group_size
        scores = self.scorer.score([prompts[i // group] for i in range(len(steps))], steps)
        # Steps past the scorer's max_length got no score: they get no reward either.
        ends = [e[: len(s)] for e, s in zip(ends, scores)]
        return scores, ends
