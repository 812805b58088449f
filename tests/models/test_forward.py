"""The training forward's log-probs computed a chunk of tokens at a time equal the plain
forward's, in values and in gradients; and no chunked forward keeps every token's logits."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from r1.algorithms.losses import IGNORE_INDEX, head_token_nll
from r1.algorithms.padding import pad_left, pad_right
from r1.models import load_model
from r1.models.forward import (
    completion_logprobs,
    head_logprobs_and_entropy,
    head_replaced,
    output_head,
)
from r1.models.loading import apply_lora
from r1.modules import SFTModule, sft

GROUP = 3
SMALL_VOCAB = 4096  # the tokens below are < 2000; SmolLM2's 49,152 makes the tests slow


@pytest.fixture(scope="module")
def fp32():
    """A tiny model of this file's own (the tests leave gradients on it)."""
    model, _ = load_model("tiny", seed=0)
    model.resize_token_embeddings(SMALL_VOCAB)
    return model


COMPLETION_LENGTHS = (7, 4, 6, 7, 2, 5)  # two prompts x GROUP rows: 6 x 7 = 42 positions


@pytest.fixture(scope="module")
def tiny(fp32):
    """The tiny model in float64: chunking
    changes the order of the head gradient's sums, so in fp32 the gradients differ by
    rounding (~1e-5 of the largest entry); in float64 they agree to ~1e-15."""
    return copy.deepcopy(fp32).double()


@pytest.fixture(scope="module")
def batch():
    """Two left-padded prompts and GROUP right-padded completions each, random tokens."""
    g = torch.Generator().manual_seed(0)
    prompts = [torch.randint(0, 2000, (n,), generator=g).tolist() for n in (5, 3)]
    completions = [torch.randint(0, 2000, (n,), generator=g).tolist() for n in COMPLETION_LENGTHS]
    return (
        pad_left(prompts, 0),
        pad_left([[1] * len(p) for p in prompts], 0),
        pad_right(completions, 0),
        pad_right([[1] * len(c) for c in completions], 0),
    )


def forward_and_grads(model, batch, chunk, shared_prefix=True, temperature=1.0, entropy=False):
    """(log-probs, entropies, parameter gradients) of a loss that uses both."""
    prompt_ids, prompt_mask, completion_ids, completion_mask = batch
    model.zero_grad()
    logprobs, entropies = completion_logprobs(
        model,
        prompt_ids,
        prompt_mask,
        completion_ids,
        completion_mask,
        GROUP,
        temperature=temperature,
        shared_prefix=shared_prefix,
        entropy_grad=entropy,
        logit_chunk_tokens=chunk,
    )
    mask = completion_mask.float()
    loss = (logprobs * mask).sum() + (0.3 * entropies * mask).sum()
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return logprobs.detach(), entropies.detach(), grads


def assert_same(chunked, plain, mask, values=1e-6, grads=1e-10):
    """Equal within a fraction of each tensor's largest entry: `values` for log-probs and
    entropies (fp32 whatever the model's dtype: the log-softmax upcasts), `grads` for the
    gradients."""
    mask = mask.bool()
    pairs = [(got[mask], want[mask], values, "") for got, want in zip(chunked[:2], plain[:2])]
    assert chunked[2].keys() == plain[2].keys()
    pairs += [(chunked[2][name], want, grads, name) for name, want in plain[2].items()]
    for got, want, tolerance, name in pairs:
        atol = tolerance * float(want.abs().max())
        torch.testing.assert_close(got, want, atol=atol, rtol=0, msg=name or None)


@pytest.mark.parametrize("chunk", [None, 2])
def test_one_token_completions_with_a_shared_prefix(tiny, batch, chunk):
    """A batch whose completions are all one token (a policy that stops at once: PPO collapsed
    to it in a run) has no completion positions to run after the prompt's."""
    prompt_ids, prompt_mask, completion_ids, completion_mask = batch
    one_token = (prompt_ids, prompt_mask, completion_ids[:, :1], completion_mask[:, :1])
    shared = forward_and_grads(tiny, one_token, chunk, shared_prefix=True)
    full = forward_and_grads(tiny, one_token, chunk, shared_prefix=False)
    assert shared[0].shape == (len(COMPLETION_LENGTHS), 1)
    # (shared and full forwards differ by ~1e-7 of the largest gradient at any length)
    assert_same(shared, full, completion_mask[:, :1], grads=1e-6)


@pytest.mark.parametrize("chunk", [1, 5, 16, 41])  # 42 positions: none divides them
@pytest.mark.parametrize("shared_prefix", [True, False])
def test_chunked_equals_unchunked_in_values_and_gradients(tiny, batch, chunk, shared_prefix):
    model = tiny
    plain = forward_and_grads(model, batch, None, shared_prefix)
    chunked = forward_and_grads(model, batch, chunk, shared_prefix)
    assert_same(chunked, plain, batch[3])
    assert all(g.abs().sum() > 0 for g in chunked[2].values())


@pytest.mark.parametrize("shared_prefix", [True, False])
def test_chunked_with_temperature_and_an_entropy_gradient(tiny, batch, shared_prefix):
    model = tiny
    settings = {"shared_prefix": shared_prefix, "temperature": 0.7, "entropy": True}
    plain = forward_and_grads(model, batch, None, **settings)
    chunked = forward_and_grads(model, batch, 5, **settings)
    assert_same(chunked, plain, batch[3])
    # The entropy's gradient is there: without it the gradients differ.
    no_entropy_grad = forward_and_grads(model, batch, 5, shared_prefix, temperature=0.7)
    embedding = "model.embed_tokens.weight"
    assert not torch.allclose(no_entropy_grad[2][embedding], chunked[2][embedding])


def test_entropy_carries_no_gradient_unless_asked(tiny, batch):
    for entropy_grad in (False, True):
        logprobs, entropies = completion_logprobs(
            tiny, *batch, GROUP, entropy_grad=entropy_grad, logit_chunk_tokens=5
        )
        assert logprobs.requires_grad and entropies.requires_grad == entropy_grad


def test_no_grad_chunked_passes_equal_the_plain_ones(tiny, batch):
    with torch.no_grad():
        plain = completion_logprobs(tiny, *batch, GROUP, logit_chunk_tokens=None)
        chunked = completion_logprobs(tiny, *batch, GROUP, logit_chunk_tokens=4)
    mask = batch[3].bool()
    for got, want in zip(chunked, plain):
        assert not got.requires_grad
        torch.testing.assert_close(got[mask], want[mask], atol=2e-5, rtol=1e-5)


def test_under_bf16_autocast_chunked_matches_and_stays_fp32(fp32, batch):
    """As Lightning's bf16-mixed runs it: the head's matmul in bf16, the log-softmax in fp32."""
    model = fp32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        plain = forward_and_grads(model, batch, None, entropy=True)
        chunked = forward_and_grads(model, batch, 5, entropy=True)
    assert chunked[0].dtype == chunked[1].dtype == torch.float32
    assert_same(chunked, plain, batch[3], values=1e-2, grads=1e-2)


def test_fp32_chunked_equals_unchunked_within_rounding(fp32, batch):
    model = fp32
    plain = forward_and_grads(model, batch, None, temperature=0.7, entropy=True)
    chunked = forward_and_grads(model, batch, 5, temperature=0.7, entropy=True)
    assert_same(chunked, plain, batch[3], values=1e-6, grads=2e-5)


def test_lora_model_chunked_equals_unchunked(fp32, batch):
    model = apply_lora(copy.deepcopy(fp32), {"r": 4, "lora_alpha": 8})
    model.double()
    plain = forward_and_grads(model, batch, None)
    chunked = forward_and_grads(model, batch, 5)
    assert chunked[2] and all("lora_" in name for name in chunked[2])
    assert_same(chunked, plain, batch[3])


def saved_logit_sizes(fn, model) -> list[int]:
    """The element counts of the [..., V] tensors autograd saves for backward while `fn`
    runs: logits and what is computed from them (not the head's weight)."""
    vocab = model.config.vocab_size
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    sizes: list[int] = []

    def pack(tensor):
        if tensor.shape[-1:] == (vocab,) and tensor.untyped_storage().data_ptr() not in weights:
            sizes.append(tensor.numel())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        fn()
    return sizes


@pytest.mark.parametrize("shared_prefix", [True, False])
def test_no_saved_tensor_holds_every_tokens_logits(tiny, batch, shared_prefix):
    model, vocab = tiny, tiny.config.vocab_size
    rows, length = batch[2].shape
    every_token = vocab * rows * (length - 1)  # even without the prefix's own position

    def run(chunk):
        return lambda: completion_logprobs(
            model,
            *batch,
            GROUP,
            shared_prefix=shared_prefix,
            entropy_grad=True,
            logit_chunk_tokens=chunk,
        )

    assert max(saved_logit_sizes(run(None), model)) >= every_token  # (the hooks see them)
    chunked = saved_logit_sizes(run(8), model)
    # Left, with a shared prefix: the first completion token's logits, from the prompt's
    # forward (N x V); no chunk's logits (recomputed in backward).
    assert max(chunked, default=0) <= rows * vocab < every_token


def test_one_value_by_hand():
    """A two-word vocabulary whose head gives logits [0, log 3]: p = [1/4, 3/4]."""
    head = torch.nn.Linear(1, 2, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.tensor([[0.0], [math.log(3)]]))
    hidden = torch.ones(1, 3, 1)
    tokens = torch.tensor([[1, 0, 1]])
    logprobs, entropy = head_logprobs_and_entropy(hidden, head, tokens, chunk_tokens=2)
    expected = torch.tensor([[math.log(3 / 4), math.log(1 / 4), math.log(3 / 4)]])
    torch.testing.assert_close(logprobs, expected)
    h = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    torch.testing.assert_close(entropy, torch.full((1, 3), h))
    # Temperature 2: logits [0, log(3) / 2], p(1) = sqrt(3) / (1 + sqrt(3)).
    logprobs, _ = head_logprobs_and_entropy(hidden, head, tokens, temperature=2.0, chunk_tokens=2)
    torch.testing.assert_close(logprobs[0, 0], torch.tensor(math.log(3**0.5 / (1 + 3**0.5))))


def test_the_replaced_head_is_the_models_own_again_afterwards(tiny, batch):
    prompt_ids, prompt_mask = batch[0], batch[1]
    with torch.no_grad():
        before = tiny(input_ids=prompt_ids, attention_mask=prompt_mask).logits
        with head_replaced(tiny, lambda hidden, project: project(hidden)[..., :3]):
            inside = tiny(input_ids=prompt_ids, attention_mask=prompt_mask).logits
        with pytest.raises(RuntimeError), head_replaced(tiny, lambda hidden, project: hidden):
            raise RuntimeError
        after = tiny(input_ids=prompt_ids, attention_mask=prompt_mask).logits
    torch.testing.assert_close(inside, before[..., :3], rtol=0, atol=0)
    torch.testing.assert_close(after, before, rtol=0, atol=0)
    assert "forward" not in output_head(tiny).__dict__


def sft_batch():
    g = torch.Generator().manual_seed(1)
    input_ids = torch.randint(0, 2000, (3, 9), generator=g)
    labels = input_ids.clone()
    labels[:, :4] = IGNORE_INDEX
    labels[1, 6:] = IGNORE_INDEX
    return {"input_ids": input_ids, "labels": labels}


@pytest.mark.parametrize("chunk", [1, 3, 100])
def test_chunked_sft_loss_equals_the_plain_one(tiny, chunk, monkeypatch):
    """SFTModule's loss: its labelled positions' logits a chunk at a time past
    LOGIT_CHUNK_TOKENS (11 labelled tokens here), else all at once."""
    module = SFTModule(tiny, None, optimizer=None)
    batch = sft_batch()
    losses, grads = [], []
    for threshold in (10**9, chunk):
        monkeypatch.setattr(sft, "LOGIT_CHUNK_TOKENS", threshold)
        tiny.zero_grad()
        loss = module.completion_loss(batch)
        loss.backward()
        losses.append(loss.detach())
        grads.append([p.grad.clone() for p in tiny.parameters()])
    torch.testing.assert_close(losses[1], losses[0], atol=0, rtol=1e-6)  # fp32 sums
    for got, want in zip(grads[1], grads[0]):
        torch.testing.assert_close(got, want, atol=1e-10 * float(want.abs().max()), rtol=0)


def test_per_token_nll_is_zero_where_no_label_applies():
    head = torch.nn.Linear(4, 5)
    hidden = torch.randn(2, 3, 4)
    labels = torch.tensor([[1, IGNORE_INDEX, 4], [IGNORE_INDEX] * 3])
    per_token = head_token_nll(hidden, head, labels, 1)
    expected = torch.nn.functional.cross_entropy(
        head(hidden[0, [0, 2]]), labels[0, [0, 2]], reduction="none"
    )
    torch.testing.assert_close(per_token[0, [0, 2]], expected)
    assert per_token[0, 1] == 0 and (per_token[1] == 0).all()
    nothing = head_token_nll(hidden, head, torch.full((2, 3), IGNORE_INDEX), 2)
    assert nothing.shape == (2, 3) and (nothing == 0).all()


def test_activation_checkpointing_keeps_the_prompt_in_the_shared_prefix_forward(fp32, batch):
    """Hugging Face's checkpointed layers drop the KV cache: the shared-prefix forward then
    runs the full sequences, or the completions would not see their prompt."""
    model = copy.deepcopy(fp32)
    expected = forward_and_grads(model, batch, 5)
    model.activation_checkpointing_enable({"use_reentrant": False})
    model.train()
    got = forward_and_grads(model, batch, 5)
    assert_same(got, expected, batch[3], values=1e-6, grads=2e-5)
