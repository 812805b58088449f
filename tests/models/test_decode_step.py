"""r1.models.decode_step: the written-out decode step against the model's own forward."""

from __future__ import annotations

import pytest
import torch
from transformers import DynamicCache, Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM

from r1.models.decode import GrowingCache, cache_argument
from r1.models.decode_step import DecodeStep, FusedLinear, supported
from r1.rollout import hf as hf_engine
from r1.rollout.hf import HFRolloutEngine
from r1.rollout.types import SamplingParams

SMALL = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=256,
)


@pytest.fixture(scope="module")
def qwen2(tokenizer):
    """A tiny Qwen2: biases on q, k and v (random here: transformers initialises them to 0)."""
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(Qwen2Config(vocab_size=len(tokenizer), **SMALL)).eval()
    with torch.no_grad():
        for layer in model.model.layers:
            for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
                proj.bias.normal_(0, 0.5)
    return model


def stepped_logits(model, ids: torch.Tensor, prompt_len: int) -> torch.Tensor:
    """Logits after each of ids[:, prompt_len:], fed one at a time through the decode step
    on the prefill's cache: [B, T, V]."""
    rows, total = ids.shape
    prefix = DynamicCache()
    model(input_ids=ids[:, :prompt_len], use_cache=True, **{cache_argument(model): prefix})
    step = DecodeStep.build(model, rows)
    assert step is not None
    cache = GrowingCache(prefix, 1, limit=total, bucket=4, dtype=step.compute_dtype)
    out = []
    for t in range(prompt_len, total):
        width = cache.width(t + 1)
        visible = (torch.arange(width) < t + 1).expand(rows, 1, 1, width)
        out.append(step(ids[:, t], torch.full((rows, 1), t), cache, visible).float())
    return torch.stack(out, 1)


@pytest.mark.parametrize("architecture", ["llama", "qwen2"])
def test_the_decode_step_gives_the_forward_logits_in_fp32(architecture, tiny, qwen2):
    model = tiny[0] if architecture == "llama" else qwen2
    torch.manual_seed(1)
    ids = torch.randint(0, model.config.vocab_size, (3, 14))
    with torch.no_grad():
        expected = model(input_ids=ids).logits[:, 6:].float()
        got = stepped_logits(model, ids, prompt_len=6)  # 8 steps: grows past 2 buckets of 4
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("architecture", ["llama", "qwen2"])
def test_under_bf16_autocast_it_matches_the_forward_within_bf16_rounding(architecture, tiny, qwen2):
    model = tiny[0] if architecture == "llama" else qwen2
    torch.manual_seed(2)
    ids = torch.randint(0, model.config.vocab_size, (2, 12))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        expected = model(input_ids=ids).logits[:, 4:].float()
        got = stepped_logits(model, ids, prompt_len=4)
    gap = (got - expected).abs()
    scale = expected.abs().max()
    assert gap.max() < 0.02 * scale and gap.mean() < 0.002 * scale, (gap.max(), scale)
    assert (got.argmax(-1) == expected.argmax(-1)).float().mean() > 0.9


def test_a_packed_bf16_product_equals_f_linear():
    torch.manual_seed(0)
    first, second = torch.nn.Linear(48, 32), torch.nn.Linear(48, 16)
    fused = FusedLinear([first, second], torch.bfloat16, rows=8)
    x = torch.randn(8, 48).bfloat16()
    expected = torch.nn.functional.linear(
        x,
        torch.cat([first.weight, second.weight]).bfloat16(),
        torch.cat([first.bias, second.bias]).bfloat16(),
    )
    assert fused.packed == torch.backends.mkldnn.is_available()
    torch.testing.assert_close(fused(x), expected, atol=0, rtol=0)


def test_other_models_run_their_own_forward(tiny, tokenizer):
    from peft import LoraConfig, get_peft_model

    qwen3 = Qwen3ForCausalLM(Qwen3Config(vocab_size=len(tokenizer), head_dim=16, **SMALL))
    assert not supported(qwen3)  # q and k norms: not the Llama layout
    assert DecodeStep.build(qwen3, rows=2) is None
    lora = get_peft_model(load_tiny_copy(), LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    assert not supported(lora)
    assert supported(tiny[0])
    # ... and the engine still decodes them.
    rollout = HFRolloutEngine(qwen3, tokenizer).generate(
        [[1, 2, 3]], SamplingParams(max_new_tokens=5, temperature=0, ignore_eos=True), n=2
    )
    assert rollout.completion_mask.sum() == 10


def load_tiny_copy():
    from r1.models import load_model

    return load_model("tiny", seed=0)[0]


def test_the_engine_decodes_the_same_tokens_with_and_without_the_step(tiny, monkeypatch):
    model, tokenizer = tiny
    batch = [tokenizer(q)["input_ids"] for q in ("What is 2 + 3?", "Hi")]
    greedy = SamplingParams(max_new_tokens=20, temperature=0, ignore_eos=True)
    fast = HFRolloutEngine(model, tokenizer).generate(batch, greedy, n=2)
    monkeypatch.setattr(hf_engine.DecodeStep, "build", classmethod(lambda cls, m, rows: None))
    slow = HFRolloutEngine(model, tokenizer).generate(batch, greedy, n=2)
    assert torch.equal(fast.completion_ids, slow.completion_ids)
    torch.testing.assert_close(fast.sampling_logprobs, slow.sampling_logprobs, atol=1e-4, rtol=0)
