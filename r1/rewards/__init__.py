"""Reward functions, the registry, and composition with weights and step windows.

No Lightning here: rewards are plain functions of strings, reusable by any trainer.
"""

from r1.rewards.registry import (
    CompositeReward,
    RewardOutput,
    RewardTerm,
    get_reward,
    register_reward,
    registered_rewards,
)
from r1.rewards.types import RewardSample

__all__ = [
    "CompositeReward",
    "RewardOutput",
    "RewardSample",
    "RewardTerm",
    "get_reward",
    "register_reward",
    "registered_rewards",
]
