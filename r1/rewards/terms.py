"""The built-in reward terms, registered by name (`reward.terms.<key>.fn`)."""

from r1.rewards.accuracy import accuracy
from r1.rewards.code import code_exec_batch
from r1.rewards.format import format_soft, format_strict
from r1.rewards.general import general_rules
from r1.rewards.language import lang_consistency
from r1.rewards.length import cosine_length, overlong_penalty
from r1.rewards.prm import prm_score
from r1.rewards.registry import register_reward
from r1.rewards.repetition import ngram_repetition
from r1.rewards.reward_model import reward_model

register_reward("accuracy")(accuracy)
register_reward("format_strict")(format_strict)
register_reward("format_soft")(format_soft)
register_reward("cosine_length")(cosine_length)
register_reward("overlong_penalty")(overlong_penalty)
register_reward("ngram_repetition")(ngram_repetition)
register_reward("lang_consistency")(lang_consistency)
register_reward("reward_model", batched=True)(reward_model)
register_reward("code_exec", batched=True, sandboxed=True)(code_exec_batch)
register_reward("prm", batched=True)(prm_score)
register_reward("general_rules")(general_rules)
