"""Language consistency of a chain of thought (DeepSeek-R1's language reward).

The reward is the share of target-language units in the text inside `<think>...</think>`.
Units:

- each CJK ideograph is one unit of Chinese (`zh`), or of Japanese (`ja`) when its sentence
  also holds kana; each kana is one unit of `ja`; each Hangul word is one unit of `ko`;
- every other word of two or more letters is one unit, its language decided per chunk (below);
- numbers, punctuation, operators, single letters (variables such as x, n), words glued to
  digits or underscores (2x, x_1), LaTeX commands (\\frac, \\times) and the words inside
  `$...$` math (CJK text there still counts) are language-neutral and not counted.

Script cannot tell English words from French ones, so alphabetic words are grouped into
chunks: the run of same-script words inside one sentence (a sentence ends at . ! ? ; a
newline or any CJK text). py3langid, restricted to the candidate languages written in that
script, scores each chunk as a whole; single-word identification is noise. A chunk goes to a
default language unless the classifier prefers another one by more than `MARGIN` nats of
log-likelihood. The default is the target language when one is given (a short "Wait." or
"Hmm" in an English text stays English: ambiguous text gets the benefit of the doubt) and
otherwise the language py3langid finds for all the words of that script together. Cyrillic
words are Russian unless the candidates hold another Cyrillic language the classifier
prefers; words in other scripts (Greek, Arabic, Hindi, ...) are told apart among the
py3langid languages written in neither Latin, Cyrillic nor CJK.

Model output is untrusted: every function here accepts any text and never raises on it; only
an unknown language code (configuration, not model output) raises ValueError.
"""

from __future__ import annotations

import copy
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache

from py3langid.langid import MODEL_FILE, LanguageIdentifier

from r1.checks import ConfigError
from r1.rewards.types import RewardSample

DEFAULT_CANDIDATES = ("en", "zh", "fr", "de", "es", "ru", "ja", "ko")
# Log-likelihood lead (nats) a chunk's best language needs over the default language. English
# single words in a restricted en/fr/de/es model lead by at most ~3; two foreign words ~10+.
MARGIN = 5.0
MAX_CHUNKS = 2000  # classifier calls per script and text at most
UNDETERMINED = "und"  # words in a script none of the candidate languages is written in

# Languages decided by script alone (CJK ideographs, kana, Hangul) and py3langid labels by
# script; "sr" is written in Latin and Cyrillic. Labels in none of these sets are Latin-script.
_EAST_ASIAN_LANGS = frozenset({"zh", "ja", "ko"})
_CYRILLIC_LANGS = frozenset("ba be bg kk ky mk mn ru sr tg tt uk".split())
_OTHER_SCRIPT_LANGS = frozenset(
    "am ar ary arz as bn dz el fa gom grc gu hbo he hi hy ka km kn lo ml mr my ne or pa ps sa "
    "sdh si ta te th ug ur uzs".split()
)
_NOT_LATIN_LANGS = (
    _EAST_ASIAN_LANGS | (_CYRILLIC_LANGS - {"sr"}) | _OTHER_SCRIPT_LANGS | {"wuu", "yue", "zxx"}
)

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_KANA = "\u3040-\u30ff\u31f0-\u31ff"
_HANGUL = "\u1100-\u11ff\u3130-\u318f\uac00-\ud7af"
_HAN_CHAR = re.compile(f"[{_HAN}]")
_KANA_CHAR = re.compile(f"[{_KANA}]")
_HANGUL_WORD = re.compile(f"[{_HANGUL}]+")
_EAST_ASIAN = re.compile(f"[{_HAN}{_KANA}{_HANGUL}]+")
_SENTENCE_END = re.compile(r"[\n!?;。！？；]|\.(?!\S)")
_TOKEN = re.compile(r"\w+(?:['’]\w+)*")  # a hyphen splits: "x-axis" is x, axis
_LATEX_COMMAND = re.compile(r"\\[A-Za-z]+")
# Inline math only within a line: `[^$\n]*` keeps the scan linear on hostile input.
_MATH = re.compile(r"\$\$[^$]*\$\$|\$[^$\n]*\$")
_ROLE_USER = re.compile(r"\buser\b", re.I)
_ROLE_ASSISTANT = re.compile(r"\bassistant\b", re.I)
_THINK_OPEN, _THINK_CLOSE, _ANSWER_OPEN = "<think>", "</think>", "<answer>"
_TAG = re.compile(r"</?(?:think|answer)>")


def think_text(completion: str) -> str | None:
    """The chain of thought: the content of the first `<think>` block, stripped.

    An unclosed block runs to the next `<answer>` or the end. A completion with `</think>`
    but no `<think>` (chat templates that put `<think>` in the prompt) thinks from its start.
    Stray tags inside the block are dropped. None when the completion has no think tag.
    """
    start = completion.find(_THINK_OPEN)
    if start < 0:
        if _THINK_CLOSE not in completion:
            return None
        start = 0
    else:
        start += len(_THINK_OPEN)
    ends = [completion.find(tag, start) for tag in (_THINK_CLOSE, _ANSWER_OPEN)]
    end = min((e for e in ends if e >= 0), default=len(completion))
    return _TAG.sub(" ", completion[start:end]).strip()


@lru_cache(maxsize=1)
def _base_identifier() -> LanguageIdentifier:
    return LanguageIdentifier.from_model_file(MODEL_FILE)


@lru_cache(maxsize=64)
def _identifier(langs: tuple[str, ...]) -> LanguageIdentifier:
    # set_languages rebinds (never mutates) the model arrays, so a shallow copy restricts
    # a private view without loading the 4.5 MB model again or touching py3langid's global.
    identifier = copy.copy(_base_identifier())
    identifier.set_languages(langs)
    return identifier


def normalize_language(code: str) -> str:
    """ "zh-CN" -> "zh", "EN" -> "en"; ValueError for a code py3langid does not know."""
    lang = re.split(r"[-_]", code.strip().lower(), maxsplit=1)[0]
    if lang not in _base_identifier().labels:
        raise ConfigError(f"unknown language {code!r}; expected an ISO 639-1 code such as 'en'")
    return lang


def _script_langs(candidates: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """The languages a chunk may be, by script."""
    langs = set(candidates)
    unknown = langs - set(_base_identifier().labels)
    if unknown:
        raise ConfigError(f"unknown candidate languages {sorted(unknown)}")
    latin = tuple(sorted(langs - _NOT_LATIN_LANGS)) or (UNDETERMINED,)
    return {
        "latin": latin,
        "cyrillic": tuple(sorted({"ru"} | (langs & _CYRILLIC_LANGS))),
        "other": tuple(sorted(_OTHER_SCRIPT_LANGS)),
    }


def _script(token: str) -> str | None:
    """The script of a counted word, or None for a neutral token (x, 2x, x_1, 42)."""
    if len(token) < 2 or not token.replace("'", "").replace("’", "").isalpha():
        return None
    code = ord(token[0])
    if code < 0x250 or 0x1E00 <= code < 0x1F00:
        return "latin"
    if 0x400 <= code < 0x530:
        return "cyrillic"
    return "other"


def _add_chunks(segment: str, chunks: dict[str, list[tuple[str, int]]]) -> None:
    """Split a CJK-free stretch of one sentence into runs of same-script words."""
    current: str | None = None
    words: list[str] = []
    for token in _TOKEN.findall(segment):
        script = _script(token)
        if script is None:
            continue
        if script != current and words:
            chunks[current].append((" ".join(words), len(words)))  # type: ignore[index]
            words = []
        current = script
        words.append(token)
    if words:
        chunks[current].append((" ".join(words), len(words)))  # type: ignore[index]


def _label_chunks(texts: list[str], langs: tuple[str, ...], prefer: str | None) -> list[str]:
    """One language per chunk: the default one unless the classifier is sure of another."""
    if len(langs) == 1:
        return [langs[0]] * len(texts)
    identifier = _identifier(langs)
    # Only megabyte or degenerate texts have this many chunks: classify runs of neighbours
    # together so that the number of classifier calls stays bounded.
    size = -(-len(texts) // MAX_CHUNKS)
    groups = [" ".join(texts[i : i + size]) for i in range(0, len(texts), size)]
    memo: dict[str, dict[str, float]] = {}  # CoTs repeat themselves ("Wait", "Let me check")
    for group in groups:
        if group not in memo:
            memo[group] = dict(identifier.rank(group))
    scores = [memo[group] for group in groups]
    if prefer in langs:
        default = prefer
    elif len(groups) == 1:
        default = max(scores[0], key=scores[0].__getitem__)
    else:
        default = identifier.classify(" ".join(groups))[0]
    labels = []
    for score in scores:
        best = max(score, key=score.__getitem__)
        labels.append(best if score[best] - score[default] > MARGIN else default)
    return [labels[i // size] for i in range(len(texts))]


def _east_asian_only(math: re.Match[str]) -> str:
    return f" {' '.join(_EAST_ASIAN.findall(math.group()))} "


def language_counts(
    text: str, candidates: Iterable[str] = DEFAULT_CANDIDATES, prefer: str | None = None
) -> Counter[str]:
    """Countable units of `text` per language (see the module docstring for the rules).

    `candidates`: the languages py3langid may choose from for alphabetic words. `prefer`:
    the language ambiguous chunks default to (the target of a consistency score).
    """
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    text = _LATEX_COMMAND.sub(" ", text)
    if "$" in text:
        text = _MATH.sub(_east_asian_only, text)
    counts: Counter[str] = Counter()
    chunks: dict[str, list[tuple[str, int]]] = {"latin": [], "cyrillic": [], "other": []}
    for sentence in _SENTENCE_END.split(text):
        if sentence.isascii():
            _add_chunks(sentence, chunks)
            continue
        han, kana = len(_HAN_CHAR.findall(sentence)), len(_KANA_CHAR.findall(sentence))
        counts["ja" if kana else "zh"] += han
        counts["ja"] += kana
        counts["ko"] += len(_HANGUL_WORD.findall(sentence))
        for segment in _EAST_ASIAN.split(sentence):
            _add_chunks(segment, chunks)
    script_langs = _script_langs(candidates)
    for script, script_chunks in chunks.items():
        if script_chunks:
            texts = [chunk for chunk, _ in script_chunks]
            labels = _label_chunks(texts, script_langs[script], prefer)
            for label, (_, n_words) in zip(labels, script_chunks):
                counts[label] += n_words
    return +counts


def language_shares(text: str, candidates: Iterable[str] = DEFAULT_CANDIDATES) -> dict[str, float]:
    """Share of each language among the countable units of `text`; {} when there are none."""
    counts = language_counts(text, candidates)
    total = sum(counts.values())
    return {lang: n / total for lang, n in counts.most_common()}


def language_consistency(
    text: str, target: str, candidates: Iterable[str] = DEFAULT_CANDIDATES
) -> float | None:
    """Share of `target`-language units in `text`; None when nothing in it is countable.

    The target joins the candidates, so any language py3langid knows can be a target.
    """
    target = normalize_language(target)
    if target in _EAST_ASIAN_LANGS:
        candidates = ()  # no alphabetic word can be the target: skip telling them apart
    counts = language_counts(text, {*candidates, target}, prefer=target)
    total = sum(counts.values())
    return counts[target] / total if total else None


def thought_consistency(completion: str, language: str) -> float | None:
    """Share of `language` units in the reasoning of `completion`: its think block, else the
    whole text. None when nothing in it is countable. A measurement (behaviour metrics,
    training logs), not the reward term, which scores a missing think block by its own rule."""
    thought = think_text(completion)
    return language_consistency(completion if thought is None else thought, language)


def consistency_total(
    completions: Iterable[str], languages: Iterable[str | None]
) -> tuple[float, int]:
    """(sum, count) of `thought_consistency` over the completions whose language is known and
    whose reasoning has countable units: a mean that combines across batches by adding."""
    shares = [thought_consistency(c, lang) for c, lang in zip(completions, languages) if lang]
    shares = [s for s in shares if s is not None]
    return sum(shares), len(shares)


def detect_language(text: str, candidates: Iterable[str] = DEFAULT_CANDIDATES) -> str | None:
    """The language with the most units in `text`, or None when nothing is countable."""
    counts = language_counts(text, candidates)
    return counts.most_common(1)[0][0] if counts else None


def prompt_question(prompt: str) -> str:
    """The question inside a rendered prompt: the text between the last "user" role marker and
    the "assistant" marker after it (R1-Zero, ChatML, Llama and DeepSeek templates all have
    both), so an English system prompt does not decide the language; else the whole prompt."""
    assistants = list(_ROLE_ASSISTANT.finditer(prompt))
    head = prompt[: assistants[-1].start()] if assistants else prompt
    users = list(_ROLE_USER.finditer(head))
    return head[users[-1].end() :] if users else head


def lang_consistency(
    sample: RewardSample,
    language: str = "auto",
    missing_think: float = 0.0,
    no_words: float | None = None,
) -> float | None:
    """Reward term: share of target-language units in the chain of thought.

    language: an ISO 639-1 code, or "auto": `sample.meta["language"]` when set, else the
    language detected in the question of `sample.prompt`. A completion without a think block
    scores `missing_think`. A thought with no countable unit (only numbers and math) scores
    `no_words`: None (no signal: the term is left out of the sum), or a value such as 1.0 (it
    mixes no language). None also when "auto" finds no language. An unknown language code
    raises ValueError.

    Why `no_words`: with None, on monolingual data every thought that has a word scores 1 and
    one of bare arithmetic scores nothing, so the term pays for words, not for consistency
    (SmolLM2 on two-digit additions, dynamic sampling on: over the first four steps the summed
    reward rose from 0.44 to 1.0 while accuracy stayed at 0 and completions grew from 32 to 43
    tokens).
    """
    if language == "auto":
        language = (
            sample.meta.get("language")
            or detect_language(prompt_question(sample.prompt))
            or detect_language(sample.prompt)
        )
        if not language:
            return None
    thought = think_text(sample.completion)
    if thought is None:
        return missing_think
    share = language_consistency(thought, language)
    return no_words if share is None else share
