"""Reward terms for tests. Importable by name (conftest puts this folder on sys.path), so
spawned reward workers can unpickle them."""

import time

from r1.rewards import register_reward


@register_reward("test_length_parity")
def length_parity(sample):
    return float(len(sample.completion) % 2)


@register_reward("test_no_signal_unless_gold")
def no_signal_unless_gold(sample):
    return 1.0 if sample.gold else None


@register_reward("test_raises")
def raises(sample):
    raise RuntimeError("a broken reward")


@register_reward("test_hangs_on_loop")
def hangs_on_loop(sample):
    if "loop" in sample.completion:
        while True:
            time.sleep(0.01)
    return 1.0


@register_reward("test_not_a_number")
def not_a_number(sample):
    return float("nan")


@register_reward("test_batched_double", batched=True)
def batched_double(samples, factor=2.0):
    return [factor * len(s.completion) for s in samples]


@register_reward("test_batched_breaks_on_bomb", batched=True)
def batched_breaks_on_bomb(samples):
    """A batched term that raises for the whole batch when one sample says "bomb"."""
    if any("bomb" in s.completion for s in samples):
        raise RuntimeError("one bad completion")
    return [1.0] * len(samples)
