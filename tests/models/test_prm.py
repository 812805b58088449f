"""The process reward model: encoding at step ends, the loss, training, scoring, loading."""

from __future__ import annotations

import math
import pickle

import pytest
import torch

from r1.algorithms.losses import step_bce
from r1.models.loading import load_model, load_tokenizer
from r1.models.prm import (
    PRMScorer,
    ProcessRewards,
    collate_steps,
    encode_steps,
    load_prm,
    prm_from_policy,
    prm_reward_params,
    step_logits,
    token_steps,
)
from r1.text import completion_steps


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(name="tiny")


def test_step_bce_by_hand() -> None:
    logits = torch.tensor([[0.0, math.log(3.0), 5.0]])
    labels = torch.tensor([[1.0, 0.5, 0.0]])
    mask = torch.tensor([[True, True, False]])
    # BCE(0, 1) = ln 2; BCE(ln 3 -> p 0.75, target 0.5) = -(0.5 ln 0.75 + 0.5 ln 0.25)
    expected = (math.log(2) - 0.5 * (math.log(0.75) + math.log(0.25))) / 2
    assert float(step_bce(logits, labels, mask)) == pytest.approx(expected, rel=1e-6)
    assert float(step_bce(logits, labels, torch.zeros_like(mask))) == 0.0


def test_step_ends_are_the_separator_after_each_step(tokenizer) -> None:
    prompt = "User: What is 12 + 88 - 69? Assistant:"
    steps = completion_steps("<think>\n12 + 88 = 100\n100 - 69 = 31\n</think>\n<answer>31</answer>")
    example = encode_steps(tokenizer, prompt, steps, [1, 1, 1, 1])
    assert len(example.step_ends) == 4 and example.labels == [1.0] * 4
    assert [tokenizer.decode(example.input_ids[i]) for i in example.step_ends] == ["\n"] * 4
    # Decoding up to each step end gives the prompt and the steps so far, line by line.
    text = tokenizer.decode(example.input_ids[: example.step_ends[1] + 1])
    assert text == prompt + "<think>\n12 + 88 = 100\n100 - 69 = 31\n"
    # Steps that do not fit are dropped with their labels; the prompt is kept whole.
    short = encode_steps(
        tokenizer, prompt, steps, [1, 0, 1, 1], max_length=example.step_ends[1] + 1
    )
    assert short.step_ends == example.step_ends[:2] and short.labels == [1.0, 0.0]
    with pytest.raises(ValueError, match="3 labels for 4 steps"):
        encode_steps(tokenizer, prompt, steps, [1, 1, 1])


def test_collated_steps_are_masked(tokenizer) -> None:
    a = encode_steps(tokenizer, "p", ["a", "b"], [1, 0])
    b = encode_steps(tokenizer, "longer prompt", ["c"], [0.5])
    batch = collate_steps([a, b], tokenizer.pad_token_id)
    assert batch["step_mask"].tolist() == [[True, True], [True, False]]
    assert batch["step_labels"].tolist() == [[1.0, 0.0], [0.5, 0.0]]
    assert batch["step_positions"][0].tolist() == a.step_ends
    assert batch["attention_mask"].sum(1).tolist() == [len(a.input_ids), len(b.input_ids)]


def test_a_new_prm_keeps_the_policy_backbone_and_scores_alike_alone_or_batched(tokenizer) -> None:
    policy, _ = load_model(name="tiny")
    prm = prm_from_policy(policy)
    for name, weight in policy.get_decoder().state_dict().items():
        assert torch.equal(weight, prm.model.state_dict()[name]), name
    scorer = PRMScorer(prm, tokenizer, batch_size=4)
    prompts = ["User: 1 + 1? Assistant:", "User: a much longer question here? Assistant:"]
    steps = [["1 + 1 = 2", "<answer>2</answer>"], ["x", "y", "z"]]
    together = scorer.score(prompts, steps)
    alone = [scorer.score([p], [s])[0] for p, s in zip(prompts, steps)]
    assert [len(s) for s in together] == [2, 3]
    for batched, single in zip(together, alone):
        assert batched == pytest.approx(single, abs=1e-5)
        assert all(0.0 < s < 1.0 for s in batched)


def test_a_saved_prm_loads_back_with_the_same_scores(tokenizer, tmp_path) -> None:
    prm, _ = load_prm(name="tiny", seed=3)
    prm.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded, _ = load_prm(path=str(tmp_path))
    steps = [["12 + 88 = 100", "</think>"]]
    assert PRMScorer(loaded, tokenizer).score(["q"], steps)[0] == pytest.approx(
        PRMScorer(prm, tokenizer).score(["q"], steps)[0]
    )


def test_training_lowers_the_step_loss_on_a_tiny_fixture(tokenizer) -> None:
    """Steps marked "right" are labelled 1, "wrong" 0: a fresh PRM learns it in a few steps."""
    torch.manual_seed(0)
    policy, _ = load_model(name="tiny")
    prm = prm_from_policy(policy).train()
    examples = [
        encode_steps(tokenizer, f"User: problem {i}. Assistant:", steps, labels)
        for i, (steps, labels) in enumerate(
            [
                (["right", "right", "wrong"], [1, 1, 0]),
                (["wrong", "right"], [0, 1]),
                (["right", "wrong", "wrong"], [1, 0, 0]),
                (["right"], [1]),
            ]
        )
    ]
    batch = collate_steps(examples, tokenizer.pad_token_id)
    optimizer = torch.optim.AdamW(prm.parameters(), lr=1e-3)

    def loss() -> torch.Tensor:
        return step_bce(step_logits(prm, batch), batch["step_labels"], batch["step_mask"])

    with torch.no_grad():
        first = float(loss())
    for _ in range(15):
        optimizer.zero_grad()
        loss().backward()
        optimizer.step()
    prm.eval()
    with torch.no_grad():
        last = float(loss())
        scores = torch.sigmoid(step_logits(prm, batch))
    assert last < 0.5 * first
    right = scores[batch["step_mask"] & (batch["step_labels"] == 1)]
    wrong = scores[batch["step_mask"] & (batch["step_labels"] == 0)]
    assert right.min() > wrong.max()


def test_process_rewards_score_the_steps_read_off_the_tokens(tokenizer) -> None:
    from r1.rollout.types import build_rollout

    texts = [
        "<think>\n12 + 88 = 100\n100 - 69 = 31\n</think>\n<answer>31</answer>",
        "<think>\n先算 21 + 22 = 43\n\n再算 43 + 55 = 98\n</think>\n<answer>98</answer>",
    ]
    tokens = [
        tokenizer(t, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        for t in texts
    ]
    for text, ids in zip(texts, tokens):
        steps, ends = token_steps(ids, tokenizer)
        assert steps == completion_steps(text)
        assert [tokenizer.decode(ids[e]).count("\n") >= 1 for e in ends[:-1]] == [True] * (
            len(ends) - 1
        )
        assert ends[-1] == len(ids) - 1  # the answer step ends at EOS
    rollout = build_rollout(
        tokenizer, [[1, 2]], tokens, [[0.0] * len(t) for t in tokens], ["eos", "eos"], 2
    )
    prm, _ = load_prm(name="tiny")
    scorer = PRMScorer(prm, tokenizer)
    scores, ends = ProcessRewards(scorer)(rollout, ["the prompt"])
    assert [len(s) for s in scores] == [4, 4] and [len(e) for e in ends] == [4, 4]
    assert scores[1] == pytest.approx(scorer.score(["the prompt"], [completion_steps(texts[1])])[0])


def test_the_reward_terms_prm_loads_on_first_use_and_travels_without_it(tokenizer) -> None:
    params = prm_reward_params(name="tiny", batch_size=4, aggregate="last")
    scorer = params.pop("scorer")
    assert params == {"aggregate": "last"}  # the term's own settings, as they were
    assert scorer._loaded is None  # nothing loaded while the reward is built
    steps = [["12 + 88 = 100", "</think>"]]
    model, _ = load_prm(name="tiny")
    assert scorer.score(["q"], steps) == PRMScorer(model, tokenizer).score(["q"], steps)
    assert scorer.batch_size == 4 and scorer._loaded is not None
    copy = pickle.loads(pickle.dumps(scorer))
    assert copy._loaded is None and copy.score(["q"], steps) == scorer.score(["q"], steps)
