"""The GRPO update on the tiny model, and a few steps through scripts/train.py."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import pytest
import torch
from grpo_fixtures import fixed_rollout, make_module, token_logprobs
from run_files import metrics_rows

from r1.checks import ConfigError
from r1.models import load_model
from r1.models.forward import completion_logprobs
from r1.modules import GRPOModule
from r1.rollout.hf import HFRolloutEngine
from r1.rollout.producer import ScoredRollout
from r1.rollout.types import SamplingParams

ROOT = Path(__file__).resolve().parents[2]


def logprob_sums(model, rollout):
    return token_logprobs(model, rollout).sum(1)


def test_one_step_raises_the_positive_and_lowers_the_negative_completion():
    model, tokenizer = load_model("tiny", seed=3)
    rollout = fixed_rollout(tokenizer)
    assert rollout.texts[0] != rollout.texts[1]
    module = make_module(model, tokenizer)
    before = logprob_sums(model, rollout)
    advantages = torch.tensor([1.0, -1.0])
    module.update(ScoredRollout(rollout, torch.tensor([1.0, 0.0]), advantages))
    after = logprob_sums(model, rollout)
    assert after[0] > before[0] and after[1] < before[1]


def test_second_inner_update_sees_a_ratio_other_than_one():
    model, tokenizer = load_model("tiny", seed=3)
    rollout = fixed_rollout(tokenizer)
    module = make_module(model, tokenizer, inner_updates=2)
    ratios = []
    real = module.policy_loss_fn

    def spy(logprobs, old, *args, **kwargs):
        ratios.append(torch.exp(logprobs - old).detach())
        return real(logprobs, old, *args, **kwargs)

    module.policy_loss_fn = spy
    module.update(ScoredRollout(rollout, torch.tensor([1.0, 0.0]), torch.tensor([1.0, -1.0])))
    mask = rollout.completion_mask.bool()
    assert len(ratios) == 2
    torch.testing.assert_close(ratios[0][mask], torch.ones_like(ratios[0][mask]), atol=1e-5, rtol=0)
    assert (ratios[1][mask] - 1).abs().max() > 1e-3


def test_a_later_update_in_one_bf16_autocast_region_forwards_the_updated_weights():
    """Inside one caching autocast region (torch's default; Lightning's own does not cache),
    each weight's bf16 copy is kept until the region exits: the second update must forward
    the weights after the first optimizer step, not the cached copies."""
    model, tokenizer = load_model("tiny", seed=3)
    rollout = fixed_rollout(tokenizer)
    module = make_module(model, tokenizer, inner_updates=2)
    seen, after_first_step = [], []
    real_loss, optimizer = module.policy_loss_fn, module.optimizers()
    real_step = optimizer.step

    def spy(logprobs, *args, **kwargs):
        seen.append(logprobs.detach().clone())
        return real_loss(logprobs, *args, **kwargs)

    def step(*args, **kwargs):
        real_step(*args, **kwargs)
        if not after_first_step:
            after_first_step.append(copy.deepcopy(model))

    module.policy_loss_fn, optimizer.step = spy, step
    with torch.autocast("cpu", dtype=torch.bfloat16):
        module.update(ScoredRollout(rollout, torch.tensor([1.0, 0.0]), torch.tensor([1.0, -1.0])))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):  # a fresh region
        expected, _ = completion_logprobs(
            after_first_step[0],
            rollout.prompt_ids,
            rollout.prompt_mask,
            rollout.completion_ids,
            rollout.completion_mask,
            rollout.group_size,
        )
    mask = rollout.completion_mask.bool()
    torch.testing.assert_close(seen[1][mask], expected[mask], atol=1e-6, rtol=0)


def test_shared_prefix_equals_full_forward_in_logprobs_and_gradients():
    model, tokenizer = load_model("tiny", seed=3)
    engine = HFRolloutEngine(model, tokenizer)
    prompts = [
        tokenizer(q, add_special_tokens=False)["input_ids"] for q in ("What is 2 + 3?", "Hi")
    ]
    rollout = engine.generate(prompts, SamplingParams(max_new_tokens=6), n=3)
    grads = []
    for shared in (True, False):
        model.zero_grad()
        lp, _ = completion_logprobs(
            model,
            rollout.prompt_ids,
            rollout.prompt_mask,
            rollout.completion_ids,
            rollout.completion_mask,
            3,
            shared_prefix=shared,
        )
        (lp * rollout.completion_mask).sum().backward()
        grads.append((lp.detach(), [p.grad.clone() for p in model.parameters()]))
    mask = rollout.completion_mask.bool()
    torch.testing.assert_close(grads[0][0][mask], grads[1][0][mask], atol=1e-4, rtol=1e-4)
    for a, b in zip(grads[0][1], grads[1][1]):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-3)


def test_masked_truncated_completions_do_not_move_the_policy():
    model, tokenizer = load_model("tiny", seed=3)
    rollout = fixed_rollout(tokenizer)
    rollout.ends = ["length", "length"]
    module = make_module(model, tokenizer, mask_truncated=True)
    before = copy.deepcopy(model.state_dict())
    module.update(ScoredRollout(rollout, torch.tensor([1.0, 0.0]), torch.tensor([1.0, -1.0])))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_reference_model_only_with_kl():
    model, tokenizer = load_model("tiny")
    without = make_module(model, tokenizer, kl_coef=0.0)
    without.setup("fit")
    assert without.ref_model is None
    with_kl = make_module(model, tokenizer, kl_coef=0.1)
    with_kl.setup("fit")
    assert with_kl.ref_model is not None and not any(
        p.requires_grad for p in with_kl.ref_model.parameters()
    )


@pytest.mark.parametrize(
    "max_new_tokens, release, returned", [(4, True, False), (64, True, True), (64, False, False)]
)
def test_runs_whose_groups_outgrow_the_token_budget_return_large_blocks(
    monkeypatch, max_new_tokens, release, returned
):
    from r1 import malloc

    calls = []
    monkeypatch.setattr(malloc, "return_large_blocks", lambda: calls.append(1))
    model, tokenizer = load_model("tiny")
    module = make_module(
        model,
        tokenizer,
        checkpoint_above_tokens=100,  # a group of 2 x 64 new tokens is more
        release_large_blocks=release,
        sampling={"max_new_tokens": max_new_tokens},
    )
    module.setup("fit")
    assert bool(calls) == returned


@pytest.mark.parametrize(
    "setting, message",
    [
        ({"group_size": 1}, "module.group_size=1 must be >= 2 (GRPO advantages are relative"),
        ({"group_size": "abc"}, "module.group_size='abc' (str) must be an integer >= 2"),
        ({"inner_updates": 0}, "module.inner_updates=0 must be >= 1"),
        ({"clip_low": -0.1}, "module.clip_low=-0.1 must be in [0.0, 1.0]"),
        ({"clip_high": -1}, "module.clip_high=-1 must be >= 0.0"),
        ({"kl_coef": -0.01}, "module.kl_coef=-0.01 must be >= 0.0"),
        ({"dual_clip": 1.0}, "module.dual_clip=1.0 must be > 1.0"),
        ({"advantage": "gae"}, "module.advantage='gae' is not valid; choose one of: grpo,"),
        ({"loss_aggregation": "sum"}, "module.loss_aggregation='sum' is not valid"),
        ({"kl_estimator": "k4"}, "module.kl_estimator='k4' is not valid; choose one of: k1, k2"),
        ({"sampling": {"temprature": 0.6}}, "unknown sampling setting(s) temprature; valid:"),
        ({"sampling": {"top_p": 0}}, "sampling.top_p=0 must be in (0.0, 1.0]"),
        ({"warmup_steps": 1.5}, "module.warmup_steps=1.5 (float) must be an integer >= 0"),
        ({"max_nonfinite_steps": 0}, "module.max_nonfinite_steps=0 must be >= 1"),
    ],
)
def test_bad_settings_are_named(tiny, setting, message):
    model, tokenizer = tiny
    with pytest.raises(ConfigError) as error:
        GRPOModule(model, tokenizer, optimizer=None, reward=None, **setting)
    assert message in str(error.value)


GRPO_METRICS = {
    "train/reflection_words",
    "train/reflection_rate",
    "train/empty_completions",
    "train/skipped_steps",
    "train/reward",
    "train/reward/accuracy",
    "train/reward/format",
    "train/kl",
    "train/clip_ratio",
    "train/entropy",
    "train/completion_len",
    "val/accuracy",
    "rollout/tokens_per_s",
    "perf/step_s",
    "train/loss",
    "train/stop_rate",
    # behaviour curves (r1.eval.behaviour): the tiny model's random text is never right
    "train/reflection_rate/wait",
    "train/reflection_rate/检查",
    "train/completion_len_incorrect",
    "train/repetition_rate",
    "train/language_mixing_rate",
    "val/reflection_rate/wait",
    "val/completion_len_incorrect",
}


def test_tiny_grpo_run_through_train_script(tmp_path):
    import subprocess

    run_dir = tmp_path / "run"
    command = [
        sys.executable,
        "scripts/train.py",
        "stage=grpo",
        "model=tiny",
        f"hydra.run.dir={run_dir}",
        "data.num_train=16",
        "data.num_val=4",
        "module.group_size=8",
        "data.batch_size=2",
        "module.sampling.max_new_tokens=10",
        "trainer.max_steps=3",
        "module.kl_coef=0.1",
        "module.inner_updates=1",
        "trainer.precision=32-true",
        "module.optimizer.lr=1e-3",
        "reward=repetition",  # varies on random text: non-zero advantages, so the policy moves
        "module.dynamic_sampling=false",
        "module.val_k=2",
        "module.sample_table_every=2",
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = metrics_rows(run_dir)
    logged = {k for r in rows for k, v in r.items() if v}
    assert GRPO_METRICS <= logged, GRPO_METRICS - logged
    steps = sorted({int(r["step"]) for r in rows if r.get("train/loss")})
    assert steps == [0, 1, 2]
    assert any(float(r["train/kl"]) > 0 for r in rows if r.get("train/kl"))
    assert (run_dir / "checkpoint" / "config.json").exists()
    sampled = [r for r in rows if r.get("val/pass@1")]
    assert len(sampled) == 2  # before and after training
    assert all(float(r["val/pass@k"]) >= float(r["val/pass@1"]) for r in sampled)
    samples = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
    assert [s["step"] for s in samples] == [0] * 16 + [2] * 16  # 2 prompts x G=8, steps 0 and 2
    assert {"prompt", "completion", "reward", "reward/repetition"} <= set(samples[0])


def test_a_token_budget_splits_the_step_into_micro_batches_without_changing_it():
    """micro_batch_tokens: 3 prompts x 2 rows of W padded tokens. A budget of 4W tokens holds
    2 prompts (micro-batches of 2 and 1), a budget below one prompt still takes one; the
    weights after the step are the unsplit step's."""
    _, tokenizer = load_model("tiny", seed=3)
    engine = HFRolloutEngine(load_model("tiny", seed=3)[0], tokenizer)
    prompts = [tokenizer(q, add_special_tokens=False)["input_ids"] for q in ("2 + 3?", "Hi", "7")]
    torch.manual_seed(0)
    rollout = engine.generate(prompts, SamplingParams(max_new_tokens=5), n=2)
    width = rollout.prompt_ids.shape[1] + rollout.completion_ids.shape[1]
    scored = ScoredRollout(rollout, torch.zeros(6), torch.tensor([1.0, -1.0, 0.5, -0.5, 2.0, -2.0]))
    everything = torch.ones(3, dtype=torch.bool)
    weights = {}
    for budget, sizes in ((None, [3]), (4 * width, [2, 1]), (width, [1, 1, 1])):
        model = load_model("tiny", seed=3)[0]
        module = make_module(model, tokenizer, micro_batch_tokens=budget)
        assert [int(m.sum()) for m in module.micro_batches(everything, width)] == sizes
        calls = []
        real = module.micro_batch_loss
        module.micro_batch_loss = lambda *a, calls=calls, real=real, **k: (
            calls.append(1) or real(*a, **k)
        )
        module.update(scored)
        assert len(calls) == len(sizes)
        weights[budget] = dict(model.named_parameters())
    for split in (4 * width, width):
        for name, value in weights[None].items():
            torch.testing.assert_close(weights[split][name], value, atol=1e-6, rtol=1e-5)


def test_behaviour_splits_lengths_by_the_outcome_and_level_the_producer_recorded():
    from rollout_fixtures import text_rollout

    model, tokenizer = load_model("tiny", seed=3)
    module = make_module(model, tokenizer)
    rollout = text_rollout([[2], [3]], ["a b c", "a", "x y z", "x y z"], 2)
    rollout.completion_mask[1, 1:] = 0  # lengths 3, 1, 3, 3
    correct = torch.tensor([1.0, 0.0, float("nan"), 1.0])  # the third: no correctness term
    scored = ScoredRollout(rollout, torch.zeros(4), torch.zeros(4), correct=correct,
                           levels=[2, 2, 5, 5])  # fmt: skip
    metrics = module.behaviour(scored)
    assert metrics["train/completion_len_correct"] == 3.0
    assert metrics["train/completion_len_incorrect"] == 1.0
    assert metrics["train/completion_len_level_2"] == 2.0
    assert metrics["train/completion_len_level_5"] == 3.0
    # a rollout scored without outcomes (tests, PPO's fakes): no split, nothing invented
    unlabelled = module.behaviour(ScoredRollout(rollout, torch.zeros(4), torch.zeros(4)))
    assert not any("completion_len_" in name for name in unlabelled)


@pytest.mark.parametrize("bound, recomputed", [(None, False), (10_000, False), (1, True)])
def test_micro_batches_above_the_token_bound_recompute_activations_same_update(bound, recomputed):
    from r1.models.forward import switchable_checkpointing

    model, tokenizer = load_model("tiny", seed=3)
    rollout = fixed_rollout(tokenizer)
    expected = copy.deepcopy(model)
    make_module(expected, tokenizer).update(
        ScoredRollout(rollout, torch.tensor([1.0, 0.0]), torch.tensor([1.0, -1.0]))
    )
    module = make_module(model, tokenizer, checkpoint_above_tokens=bound)
    module.switchable_checkpointing = bound is not None and switchable_checkpointing(model)
    calls = []
    layer = model.model.layers[0]
    if bound is not None:
        real = layer._gradient_checkpointing_func
        layer._gradient_checkpointing_func = lambda *a, **k: calls.append(1) or real(*a, **k)
    module.update(ScoredRollout(rollout, torch.tensor([1.0, 0.0]), torch.tensor([1.0, -1.0])))
    assert bool(calls) == recomputed
    assert not model.is_activation_checkpointing  # switched off again after the step
    for got, want in zip(model.parameters(), expected.parameters()):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_held_out_generation_stops_where_the_rollouts_do(monkeypatch):
    import r1.modules.base as base

    model, tokenizer = load_model("tiny")
    module = make_module(model, tokenizer, sampling={"max_new_tokens": 5, "stop": ["</answer>"]})
    seen = []

    def greedy(*args):
        seen.append(args[-1])
        raise StopIteration

    monkeypatch.setattr(base, "generate_greedy", greedy)
    batch = {"prompt_ids": torch.ones(1, 2, dtype=torch.long), "prompt_mask": torch.ones(1, 2)}
    with pytest.raises(StopIteration):
        module.validation_step(batch, 0)
    assert seen == [("</answer>",)]
