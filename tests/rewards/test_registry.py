from __future__ import annotations

import math
import time

import pytest
import reward_fixtures  # noqa: F401  (registers the test terms)

from r1.rewards import CompositeReward, RewardSample, RewardTerm, get_reward, register_reward

S = RewardSample


def test_weighted_total_and_per_term_values():
    reward = CompositeReward(
        {
            "parity": {"fn": "test_length_parity", "weight": 2.0},
            "gold": {"fn": "test_no_signal_unless_gold", "weight": 0.5},
        },
        workers=0,
    )
    out = reward.score([S("ab", gold="1"), S("abc", gold="1")])
    assert out.terms == {"parity": [0.0, 1.0], "gold": [1.0, 1.0]}
    assert out.total == [0.5, 2.5]
    assert out.metrics("train") == {
        "train/reward": 1.5,
        "train/reward/parity": 0.5,
        "train/reward_errors/parity": 0.0,
        "train/reward/gold": 1.0,
        "train/reward_errors/gold": 0.0,
    }


def test_none_is_no_signal():
    reward = CompositeReward(
        {"parity": {"fn": "test_length_parity"}, "gold": {"fn": "test_no_signal_unless_gold"}},
        workers=0,
    )
    out = reward.score([S("abc", gold=""), S("abc", gold="x")])
    assert out.terms["gold"] == [None, 1.0]
    assert out.total == [1.0, 2.0]  # None adds nothing
    assert out.metrics()["train/reward/gold"] == 1.0  # and is left out of the term's mean
    only_gold = CompositeReward({"gold": {"fn": "test_no_signal_unless_gold"}}, workers=0)
    out = only_gold.score([S("a", gold=""), S("a", gold="x")])
    assert out.total == [None, 1.0]  # every active term silent: no signal at all
    assert out.metrics()["train/reward"] == 1.0
    assert math.isnan(only_gold.score([S("a")]).metrics()["train/reward"])


def test_step_window():
    term = RewardTerm(fn="test_length_parity", start_step=10, end_step=20)
    assert [term.active(s) for s in (0, 9, 10, 19, 20)] == [False, False, True, True, False]
    reward = CompositeReward(
        {
            "base": {"fn": "test_no_signal_unless_gold"},
            "late": {"fn": "test_length_parity", "weight": 5.0, "start_step": 10},
        },
        workers=0,
    )
    before, after = (
        reward.score([S("a", gold="x")], step=9),
        reward.score([S("a", gold="x")], step=10),
    )
    assert before.total == [1.0] and "late" not in before.terms
    assert after.total == [6.0] and after.terms["late"] == [1.0]


@register_reward("test_counting_batched", batched=True)
def counting_batched(samples):
    counting_batched.seen.append(len(samples))
    return [10.0] * len(samples)


counting_batched.seen = []


@pytest.mark.parametrize("workers", [0, 1])
def test_mixed_batch_is_routed_by_task_and_the_late_term_waits(workers):
    """All-scenario RL: reasoning prompts get the rule terms, general prompts the (batched)
    reward-model stand-in, which is off before its start step and on from it; a term never
    sees (or runs on) samples of other tasks."""
    reward = CompositeReward(
        {
            "rule": {"fn": "test_length_parity", "tasks": ["arithmetic", "countdown"]},
            "preference": {
                "fn": "test_counting_batched",
                "tasks": ["general"],
                "start_step": 5,
                "weight": 0.5,
            },
        },
        workers=workers,
    )
    batch = [S("abc", task="arithmetic"), S("hello", task="general"), S("ab", task="countdown")]
    counting_batched.seen.clear()
    before = reward.score(batch, step=4)
    assert before.terms == {"rule": [1.0, None, 0.0]}
    assert before.total == [1.0, None, 0.0]  # the general prompt: no signal yet
    after = reward.score(batch, step=5)
    assert after.terms == {"rule": [1.0, None, 0.0], "preference": [None, 10.0, None]}
    assert after.total == [1.0, 5.0, 0.0]
    assert counting_batched.seen == [1]  # scored the one general sample only
    assert after.metrics()["train/reward/preference"] == 10.0


def test_term_tasks_from_config():
    reward = CompositeReward({"rule": {"fn": "test_length_parity", "tasks": ["a"]}}, workers=0)
    assert reward.terms["rule"].tasks == ("a",)
    assert reward.score([S("x", task="b")]).total == [None]


@pytest.mark.parametrize("workers", [0, 1])
def test_errors_get_the_fallback_and_are_counted(workers):
    reward = CompositeReward(
        {
            "broken": {"fn": "test_raises", "fallback": -1.0},
            "nan": {"fn": "test_not_a_number"},
            "ok": {"fn": "test_length_parity"},
        },
        workers=workers,
    )
    try:
        out = reward.score([S("a"), S("ab")])
    finally:
        reward.close()
    assert out.terms["broken"] == [-1.0, -1.0] and out.errors["broken"] == 2
    assert out.terms["nan"] == [0.0, 0.0] and out.errors["nan"] == 2  # non-finite is an error
    assert out.total == [0.0, -1.0]
    assert out.metrics()["train/reward_errors/broken"] == 2.0


def test_time_limit_kills_the_call_and_scoring_goes_on():
    reward = CompositeReward(
        {"h": {"fn": "test_hangs_on_loop", "timeout_s": 1.0, "fallback": -0.5}}, workers=2
    )
    samples = [S("fine")] * 5 + [S("loop")] + [S("fine")] * 40 + [S("loop")]
    started = time.monotonic()
    try:
        out = reward.score(samples)
        again = reward.score([S("fine")] * 3)  # the pool recovered
    finally:
        reward.close()
    assert time.monotonic() - started < 30
    assert out.terms["h"][5] == -0.5 and out.terms["h"][-1] == -0.5
    assert out.errors["h"] == 2
    assert [v for i, v in enumerate(out.terms["h"]) if i not in (5, 46)] == [1.0] * 45
    assert again.total == [1.0, 1.0, 1.0]


def test_math_verify_blow_up_is_stopped():
    reward = CompositeReward({"accuracy": {"timeout_s": 2.0}}, workers=1)
    samples = [S("<answer>10**10**10</answer>", gold="5"), S("<answer>5</answer>", gold="5")]
    try:
        out = reward.score(samples)
    finally:
        reward.close()
    assert out.terms["accuracy"] == [0.0, 1.0]


def test_batched_terms():
    reward = CompositeReward(
        {"b": {"fn": "test_batched_double", "params": {"factor": 3.0}}}, workers=0
    )
    assert reward.score([S("ab"), S("abcd")]).total == [6.0, 12.0]


def test_unknown_reward_and_bad_settings_are_named():
    with pytest.raises(ValueError, match="'nope' is not registered; registered: .*accuracy"):
        CompositeReward({"nope": {}})
    with pytest.raises(ValueError, match=r"'accuracy': unknown setting\(s\) \['wieght'\]"):
        CompositeReward({"accuracy": {"wieght": 2}})
    with pytest.raises(ValueError, match="at least one term"):
        CompositeReward({})
    with pytest.raises(ValueError, match="workers must be >= 0, got -1"):
        CompositeReward({"accuracy": {}}, workers=-1)


def test_a_null_term_is_dropped():
    reward = CompositeReward({"accuracy": {}, "format": None}, workers=0)
    assert list(reward.terms) == ["accuracy"]


def test_register_a_new_reward():
    @register_reward("test_constant_seven")
    def seven(sample):
        return 7.0

    assert get_reward("test_constant_seven").fn is seven
    with pytest.raises(ValueError, match="already registered"):
        register_reward("test_constant_seven")(lambda sample: 1.0)
    assert CompositeReward({"s": {"fn": "test_constant_seven"}}, workers=0).score(
        [S("x")]
    ).total == [7.0]


def test_a_batched_call_that_raises_fails_only_the_sample_that_caused_it():
    reward = CompositeReward({"b": {"fn": "test_batched_breaks_on_bomb", "fallback": -1.0}})
    out = reward.score([S("bomb"), S("ok"), S("ok"), S("ok")])
    assert out.terms["b"] == [-1.0, 1.0, 1.0, 1.0]
    assert out.errors == {"b": 1}
    assert out.metrics()["train/reward_errors/b"] == 1.0


def test_a_sandbox_failure_on_one_completion_leaves_the_batch_scored(monkeypatch):
    """The issue's case: [bomb, ok, ok, ok] once scored [0, 0, 0, 0]."""
    from r1.rewards import sandbox

    real = sandbox._run

    def setup_fails_for_the_bomb(plan, code, stdin, limits):
        if "bomb" in code:
            raise sandbox.SandboxError("sandbox setup failed: BlockingIOError")
        return real(plan, code, stdin, limits)

    monkeypatch.setattr(sandbox, "_run", setup_fails_for_the_bomb)
    tests = {"tests": [{"assert": "assert f(2) == 4"}]}
    program = "<answer>```python\ndef f(x):\n    return 2 * x\n```</answer>"
    samples = [S(program.replace("return", "# bomb\n    return"), task="code", meta=tests)]
    samples += [S(program, task="code", meta=tests)] * 3
    reward = CompositeReward({"code": {"fn": "code_exec"}}, workers=0)
    out = reward.score(samples)
    assert out.terms["code"] == [0.0, 1.0, 1.0, 1.0]
    assert out.errors == {"code": 1}
