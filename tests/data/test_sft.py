"""Tokenisation with a completion-only label mask, padding and packing."""

from __future__ import annotations

import torch

from r1.data.sft import (
    IGNORE_INDEX,
    collate_packed,
    collate_sft,
    pack_examples,
    tokenize_example,
)
from r1.data.templates import R1_INSTRUCTION, PromptTemplate


def test_label_mask_token_by_token(tokenizer):
    prompt, completion = "What is 2 + 3?", "<think>\n2 + 3 = 5\n</think>\n<answer>5</answer>"
    example = tokenize_example(tokenizer, prompt, completion)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    assert example.input_ids == prompt_ids + completion_ids + [tokenizer.eos_token_id]
    for position, (token, label) in enumerate(zip(example.input_ids, example.labels)):
        if position < len(prompt_ids):
            assert label == IGNORE_INDEX, f"prompt token {position} is trained on"
        else:
            assert label == token, f"completion token {position} is not trained on"
    assert example.labels[-1] == tokenizer.eos_token_id  # the model learns to stop
    # The labelled tokens decode to exactly the completion: the boundary is exact.
    labelled = [t for t in example.labels if t != IGNORE_INDEX]
    assert tokenizer.decode(labelled[:-1]) == completion


def test_collate_pads_right_and_masks_padding(tokenizer):
    short = tokenize_example(tokenizer, "Hi", "<answer>1</answer>")
    long = tokenize_example(
        tokenizer, "What is 10 + 20?", "<think>\n10 + 20 = 30\n</think>\n<answer>30</answer>"
    )
    batch = collate_sft([short, long], pad_id=tokenizer.pad_token_id)
    n = len(short.input_ids)
    assert batch["input_ids"].shape == (2, len(long.input_ids))
    assert batch["attention_mask"][0].tolist() == [1] * n + [0] * (len(long.input_ids) - n)
    assert (batch["labels"][0, n:] == IGNORE_INDEX).all()
    assert batch["labels"][1].tolist() == long.labels


def test_packing_first_fit():
    from r1.data.sft import TokenizedExample

    examples = [TokenizedExample([1] * n, [1] * n) for n in (6, 5, 3, 2, 4)]
    packs = pack_examples(examples, max_length=8)
    assert [[len(e.input_ids) for e in p] for p in packs] == [[6, 2], [5, 3], [4]]


def test_packed_rows_give_the_same_loss_and_logits_as_unpacked(tiny):
    model, tokenizer = tiny
    examples = [
        tokenize_example(tokenizer, "What is 1 + 2?", "<think>1 + 2 = 3</think><answer>3</answer>"),
        tokenize_example(
            tokenizer,
            "What is 10 - 4 - 1?",
            "<think>10 - 4 = 6\n6 - 1 = 5</think><answer>5</answer>",
        ),
        tokenize_example(tokenizer, "Hi", "<answer>x</answer>"),
    ]
    with torch.no_grad():
        plain = model(**collate_sft(examples, tokenizer.pad_token_id), use_cache=False)
        packed_batch = collate_packed(pack_examples(examples, 256), tokenizer.pad_token_id)
        packed = model(**packed_batch, use_cache=False)
        alone = model(input_ids=torch.tensor([examples[1].input_ids]), use_cache=False).logits[0]
    assert packed_batch["input_ids"].shape[0] == 1
    torch.testing.assert_close(packed.loss, plain.loss, rtol=1e-5, atol=1e-5)
    offset = len(examples[0].input_ids)
    inside_pack = packed.logits[0, offset : offset + len(examples[1].input_ids)]
    torch.testing.assert_close(inside_pack, alone, rtol=1e-4, atol=1e-4)


def test_r1_zero_template_is_the_papers_text():
    prompt = PromptTemplate(kind="r1_zero").render("What is 2 + 3?")
    assert prompt == (
        "A conversation between User and Assistant. The user asks a question, and the Assistant "
        "solves it. The assistant first thinks about the reasoning process in the mind and then "
        "provides the user with the answer. The reasoning process and answer are enclosed within "
        "<think> </think> and <answer> </answer> tags, respectively, i.e., <think> reasoning "
        "process here </think> <answer> answer here </answer>. User: What is 2 + 3?. Assistant:"
    )
    assert PromptTemplate(kind="r1_zero").completion_for("2 + 3 = 5", "5") == (
        " <think>\n2 + 3 = 5\n</think>\n<answer>5</answer>"
    )


def test_chat_template_carries_system_and_user(tokenizer):
    chat = PromptTemplate(kind="chat", system="r1", user_format="{question} Think first.")
    text = chat.render("What is 2 + 3?", tokenizer)
    assert R1_INSTRUCTION in text and "What is 2 + 3? Think first." in text
    assert text.endswith("<|im_start|>assistant\n")
    assert PromptTemplate(kind="plain").render("Q?") == "Q?"


def test_template_rejects_bad_values():
    import pytest

    with pytest.raises(ValueError, match="'jinja'.*r1_zero, chat, plain"):
        PromptTemplate(kind="jinja")
    with pytest.raises(ValueError, match="must contain"):
        PromptTemplate(user_format="no slot")
    with pytest.raises(ValueError, match="response_prefix 'Sure'"):
        PromptTemplate(response_prefix="Sure")


def test_a_response_prefix_moves_the_think_tag_into_the_prompt(tokenizer):
    from r1.data.templates import R1_EXAMPLE

    chat = PromptTemplate(kind="chat", system="r1_example", response_prefix="<think>")
    prompt = chat.render("What is 2 + 3?", tokenizer)
    assert R1_EXAMPLE in prompt and prompt.endswith("<|im_start|>assistant\n<think>")
    assert chat.completion_for("2 + 3 = 5", "5") == "\n2 + 3 = 5\n</think>\n<answer>5</answer>"
    zero = PromptTemplate(kind="r1_zero", response_prefix="<think>")
    assert zero.render("Q").endswith("Assistant: <think>")
    assert prompt + chat.completion_for("a", "1") == (
        PromptTemplate(kind="chat", system="r1_example").render("What is 2 + 3?", tokenizer)
        + PromptTemplate(kind="chat").completion_for("a", "1")
    )


def test_the_readable_layout_puts_a_summary_between_reasoning_and_answer():
    from r1.text import parse_completion

    readable = PromptTemplate(kind="chat", summary=True)
    target = readable.completion_for("12 * 3 = 36\n36 + 1 = 37", "37")
    assert target == (
        "<think>\n12 * 3 = 36\n36 + 1 = 37\n</think>\n"
        "<summary>36 + 1 = 37, so the answer is 37.</summary>\n<answer>37</answer>"
    )
    assert readable.completion_for("2 + 3 = 5", "5", "zh").endswith(
        "<summary>2 + 3 = 5，所以答案是 5。</summary>\n<answer>5</answer>"
    )
    parsed = parse_completion(target)
    assert parsed.strict and parsed.summary == "36 + 1 = 37, so the answer is 37."
    opened = PromptTemplate(kind="chat", summary=True, response_prefix="<think>")
    assert "<think>" + opened.completion_for("2 + 3 = 5", "5") == readable.completion_for(
        "2 + 3 = 5", "5"
    )
