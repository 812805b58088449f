"""The rules a direct answer to a general request should follow, checked by rule: the measure
of a reward model's helpfulness reward that cannot be hacked the way the model can. In the RL
stage for all scenarios it runs beside the learned terms with weight 0 (reported, not trained
on): if the learned reward rises while this does not, the policy is exploiting the model."""

from __future__ import annotations

import re

from r1.rewards.types import RewardSample
from r1.text import GENERAL_RULES, after_thinking, broken_rules

_TAGS = re.compile(r"</?(?:think|summary|answer)>")


def general_rules(sample: RewardSample) -> float | None:
    """The share of the rules (r1.text.broken_rules: not empty, in the request's language,
    the number of sentences asked, nothing repeated) that what a reader is shown follows: the
    text after the thinking, tags removed. None without the request's language in meta."""
    language = sample.meta.get("language")
    if language not in ("en", "zh"):
        return None
    shown = _TAGS.sub(" ", after_thinking(sample.completion)).strip()
    broken = broken_rules(shown, language, sample.meta.get("sentences"))
    if "empty" in broken:
        return 0.0
    checked = [rule for rule in GENERAL_RULES if rule != "empty"]
    if sample.meta.get("sentences") is None:
        checked.remove("length")
    return 1.0 - len(broken) / len(checked)
