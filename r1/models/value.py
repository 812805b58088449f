"""The PPO critic: a scalar value head on a transformer backbone."""

from __future__ import annotations

import copy

import torch
from torch import nn


def decoder_of(model: nn.Module) -> nn.Module:
    """The transformer without its LM head (peft wrappers unwrapped)."""
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    return model.get_decoder() if hasattr(model, "get_decoder") else model.base_model


class ValueModel(nn.Module):
    """V(s_t) for every completion position t: the value of the state that generates
    completion token t (prompt + completion[:t]), read from the backbone's last hidden state
    at the position that predicts token t, the same alignment as the policy's log-probs.
    The head starts at zero, so the first values are 0 and the first advantages are returns."""

    def __init__(self, backbone: nn.Module, hidden_size: int):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(hidden_size, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    @classmethod
    def from_policy(cls, policy: nn.Module) -> ValueModel:
        """A copy of the policy's backbone (trainable, separate weights) with a new head."""
        backbone = copy.deepcopy(decoder_of(policy)).train().requires_grad_(True)
        return cls(backbone, policy.config.hidden_size)

    @classmethod
    def from_model(cls, model: nn.Module) -> ValueModel:
        """A separate (e.g. smaller) model's backbone with a new head."""
        return cls(decoder_of(model).requires_grad_(True), model.config.hidden_size)

    def forward(
        self,
        prompt_ids: torch.Tensor,
        prompt_mask: torch.Tensor,
        completion_ids: torch.Tensor,
        completion_mask: torch.Tensor,
        group_size: int,
    ) -> torch.Tensor:
        """prompt_ids, prompt_mask: [B, P] left-padded; completion_ids, completion_mask:
        [N, C] right-padded, N = B * group_size. Returns values [N, C] (fp32)."""
        input_ids = torch.cat([prompt_ids.repeat_interleave(group_size, 0), completion_ids], 1)
        attention = torch.cat([prompt_mask.repeat_interleave(group_size, 0), completion_mask], 1)
        positions = (attention.cumsum(1) - 1).clamp(min=0)
        hidden = self.backbone(
            input_ids=input_ids, attention_mask=attention, position_ids=positions, use_cache=False
        ).last_hidden_state
        prompt_length, completion_length = prompt_ids.shape[1], completion_ids.shape[1]
        states = hidden[:, prompt_length - 1 : prompt_length - 1 + completion_length]
        return self.head(states.to(self.head.weight.dtype)).squeeze(-1).float()
