from __future__ import annotations

import pytest
import torch

from r1.algorithms.sampling import sample_tokens
from r1.models.forward import completion_logprobs
from r1.rollout.hf import HFRolloutEngine
from r1.rollout.types import SamplingParams, concat_rollouts, select_groups


def prompts(tokenizer):
    return [
        tokenizer(q, add_special_tokens=False)["input_ids"]
        for q in ("What is 2 + 3?", "Hi", "Count: 1 2 3 4 5")
    ]


def test_rollout_shapes_masks_and_groups(tiny):
    model, tokenizer = tiny
    torch.manual_seed(0)
    rollout = HFRolloutEngine(model, tokenizer).generate(
        prompts(tokenizer), SamplingParams(max_new_tokens=6), n=4
    )
    assert rollout.prompt_ids.shape[0] == 3 and rollout.completion_ids.shape[0] == 12
    assert rollout.group_size == 4 and len(rollout.texts) == 12
    lengths = rollout.completion_mask.sum(1)
    assert (lengths >= 1).all() and (lengths <= 6).all()
    # the mask is a prefix of ones; finished rows end with EOS or stop, unfinished ones used the budget
    for row, n in zip(rollout.completion_mask, lengths):
        assert row[:n].all() and not row[n:].any()
    eos = tokenizer.eos_token_id
    for ids, n, done in zip(rollout.completion_ids, lengths, rollout.finished):
        assert done == (ids[n - 1] == eos) or (not done and n == 6)


def test_sampling_logprobs_match_the_training_forward(tiny):
    """The engine's per-token log-probs are those the policy update recomputes (mu > 1 and
    importance corrections rely on it)."""
    model, tokenizer = tiny
    torch.manual_seed(1)
    params = SamplingParams(max_new_tokens=8, temperature=0.7)
    rollout = HFRolloutEngine(model, tokenizer).generate(prompts(tokenizer), params, n=3)
    with torch.no_grad():
        logprobs, _ = completion_logprobs(
            model,
            rollout.prompt_ids,
            rollout.prompt_mask,
            rollout.completion_ids,
            rollout.completion_mask,
            3,
            temperature=0.7,
        )
    mask = rollout.completion_mask.bool()
    torch.testing.assert_close(
        logprobs[mask], rollout.sampling_logprobs[mask], atol=2e-4, rtol=1e-4
    )


def test_greedy_is_independent_of_batching_and_padding(tiny):
    model, tokenizer = tiny
    engine = HFRolloutEngine(model, tokenizer, max_prompts_per_chunk=1)
    params = SamplingParams(max_new_tokens=6, temperature=0)
    together = HFRolloutEngine(model, tokenizer).generate(prompts(tokenizer), params, n=2)
    apart = engine.generate(prompts(tokenizer), params, n=2)
    assert together.texts == apart.texts
    assert together.texts[0] == together.texts[1]  # greedy: the G samples agree


def test_stop_strings_end_a_completion_and_stay_in_it(tiny):
    model, tokenizer = tiny
    engine = HFRolloutEngine(model, tokenizer)
    free = engine.generate(
        prompts(tokenizer)[:1], SamplingParams(max_new_tokens=8, temperature=0), n=1
    )
    stop = free.texts[0][2:4]  # a piece the model is known to produce
    assert stop.strip(), free.texts
    stopped = engine.generate(
        prompts(tokenizer)[:1], SamplingParams(max_new_tokens=8, temperature=0, stop=(stop,)), n=1
    )
    assert stop in stopped.texts[0] and bool(stopped.finished[0])
    assert stopped.completion_mask.sum() < free.completion_mask.sum()


def test_completions_of_a_prompt_that_opened_the_think_block_are_read_with_the_tag(tiny):
    model, tokenizer = tiny
    opened = tokenizer("What is 2 + 3? <think>", add_special_tokens=False)["input_ids"]
    inside = tokenizer("What is 2 + 3? <think>\n1 + 1 = 2", add_special_tokens=False)["input_ids"]
    torch.manual_seed(0)
    rollout = HFRolloutEngine(model, tokenizer).generate(
        [opened, inside], SamplingParams(max_new_tokens=4, temperature=0), n=2
    )
    decoded = tokenizer.batch_decode(rollout.completion_ids, skip_special_tokens=True)
    assert rollout.texts[:2] == ["<think>" + t for t in decoded[:2]]
    assert rollout.texts[2:] == decoded[2:]  # a prompt inside a trace (search) is left as is


def test_engine_restores_train_mode(tiny):
    model, tokenizer = tiny
    model.train()
    HFRolloutEngine(model, tokenizer).generate(
        prompts(tokenizer)[:1], SamplingParams(max_new_tokens=2), n=2
    )
    assert model.training
    model.eval()


def test_select_and_concat_rollouts(tiny):
    model, tokenizer = tiny
    engine = HFRolloutEngine(model, tokenizer)
    a = engine.generate(prompts(tokenizer), SamplingParams(max_new_tokens=3), n=2)
    b = engine.generate(prompts(tokenizer)[:1], SamplingParams(max_new_tokens=5), n=2)
    picked = select_groups(a, torch.tensor([True, False, True]))
    assert picked.num_prompts == 2 and picked.texts == a.texts[:2] + a.texts[4:]
    joined = concat_rollouts([picked, b])
    assert joined.num_prompts == 3 and joined.completion_ids.shape[0] == 6
    assert joined.completion_mask[:4].sum() == picked.completion_mask.sum()


def test_sampling_params_are_checked():
    with pytest.raises(ValueError, match=r"sampling.top_p=1.5 must be in \(0.0, 1.0\]"):
        SamplingParams(top_p=1.5)
    with pytest.raises(ValueError, match="sampling.max_new_tokens=0 must be >= 1"):
        SamplingParams(max_new_tokens=0)


def test_top_k_and_top_p_restrict_the_draw():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])).repeat(2000, 1)
    tokens, logprobs = sample_tokens(logits, temperature=1.0, top_k=2)
    assert set(tokens.tolist()) == {0, 1}
    torch.testing.assert_close(
        logprobs[tokens == 0],
        torch.full_like(logprobs[tokens == 0], torch.log(torch.tensor(0.5)).item()),
    )
    # top_p = 0.8: tokens 0 and 1 reach 0.8; token 2 (the cumulative mass before it is 0.8) is out
    tokens, _ = sample_tokens(logits, temperature=1.0, top_p=0.8)
    assert set(tokens.tolist()) == {0, 1}
    tokens, _ = sample_tokens(logits, temperature=1.0, top_p=0.81)
    assert set(tokens.tolist()) == {0, 1, 2}
    greedy, _ = sample_tokens(logits[:3], temperature=0)
    assert greedy.tolist() == [0, 0, 0]


def test_ignore_eos_decodes_every_row_to_the_budget():
    """ignore_eos (benchmarks, vLLM's option of the same name): EOS no longer ends a row."""
    from r1.models.loading import load_model

    model, tokenizer = load_model("tiny", seed=0)
    model.generation_config.eos_token_id = None
    engine = HFRolloutEngine(model, tokenizer)

    def only_eos(module, inputs, logits):  # every sampled token is EOS
        forced = torch.full_like(logits, -1e4)
        forced[..., tokenizer.eos_token_id] = 0.0
        return forced

    model.lm_head.register_forward_hook(only_eos)
    prompt = [tokenizer("hello")["input_ids"]]
    stopped = engine.generate(prompt, SamplingParams(max_new_tokens=6, temperature=0), 2)
    ignored = engine.generate(
        prompt, SamplingParams(max_new_tokens=6, temperature=0, ignore_eos=True), 2
    )
    assert stopped.completion_lengths.tolist() == [1, 1] and stopped.ends == ["eos", "eos"]
    assert ignored.completion_lengths.tolist() == [6, 6] and ignored.ends == ["length", "length"]


def test_draw_follows_the_weights():
    """Inverse-CDF draws: zero-weight entries never come out, frequencies match the weights
    (hand-set weights 1:3:0:6, 40,000 draws: each share within 0.01 of 0.1, 0.3, 0, 0.6)."""
    from r1.algorithms.sampling import draw

    weights = torch.tensor([[1.0, 3.0, 0.0, 6.0]]).repeat(40_000, 1)
    generator = torch.Generator().manual_seed(0)
    counts = torch.bincount(draw(weights.cumsum(-1), generator), minlength=4).float() / 40_000
    torch.testing.assert_close(counts, torch.tensor([0.1, 0.3, 0.0, 0.6]), atol=0.01, rtol=0)
    assert counts[2] == 0


def test_top_p_past_the_candidates_matches_a_full_sort():
    """A flat distribution: the nucleus is wider than NUCLEUS_CANDIDATES, so the full sort runs;
    every token of the nucleus can come out and none outside it."""
    from r1.algorithms.sampling import NUCLEUS_CANDIDATES

    vocab = NUCLEUS_CANDIDATES * 4
    logits = torch.zeros(4000, vocab)
    logits[:, : vocab // 2] = 1.0  # the top half holds ~73% of the mass
    tokens, _ = sample_tokens(logits, top_p=0.5, generator=torch.Generator().manual_seed(0))
    assert tokens.max() < vocab // 2 and len(set(tokens.tolist())) > NUCLEUS_CANDIDATES


def test_greedy_matches_hugging_face_generate(tiny):
    """The preallocated cache and the decode attention decode what transformers' own
    `generate` (DynamicCache, SDPA) decodes, token for token, padded prompts included."""
    model, tokenizer = tiny
    ids = prompts(tokenizer)
    rollout = HFRolloutEngine(model, tokenizer).generate(
        ids, SamplingParams(max_new_tokens=20, temperature=0, ignore_eos=True), n=2
    )
    width = max(len(p) for p in ids)
    batch = {
        "input_ids": torch.tensor([[tokenizer.pad_token_id] * (width - len(p)) + p for p in ids]),
        "attention_mask": torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in ids]),
    }
    with torch.no_grad():
        reference = model.generate(
            **batch, max_new_tokens=20, min_new_tokens=20, do_sample=False, use_cache=True
        )[:, width:]
    assert rollout.completion_ids.tolist() == reference.repeat_interleave(2, 0).tolist()


def test_bf16_sampling_logprobs_match_the_training_forward_under_autocast(tiny):
    """Under bf16 autocast (how training runs) the engine's log-probs are the training
    forward's within bf16 rounding, over a 40-token completion."""
    model, tokenizer = tiny
    torch.manual_seed(3)
    params = SamplingParams(max_new_tokens=40, temperature=1.0, ignore_eos=True)
    rollout = HFRolloutEngine(model, tokenizer, autocast_dtype="bfloat16").generate(
        prompts(tokenizer), params, n=2
    )
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        logprobs, _ = completion_logprobs(
            model,
            rollout.prompt_ids,
            rollout.prompt_mask,
            rollout.completion_ids,
            rollout.completion_mask,
            2,
        )
    mask = rollout.completion_mask.bool()
    gap = (logprobs[mask] - rollout.sampling_logprobs[mask]).abs()
    assert gap.mean() < 0.02 and gap.max() < 0.15, (gap.mean(), gap.max())


def test_inside_a_non_caching_autocast_region_weights_are_cast_once(tiny):
    """Held-out generation runs inside Lightning's autocast region, which does not cache: the
    engine opens its own caching region, so each weight is cast to bf16 a fixed number of times
    per generation (once for the prefill, once for the decode step's fused weights), not once
    per token (counted: casts of the LM head's weight; 12 for 12 tokens without the fix)."""
    model, tokenizer = tiny
    casts = []
    weight_shape = tuple(model.lm_head.weight.shape)
    from torch.utils._python_dispatch import TorchDispatchMode

    class CountWeightCasts(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func is torch.ops.aten._to_copy.default and tuple(args[0].shape) == weight_shape:
                casts.append(func)
            return func(*args, **(kwargs or {}))

    for engine in (
        HFRolloutEngine(model, tokenizer),  # held-out generation
        HFRolloutEngine(model, tokenizer, autocast_dtype="bfloat16"),  # training rollouts
    ):
        counts = []
        for tokens in (6, 12):
            casts.clear()
            params = SamplingParams(max_new_tokens=tokens, ignore_eos=True)
            with (
                torch.autocast("cpu", dtype=torch.bfloat16, cache_enabled=False),
                CountWeightCasts(),
            ):
                engine.generate(prompts(tokenizer)[:1], params, n=2)
            counts.append(len(casts))
        assert counts[0] == counts[1] <= 2, counts


def test_generations_of_one_step_share_the_prepared_weights_until_they_change(tiny, monkeypatch):
    import r1.rollout.hf as hf

    model, tokenizer = tiny
    engine = HFRolloutEngine(model, tokenizer)
    builds = []
    real = hf.DecodeStep.build
    monkeypatch.setattr(
        hf.DecodeStep, "build", staticmethod(lambda m, rows: builds.append(rows) or real(m, rows))
    )
    params = SamplingParams(max_new_tokens=4, temperature=0, ignore_eos=True)
    ids = prompts(tokenizer)
    alone = engine.generate(ids, params, n=1).completion_ids
    with engine.same_weights():
        first = engine.generate(ids, params, n=1).completion_ids
        engine.generate(ids[:1], params, n=2)  # a refill: fewer rows, the same weights
        assert len(builds) == 2  # one outside, one for both calls inside
        with torch.no_grad():
            model.lm_head.weight.mul_(-1)  # an in-place update: its version counter moves
        changed = engine.generate(ids, params, n=1).completion_ids
        assert len(builds) == 3  # rebuilt from the new weights, not the kept copy
    assert engine._kept_step is None  # released: the training step does not hold it
    assert first.tolist() == alone.tolist()
    with torch.no_grad():
        model.lm_head.weight.mul_(-1)
    assert engine.generate(ids, params, n=1).completion_ids.tolist() == alone.tolist()
    assert changed.tolist() != alone.tolist()
