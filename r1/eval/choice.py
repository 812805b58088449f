"""Multiple-choice questions (GPQA Diamond, MMLU): options shuffled per sample, the chosen
letter read back from free text.

Each sample of a problem sees the options in its own order, drawn from (seed, problem id,
sample index) alone, so a run is reproducible and the order is recorded with the sample.
Shuffling per sample keeps a model's letter bias (always "A") from scoring above chance.

The letter is read from what a model most often writes, most specific first: a `\\boxed{C}`,
an "Answer: C" / "the answer is (C)" phrase, the contents of an `<answer>` block, a lone
"(C)" at the end; each of those may also hold the option's text instead of its letter
("Answer: Paris"). A reply that names none is unanswered (wrong), never an error.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Sequence

from r1.text import last_boxed, parse_completion

LETTERS = string.ascii_uppercase

# "Answer: C", "answer is (C)", "Final answer: **C**", "ANSWER: C." ...; the text after it is
# the candidate (a letter or an option's text), up to the end of the line.
_ANSWER_PHRASE = re.compile(r"answer\s*(?:is|:|：)\s*(?:is\s*)?:?\s*([^\n]*)", re.IGNORECASE)
# A lone letter, optionally dressed: "(C)", "C)", "C.", "**C**", "\text{C}", "{C}".
_DRESSED_LETTER = re.compile(r"^[\s*({\[]*(?:\\text(?:bf)?\s*\{)?\s*([A-Z])\s*[})\]]*[\s.*:)]*$")
_LEADING_LETTER = re.compile(r"^[\s*(\[]*([A-Z])\s*[).:](?:\s|$)")
_FINAL_PAREN_LETTER = re.compile(r"\(([A-Z])\)[\s.*]*$")
_NON_WORD = re.compile(r"[^\w]+")


def option_order(seed: int, problem_id: str, sample: int, num_options: int) -> tuple[int, ...]:
    """The order sample `sample` of problem `problem_id` shows the options in: a permutation
    of range(num_options), a pure function of its arguments (a string seed is hashed the same
    way in every process, unlike hash())."""
    order = list(range(num_options))
    random.Random(f"{seed}/{problem_id}/{sample}").shuffle(order)
    return tuple(order)


def choices_text(question: str, options: Sequence[str]) -> str:
    """The question with its options listed as "A) ..." lines, in the given order."""
    lines = [f"{LETTERS[i]}) {option.strip()}" for i, option in enumerate(options)]
    return question.strip() + "\n\n" + "\n".join(lines)


def _normalized(text: str) -> str:
    return _NON_WORD.sub(" ", text.lower()).strip()


def _read_candidate(candidate: str, options: Sequence[str]) -> int | None:
    """The shown option a candidate string names: its letter (dressed or leading, "C) Paris")
    or its text (the whole candidate, or the one option's text it holds)."""
    candidate = candidate.strip()
    if not candidate:
        return None
    wanted = _normalized(candidate)
    texts = [_normalized(option) for option in options]
    if wanted in texts:
        return texts.index(wanted)
    for pattern in (_DRESSED_LETTER, _LEADING_LETTER):
        match = pattern.match(candidate)
        if match and LETTERS.index(match.group(1)) < len(options):
            return LETTERS.index(match.group(1))
    held = [i for i, text in enumerate(texts) if text and f" {text} " in f" {wanted} "]
    return held[0] if len(held) == 1 else None


def extract_choice(text: str, options: Sequence[str]) -> int | None:
    """Index (in the shown order) of the option a reply chose, or None. See the module doc."""
    answer_block = parse_completion(text).answer
    region = text if answer_block is None else answer_block
    boxed = last_boxed(region)
    candidates = [boxed] if boxed is not None else []
    candidates += reversed(_ANSWER_PHRASE.findall(region))
    if answer_block is not None:
        candidates.append(answer_block)
    for candidate in candidates:
        chosen = _read_candidate(candidate, options)
        if chosen is not None:
            return chosen
    tail = region.strip().splitlines()[-1] if region.strip() else ""
    if _DRESSED_LETTER.match(tail):  # a reply whose last line is a bare "C" or "(C)"
        return _read_candidate(tail, options)
    ending = _FINAL_PAREN_LETTER.search(region)  # "... so it must be (C)."
    if ending and LETTERS.index(ending.group(1)) < len(options):
        return LETTERS.index(ending.group(1))
    return None
