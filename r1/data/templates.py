"""Prompt templates: the paper's R1-Zero text template and chat-template modes.

A template turns a question into the prompt string the model continues. `completion_for`
writes the target a cold-start SFT example teaches: `<think>` solution `</think>` then
`<answer>` gold `</answer>`.
"""

from __future__ import annotations

from dataclasses import dataclass

from r1.checks import ConfigError

R1_INSTRUCTION = (
    "The assistant first thinks about the reasoning process in the mind and then provides the "
    "user with the answer. The reasoning process and answer are enclosed within <think> </think> "
    "and <answer> </answer> tags, respectively, i.e., <think> reasoning process here </think> "
    "<answer> answer here </answer>."
)
# Verbatim from the DeepSeek-R1 paper (Table 1); `{prompt}` is the question.
R1_ZERO_TEMPLATE = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant "
    "solves it. " + R1_INSTRUCTION + " User: {prompt}. Assistant:"
)
TEMPLATE_KINDS = ("r1_zero", "chat", "plain")


@dataclass(frozen=True)
class PromptTemplate:
    """How a question becomes a prompt.

    kind:
      r1_zero  the paper's R1-Zero text template (for base models), no chat markup.
      chat     the tokenizer's chat template; `system` (optional) as the system message.
      plain    the question alone (`user_format` applied), no markup.
    system: "r1" (the paper's think/answer instruction), None, or any text.
    user_format: wraps the question, e.g. "{question} Answer with just the number."
    """

    kind: str = "chat"
    system: str | None = "r1"
    user_format: str = "{question}"

    def __post_init__(self):
        if self.kind not in TEMPLATE_KINDS:
            raise ConfigError(
                f"unknown template kind {self.kind!r}; valid: {', '.join(TEMPLATE_KINDS)}"
            )
        if "{question}" not in self.user_format:
            raise ConfigError(
                f"template user_format {self.user_format!r} must contain '{{question}}'"
            )

    def render(self, question: str, tokenizer=None) -> str:
        user = self.user_format.format(question=question)
        if self.kind == "r1_zero":
            return R1_ZERO_TEMPLATE.format(prompt=user)
        if self.kind == "plain":
            return user
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            raise ConfigError(
                "template kind 'chat' needs a tokenizer with a chat template; "
                "use data.template.kind=r1_zero for base models"
            )
        messages = [{"role": "user", "content": user}]
        if self.system:
            system = R1_INSTRUCTION if self.system == "r1" else self.system
            messages.insert(0, {"role": "system", "content": system})
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def completion_for(self, solution: str, answer: str) -> str:
        """The SFT target for a worked solution (EOS is appended at tokenisation)."""
        lead = " " if self.kind == "r1_zero" else ""  # the R1-Zero prompt ends in "Assistant:"
        return f"{lead}<think>\n{solution.strip()}\n</think>\n<answer>{answer}</answer>"
