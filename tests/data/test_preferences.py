"""The reward model's data: the offline preference generator, JSONL rows, the data module."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from r1.checks import ConfigError
from r1.data.loaders import DataError
from r1.data.preference_data import PreferenceDataModule
from r1.data.preferences import (
    FOLLOWS_RULES,
    VIOLATIONS,
    LabelledResponse,
    PreferencePair,
    PreferenceSource,
    PreferenceTask,
    read_preference_rows,
)
from r1.data.tasks import SENTENCES_ASKED, GeneralTask
from r1.text import broken_rules, count_sentences, has_language_characters, repeated_pieces

OTHER = {"en": "zh", "zh": "en"}


def follows_rules(answer: str, language: str, kind: str) -> bool:
    return not broken_rules(answer, language, SENTENCES_ASKED[kind])


def test_sentence_count_and_repetition_helpers():
    assert count_sentences("") == 0 and count_sentences("  ") == 0
    assert count_sentences("One. Two! Three?") == 3
    assert count_sentences("No end mark") == 1 and count_sentences("好。很好！") == 2
    assert repeated_pieces("I like tea, tea, tea.") == ["tea"]
    assert repeated_pieces("A cat. A cat.") == ["A cat"]
    assert repeated_pieces("A cat. A dog.") == []


def test_every_general_request_is_posed_with_its_kind():
    for language in ("en", "zh"):
        questions = {r.question for r in PreferenceTask(language).requests}
        posed = {p.question for p in GeneralTask(language).generate(200, seed=0)}
        assert posed <= questions
    mixed = PreferenceTask("mixed").requests
    assert {r.language for r in mixed} == {"en", "zh"}
    assert len(mixed) == len(PreferenceTask("en").requests) + len(PreferenceTask("zh").requests)


@pytest.mark.parametrize("language", ["en", "zh"])
def test_good_answers_follow_every_rule_and_each_broken_one_breaks_its_rule(language):
    task = PreferenceTask(language)
    rng = random.Random(0)
    goods: set[str] = set()
    for request in task.requests:
        for _ in range(3):
            good = task.good(request, rng)
            goods.add(good)
            assert follows_rules(good, language, request.kind), (request.question, good)
            assert has_language_characters(good, language)
            for violation in VIOLATIONS:
                bad = task.broken(request, violation, rng)
                assert bad != good
                if violation == "empty":
                    assert bad == ""
                elif violation == "language":  # not one character of the question's script
                    assert bad and not has_language_characters(bad, language), bad
                    assert has_language_characters(bad, OTHER[language])
                elif violation == "length":
                    assert count_sentences(bad) != SENTENCES_ASKED[request.kind], bad
                    assert not repeated_pieces(bad)
                elif violation == "repetition":
                    assert repeated_pieces(bad), bad
                    assert count_sentences(bad) == SENTENCES_ASKED[request.kind], bad
                else:  # unsafe: right language and length, no repetition, a harmful instruction
                    assert follows_rules(bad, language, request.kind), bad
                    harmful = ("bleach", "candle", "power line", "drinks", "shore", "medicine")
                    harmful_zh = ("漂白剂", "蜡烛", "电线", "喝了", "离岸", "药")
                    assert any(h in bad for h in (harmful if language == "en" else harmful_zh))
    assert len(goods) > 3 * len(task.requests) // 2  # varied: not one answer per question


def test_the_generator_is_deterministic_per_seed_and_splits_by_question():
    task = PreferenceTask("mixed")
    train, val = task.split("pairwise", 200, 50, val_fraction=0.2, seed=0)
    again_train, again_val = PreferenceTask("mixed").split("pairwise", 200, 50, 0.2, seed=0)
    other_train, other_val = task.split("pairwise", 200, 50, 0.2, seed=1)
    assert train == again_train and val == again_val
    assert train != other_train and val == other_val  # the held-out rows never move
    assert len(train) == 200 and len(val) == 50
    assert not {p.question for p in train} & {p.question for p in val}
    assert {p.meta["violation"] for p in train} == set(VIOLATIONS)
    assert {p.meta["language"] for p in train} == {"en", "zh"}
    assert all(isinstance(p, PreferencePair) for p in train)


def test_pointwise_rows_label_rule_following_answers_1_and_broken_ones_0():
    task = PreferenceTask("en", violations=["unsafe", "empty"])
    train, _ = task.split("pointwise", 300, 20, 0.2, seed=0)
    assert all(isinstance(r, LabelledResponse) for r in train)
    assert 100 < sum(r.label for r in train) < 200
    for row in train:
        if row.label:
            assert row.meta["violation"] == FOLLOWS_RULES and row.response
        else:
            assert row.meta["violation"] in ("unsafe", "empty")


def test_unknown_violations_and_languages_are_refused():
    with pytest.raises(DataError, match="violations=\\['rude'\\].*language, length"):
        PreferenceTask("en", violations=["rude"])
    with pytest.raises(ValueError, match="language must be one of"):
        PreferenceTask("fr")


def write_rows(path: Path, rows: list) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_jsonl_pairs_and_labelled_rows_load_with_extra_fields_in_meta(tmp_path):
    pairs = write_rows(
        tmp_path / "pairs.jsonl",
        [
            {"prompt": "q1", "chosen": "good", "rejected": "", "violation": "empty"},
            {"prompt": "q2", "chosen": "yes", "rejected": "no"},
        ],
    )
    rows = read_preference_rows(pairs, "pairwise")
    assert rows[0] == PreferencePair("q1", "good", "", {"violation": "empty"})
    labelled = write_rows(
        tmp_path / "safety.jsonl",
        [
            {"prompt": "q", "response": "ok", "label": 1},
            {"prompt": "q", "response": "x", "label": 0},
        ],
    )
    assert [r.label for r in read_preference_rows(labelled, "pointwise")] == [1, 0]


@pytest.mark.parametrize(
    ("objective", "rows", "message"),
    [
        (
            "pairwise",
            [{"prompt": "q", "chosen": "a", "rejected": "b"}, {"prompt": "q", "rejected": "b"}],
            "line 2: field 'chosen' is missing (fields present: prompt, rejected)",
        ),
        (
            "pointwise",
            [{"prompt": "q", "response": "a", "label": 2}],
            "line 1: field 'label' must be 0 or 1, got 2",
        ),
        (
            "pointwise",
            [
                {"prompt": "q", "response": "a", "label": 1},
                {"prompt": "q", "response": "b", "label": "yes"},
            ],
            "line 2: field 'label' must be 0 or 1, got 'yes'",
        ),
        (
            "pointwise",
            [{"prompt": "q", "chosen": "a", "rejected": "b"}],
            "line 1: field 'response' is missing",
        ),
        (
            "pairwise",
            [{"prompt": " ", "chosen": "a", "rejected": "b"}],
            "line 1: field 'prompt' is empty",
        ),
        (
            "pairwise",
            [{"prompt": "q", "chosen": 3, "rejected": "b"}],
            "line 1: field 'chosen' must be a string",
        ),
    ],
)
def test_bad_rows_name_the_line_and_the_bad_value(tmp_path, objective, rows, message):
    path = write_rows(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError) as info:
        read_preference_rows(path, objective)
    assert str(info.value).startswith(f"{path} {message}")


def test_the_data_module_renders_questions_and_batches_chosen_then_rejected(tokenizer):
    data = PreferenceDataModule(
        PreferenceSource(language="en"), tokenizer, num_train=8, num_val=4, batch_size=4
    )
    data.setup("fit")
    pair = data.train_rows[0]
    batch = next(iter(data.train_dataloader()))
    assert batch["input_ids"].shape[0] == 8 and len(batch["violations"]) == 4
    prompt = data.template.render(pair.question, tokenizer)
    assert prompt.startswith("<|im_start|>system") and pair.question in prompt
    # a row is the rendered prompt + the answer, as the reward model scores it in RL
    first = data.train_examples[0]
    assert tokenizer.decode(first.chosen_ids) == prompt + pair.chosen
    assert tokenizer.decode(first.rejected_ids) == prompt + pair.rejected
    val = next(iter(data.val_dataloader()))
    assert val["padding"] == [False] * 4 and val["attention_mask"].shape[0] == 8
    pointwise = PreferenceDataModule(
        PreferenceSource(language="zh"), tokenizer, "pointwise", num_train=8, num_val=4
    )
    pointwise.setup("fit")
    batch = next(iter(pointwise.train_dataloader()))
    assert batch["labels"].shape == (8,) and set(batch["labels"].tolist()) <= {0.0, 1.0}


def test_the_data_module_reads_a_file_and_refuses_a_language_the_source_lacks(tokenizer, tmp_path):
    path = write_rows(
        tmp_path / "pairs.jsonl",
        [{"prompt": f"q{i}", "chosen": "good", "rejected": "bad"} for i in range(10)],
    )
    data = PreferenceDataModule(PreferenceSource(path=str(path)), tokenizer, val_fraction=0.2)
    data.setup("fit")
    assert len(data.train_rows) == 8 and len(data.val_rows) == 2
    assert not {r.question for r in data.train_rows} & {r.question for r in data.val_rows}
    with pytest.raises(ConfigError, match="data.language='zh'"):
        PreferenceDataModule(PreferenceSource(language="en"), tokenizer, language="zh")
    with pytest.raises(ConfigError, match="data.objective='listwise'"):
        PreferenceDataModule(PreferenceSource(), tokenizer, "listwise")
