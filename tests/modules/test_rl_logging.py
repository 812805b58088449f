"""RLModule.log_metrics: what a step with no signal for a metric logs."""

from __future__ import annotations

import math
from types import SimpleNamespace

from r1.modules.rl import RLModule


def fake_module():
    logged: list[tuple[str, float]] = []
    module = SimpleNamespace(
        world_size=1,
        _logged_step_metrics=set(),
        reward_history={},
        log=lambda name, value, **kwargs: logged.append((name, value)),
    )
    return module, logged


def test_a_metric_without_signal_is_logged_as_nan_once_it_has_been_logged():
    # Lightning logs a step metric's last value again on every later step until the epoch
    # ends; a general-only reward term on a batch without general prompts must show a gap,
    # not the previous step's value
    module, logged = fake_module()
    RLModule.log_metrics(module, {"train/reward": 1.0, "train/reward/rules": 0.5}, 4)
    RLModule.log_metrics(module, {"train/reward": 2.0, "train/reward/rules": math.nan}, 4)
    assert logged[:2] == [("train/reward", 1.0), ("train/reward/rules", 0.5)]
    assert logged[2] == ("train/reward", 2.0)
    assert logged[3][0] == "train/reward/rules" and math.isnan(logged[3][1])
    assert module.reward_history == {"train/reward": [1.0, 2.0], "train/reward/rules": [0.5]}


def test_a_metric_never_logged_stays_absent_while_it_has_no_signal():
    module, logged = fake_module()
    RLModule.log_metrics(module, {"train/kl": math.nan, "train/reward": 1.0}, 4)
    RLModule.log_metrics(module, {"train/kl": math.nan, "train/reward": 1.0}, 4)
    assert [name for name, _ in logged] == ["train/reward", "train/reward"]
