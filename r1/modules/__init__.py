"""LightningModules: thin compositions of r1.algorithms that log metrics."""

from r1.modules.base import ReasoningModule
from r1.modules.grpo import GRPOModule
from r1.modules.opd import OPDModule
from r1.modules.ppo import PPOModule
from r1.modules.prm import PRMModule
from r1.modules.reward_model import RewardModelModule
from r1.modules.rl import RLModule
from r1.modules.sft import SFTModule

__all__ = [
    "GRPOModule",
    "OPDModule",
    "PPOModule",
    "PRMModule",
    "ReasoningModule",
    "RewardModelModule",
    "RLModule",
    "SFTModule",
]
