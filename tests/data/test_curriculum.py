"""The online curriculum over difficulty levels: hand-worked orders, resume, config."""

from __future__ import annotations

import pytest

from r1.checks import ConfigError
from r1.data.curriculum import Curriculum
from r1.data.datamodule import EpochShuffleSampler, ReasoningDataModule
from r1.data.problem import Problem


def test_the_ceiling_rises_level_by_level_over_the_ramp():
    curriculum = Curriculum(ramp_batches=4)
    levels = [1, 2, 2, 3]
    # batch b admits index ceil((b + 1) * 3 / 4) - 1 of the distinct levels [1, 2, 3]
    assert [curriculum.admitted(b, levels) for b in range(6)] == [1, 2, 3, 3, 3, 3]


def test_each_batch_draws_the_earliest_items_it_admits_else_the_easiest_left():
    curriculum = Curriculum(ramp_batches=3)  # ceilings per batch: 1, 2, 3
    levels = {10: 1, 11: 2, 12: 3, 13: 1, 14: 2, 15: 3}
    order = [12, 11, 15, 13, 14, 10]  # the epoch's shuffle
    got = curriculum.reorder(order, levels, first_batch=0, batch_items=2)
    # batch 0 (ceiling 1): 13, 10; batch 1 (ceiling 2): 11, 14; batch 2: 12, 15
    assert got == [13, 10, 11, 14, 12, 15]
    # no level-1 item left for a ceiling-1 batch: the easiest remaining comes instead
    assert curriculum.reorder([12, 11], {12: 3, 11: 2}, 0, 1) == [11, 12]
    # after the ramp the order is the shuffle itself
    assert curriculum.reorder(order, levels, first_batch=3, batch_items=2) == order


def test_the_sampler_resumes_mid_epoch_with_the_curriculum():
    levels = [i % 3 + 1 for i in range(24)]
    setting = (Curriculum(ramp_batches=6), levels, 4)
    full = list(EpochShuffleSampler(24, seed=5, curriculum=setting))
    assert sorted(full) == list(range(24))
    assert [levels[i] for i in full[:4]] == [1, 1, 1, 1]  # the first batch is the easiest
    resumed = EpochShuffleSampler(24, seed=5, curriculum=setting)
    resumed.resume_at(0, 8)
    assert list(resumed) == full[8:]


def test_the_data_module_orders_prompts_by_level_and_names_missing_levels(tokenizer):
    from r1.data.tasks import ArithmeticTask

    dm = ReasoningDataModule(
        ArithmeticTask(digits=1, num_ops=[1, 2, 3]),
        tokenizer=tokenizer,
        template={"kind": "plain"},
        num_train=60,
        num_val=4,
        batch_size=4,
        train_format="prompts",
        curriculum={"ramp_batches": 6},
    )
    dm.setup("fit")
    batches = [[p.meta["level"] for p in b["problems"]] for b in dm.train_dataloader()]
    assert batches[0] == [1, 1, 1, 1] and max(batches[2]) <= 2 and 3 in sum(batches[6:], [])
    plain = [Problem(f"Q{i}", "1") for i in range(8)]
    dm = ReasoningDataModule(
        lambda: plain,
        tokenizer=tokenizer,
        template={"kind": "plain"},
        num_train=6,
        num_val=2,
        train_format="prompts",
        curriculum={"ramp_batches": 2},
    )
    dm.setup("fit")
    with pytest.raises(ConfigError, match="data.curriculum needs a difficulty level"):
        dm.train_dataloader()
    with pytest.raises(ConfigError, match="ramp_batches=0"):
        Curriculum(ramp_batches=0)
