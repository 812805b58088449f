"""rollout.async_steps=1 (one-step-off-policy) through Lightning, in process: every prompt batch
is trained on once, one step after it arrives; the staleness bound holds; two runs with one
seed are identical; a run resumed from a checkpoint equals the uninterrupted one bit for bit."""

from __future__ import annotations

import re

import lightning as L
import pytest
import torch
from compose import compose_config
from grpo_fixtures import fixed_rollout, make_module
from hydra.utils import instantiate
from lightning.pytorch.loggers import CSVLogger
from run_files import metrics_rows

from r1.checkpoints import ResumableCheckpoint, list_checkpoints
from r1.checks import ConfigError
from r1.cli import user_error
from r1.models import load_model
from r1.rollout.producer import ScoredRollout

TINY = [
    "stage=grpo",
    "model=tiny",
    "data.num_train=8",  # 4 batches an epoch: 6 steps cross an epoch boundary
    "data.num_val=2",
    "data.batch_size=2",
    "module.group_size=4",
    "module.sampling.max_new_tokens=6",
    "module.max_new_tokens=2",
    "module.optimizer.lr=1e-3",
    "module.kl_coef=0.1",
    "reward=repetition",
    "reward.workers=0",
    "reward.terms.repetition.params.n=1",
    "rollout.async_steps=1",
]
NOISE = {"rollout/s", "rollout/tokens_per_s", "rollout/wait_s", "epoch", "step"}  # and perf/*


class Recorder(L.Callback):
    """The prompts each training step received, and those of the batch it trained on."""

    def __init__(self):
        self.received, self.trained = [], []

    def on_train_start(self, trainer, module):
        train_on = module.train_on

        def recorded(scored, plan=None):
            self.trained.append(prompt_rows(scored))
            return train_on(scored, plan)

        module.train_on = recorded

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.received.append(prompt_rows_of(batch))


def prompt_rows_of(batch) -> list[tuple[int, ...]]:
    return [tuple(ids) for ids in batch["prompt_ids"]]


def prompt_rows(scored: ScoredRollout) -> list[tuple[int, ...]]:
    rollout = scored.rollout
    return [
        tuple(ids[mask.bool()].tolist())
        for ids, mask in zip(rollout.prompt_ids, rollout.prompt_mask)
    ]


def fit(tmp_path, *overrides, max_steps=6, resume=None, every=3, recorder=None):
    cfg = compose_config([*TINY, *overrides], tmp_path)
    L.seed_everything(0)
    model, tokenizer = instantiate(cfg.model)
    datamodule = instantiate(cfg.data, tokenizer=tokenizer)
    datamodule.setup("fit")
    module = instantiate(cfg.module, model=model, tokenizer=tokenizer)
    trainer = L.Trainer(
        default_root_dir=tmp_path,
        accelerator="cpu",
        max_steps=max_steps,
        max_epochs=-1,
        precision="bf16-mixed",
        logger=CSVLogger(tmp_path, name="logs", version=""),
        log_every_n_steps=1,
        callbacks=[ResumableCheckpoint(str(tmp_path / "checkpoints"), every_n_steps=every)]
        + ([recorder] if recorder else []),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        use_distributed_sampler=False,
    )
    trainer.fit(module, datamodule, ckpt_path=resume)
    return module, metrics_rows(tmp_path)


def by_step(rows):
    steps: dict[int, dict[str, str]] = {}
    for row in rows:
        values = {k: v for k, v in row.items() if v and k not in NOISE and "perf/" not in k}
        steps.setdefault(int(row["step"]), {}).update(values)
    return steps


def test_every_batch_trains_once_a_step_late_within_the_staleness_bound(tmp_path):
    recorder = Recorder()
    # without refills, the batch trained on is exactly the batch that arrived
    module, rows = fit(tmp_path, "module.dynamic_sampling=false", recorder=recorder)
    steps = by_step(rows)
    assert sorted(steps) == list(range(6))  # logged at optimizer steps, as synchronously
    assert [float(steps[s]["rollout/staleness"]) for s in range(6)] == [0, 1, 1, 1, 1, 1]
    assert module.is_level == "token"  # async implies the truncated IS correction
    # 7 batches arrived (the first only generates, the last is never started); batch k is
    # trained on at step k, as a synchronous run would.
    assert len(recorder.received) == 7
    assert recorder.trained == recorder.received[:6]
    assert module.pending is None  # nothing generated beside the last update
    assert module.rollouts.running is None


def test_two_runs_with_one_seed_match_and_a_resumed_run_is_bit_identical(tmp_path):
    refills = "module.dynamic_sampling=true"  # from the data module, inside the thread
    first, rows = fit(tmp_path / "a", refills)
    second, again = fit(tmp_path / "b", refills)
    assert by_step(again) == by_step(rows)
    weights = first.model.state_dict()
    assert all(torch.equal(weights[k], v) for k, v in second.model.state_dict().items())

    checkpoint = list_checkpoints(tmp_path / "a" / "checkpoints")[0]
    assert checkpoint.name == "step-00000003.ckpt"
    assert "r1_pending_rollout" in torch.load(checkpoint, weights_only=True)
    resumed, resumed_rows = fit(tmp_path / "c", refills, resume=str(checkpoint))
    expected = {s: v for s, v in by_step(rows).items() if s >= 3}
    assert {s: v for s, v in by_step(resumed_rows).items() if s >= 3} == expected
    assert all(torch.equal(weights[k], v) for k, v in resumed.model.state_dict().items())


@pytest.mark.parametrize(
    "overrides,staleness",
    [
        # mu = 2: two optimizer steps a batch, one more than max_staleness=1 allows: each
        # batch is generated after the update that precedes its own, without overlap
        (["module.inner_updates=2"], [0, 0]),
        # PPO, two shuffled minibatches a batch, allowed: generated beside the update
        (
            [
                "stage=ppo",
                "module.inner_updates=1",
                "module.minibatch_prompts=1",
                "rollout.max_staleness=2",
            ],
            [0, 2],
        ),
    ],
)
def test_the_staleness_bound_holds(tmp_path, overrides, staleness):
    _, rows = fit(tmp_path, *overrides, max_steps=4)
    logged = [float(v["rollout/staleness"]) for _, v in sorted(by_step(rows).items())]
    assert logged == staleness  # one row per batch (optimizer steps 0-1 and 2-3)


def test_the_update_draws_no_randomness():
    """What makes two threads deterministic: the producer thread is the only one drawing from
    the global RNG while the update runs beside it."""
    model, tokenizer = load_model("tiny", seed=3)
    rollout = fixed_rollout(tokenizer)
    module = make_module(model, tokenizer, inner_updates=2, kl_coef=0.1, is_correction="token")
    module.ref_model = load_model("tiny", seed=3)[0].requires_grad_(False)
    scored = ScoredRollout(rollout, torch.tensor([1.0, 0.0]), torch.tensor([1.0, -1.0]))
    model.train()
    before = torch.get_rng_state()
    plan = [module.minibatches(rollout.num_prompts) for _ in range(2)]
    module.train_on(scored, plan)
    assert torch.equal(torch.get_rng_state(), before)


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["rollout.async_steps=2"], "rollout.async_steps=2 is not supported: 0 (synchronous) or 1"),
        (["rollout.max_staleness=0"], "rollout.max_staleness=0 must be >= 1"),
        (["rollout=vllm", "rollout.async_steps=1"], "runs with rollout=hf only"),
        (["rollout.max_prompts_per_chunk=abc"], "rollout.max_prompts_per_chunk='abc'"),
    ],
)
def test_bad_rollout_settings_are_refused_by_name(tmp_path, overrides, message):
    cfg = compose_config([*TINY, *overrides], tmp_path)
    with pytest.raises(Exception) as raised:
        instantiate(cfg.rollout)
    error = user_error(raised.value)  # what scripts/train.py reports, in one line
    assert isinstance(error, ConfigError) and re.search(re.escape(message), str(error))
