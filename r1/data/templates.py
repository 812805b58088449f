"""Prompt templates: the paper's R1-Zero text template and chat-template modes.

A template turns a question into the prompt string the model continues. `completion_for`
writes the target a cold-start SFT example teaches: `<think>` solution `</think>` then
`<answer>` gold `</answer>`; with `summary=True`, the readable layout of DeepSeek-R1's cold
start, a `<summary>` for the reader between the two.
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
# The instruction with one worked example of the layout: SmolLM2-135M-Instruct, given the
# instruction alone, wrote a think block in 0 of 32 samples on two-digit additions; with the
# example and response_prefix="<think>", in 21 of 32, 5 with an answer block (T = 1).
R1_EXAMPLE = (
    "Solve the problem. Write your reasoning inside <think> </think> and the final answer "
    "inside <answer> </answer>. Example. Question: What is 12 + 35? Response: <think> 12 + 35 "
    "= 47 </think> <answer>47</answer>"
)
SYSTEM_PROMPTS = {"r1": R1_INSTRUCTION, "r1_example": R1_EXAMPLE}
TEMPLATE_KINDS = ("r1_zero", "chat", "plain")
RESPONSE_PREFIXES = ("", "<think>")
# The readable layout's summary of a worked solution: its last line (the result) and the answer.
SUMMARY_SENTENCES = {
    "en": "{result}, so the answer is {answer}.",
    "zh": "{result}，所以答案是 {answer}。",
}


@dataclass(frozen=True)
class PromptTemplate:
    """How a question becomes a prompt.

    kind:
      r1_zero  the paper's R1-Zero text template (for base models), no chat markup.
      chat     the tokenizer's chat template; `system` (optional) as the system message.
      plain    the question alone (`user_format` applied), no markup.
    system: "r1" (the paper's think/answer instruction), "r1_example" (a shorter instruction
      with one worked example, which small models follow), None, or any text.
    user_format: wraps the question, e.g. "{question} Answer with just the number."
    response_prefix: "" or "<think>": the assistant's response starts with the think tag,
      written into the prompt (as TinyZero does), so the model only has to continue its
      reasoning; completions are read with the tag in front (r1.rollout.types.response_texts).
    summary: SFT targets in the readable layout: the reasoning, then a `<summary>` for the
      reader (what a reward model with `score_on: summary` sees), then the answer block.
    """

    kind: str = "chat"
    system: str | None = "r1"
    user_format: str = "{question}"
    response_prefix: str = ""
    summary: bool = False

    def __post_init__(self):
        if self.kind not in TEMPLATE_KINDS:
            raise ConfigError(
                f"unknown template kind {self.kind!r}; valid: {', '.join(TEMPLATE_KINDS)}"
            )
        if self.response_prefix not in RESPONSE_PREFIXES:
            raise ConfigError(
                f"template response_prefix {self.response_prefix!r} must be one of "
                f"{', '.join(map(repr, RESPONSE_PREFIXES))}"
            )
        if "{question}" not in self.user_format:
            raise ConfigError(
                f"template user_format {self.user_format!r} must contain '{{question}}'"
            )

    def render(self, question: str, tokenizer=None) -> str:
        prompt = self._markup(self.user_format.format(question=question), tokenizer)
        if self.response_prefix:
            return prompt + self.lead + self.response_prefix
        return prompt

    @property
    def lead(self) -> str:
        """What a response writes before "<think>": " " after the R1-Zero prompt's
        "Assistant:", else nothing."""
        return " " if self.kind == "r1_zero" else ""

    def _markup(self, user: str, tokenizer) -> str:
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
            system = SYSTEM_PROMPTS.get(self.system, self.system)
            messages.insert(0, {"role": "system", "content": system})
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def completion_for(self, solution: str, answer: str, language: str = "en") -> str:
        """The SFT target for a worked solution (EOS is appended at tokenisation): the
        response after what the prompt already holds of it. `language` (en | zh) is the
        summary's, in the readable layout."""
        summary = ""
        if self.summary:
            lines = solution.strip().splitlines() or [""]
            sentence = SUMMARY_SENTENCES.get(language, SUMMARY_SENTENCES["en"])
            summary = (
                f"<summary>{sentence.format(result=lines[-1].strip(), answer=answer)}</summary>\n"
            )
        response = f"<think>\n{solution.strip()}\n</think>\n{summary}<answer>{answer}</answer>"
        if self.response_prefix:
            return response.removeprefix(self.response_prefix)
        return self.lead + response
