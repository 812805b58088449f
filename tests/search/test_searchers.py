"""Search with a policy and a PRM (r1.search.searchers) on a scripted policy whose tokens are
characters, so every token count below is a character count done by hand."""

from __future__ import annotations

import json
import math

import pytest

from r1.checks import ConfigError
from r1.data.loaders import load_jsonl
from r1.data.problem import Problem
from r1.data.templates import PromptTemplate
from r1.rollout.types import SamplingParams, build_rollout
from r1.search.searchers import (
    MCTSSettings,
    PolicyExpander,
    PRMEvaluator,
    RolloutEvaluator,
    SearchOutcome,
    best_of_n,
    check_search_config,
    choose_best,
    collect_traces,
    completion_lead,
    mcts_solve,
    oracle_outcome,
    prm_outcome,
    search_report,
    write_traces,
)

EOS = 1


class CharTokenizer:
    """One token per character (id = code point + 2); 0 is padding, 1 is EOS."""

    pad_token_id, eos_token_id = 0, EOS

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict:
        return {"input_ids": [ord(c) + 2 for c in text]}

    def decode(self, ids, skip_special_tokens: bool = True) -> str:
        return "".join(chr(i - 2) for i in ids if i > EOS)

    def batch_decode(self, rows, skip_special_tokens: bool = True) -> list[str]:
        return [self.decode(r) for r in rows]


TOKENIZER = CharTokenizer()


def _sample(text: str, logprob: float, eos: bool, stop_at_newline: bool, limit: int):
    """(token ids, per-token log-probs, end) of writing `text` (+ EOS) under `limit`."""
    tokens = TOKENIZER(text)["input_ids"] + ([EOS] if eos else [])
    end = "eos" if eos else "stop"
    if len(tokens) > limit:
        tokens, end = tokens[:limit], "length"
    elif not eos and not stop_at_newline:
        end = "length"  # nothing ended it: the policy would go on
    return tokens, [logprob] * len(tokens), end


class ScriptedPolicy:
    """A policy written out as a table: after the steps so far (the lines after "<think>\\n"),
    the next lines it samples, round robin over the n samples, each with its per-token
    log-prob. An "<answer>" line is followed by EOS. With "\\n" among the stop strings it writes
    one line and its "\\n"; without, it rolls out to the end, always taking the first line.
    `tokens` counts every token it generated."""

    def __init__(self, table: dict[tuple[str, ...], list[tuple[str, float]]]):
        self.table, self.calls, self.tokens = table, [], 0

    def generate(self, prompt_ids, params: SamplingParams, n: int):
        self.calls.append(params)
        rows, logprobs, finished = [], [], []
        for ids in prompt_ids:
            text = TOKENIZER.decode(ids)
            steps = tuple(text.split("<think>\n", 1)[1].split("\n")[:-1])
            for j in range(n):
                if "\n" in params.stop:
                    line, logprob = self.table[steps][j % len(self.table[steps])]
                    answer = line.startswith("<answer>")
                    sample = _sample(
                        line + ("" if answer else "\n"),
                        logprob,
                        answer,
                        True,
                        params.max_new_tokens,
                    )
                else:
                    sample = self._rollout(steps, params.max_new_tokens)
                rows.append(sample[0])
                logprobs.append(sample[1])
                finished.append(sample[2])
        self.tokens += sum(len(r) for r in rows)
        return build_rollout(TOKENIZER, prompt_ids, rows, logprobs, finished, n)

    def _rollout(self, steps: tuple[str, ...], limit: int):
        lines = []
        while steps in self.table:
            line = self.table[steps][0][0]
            lines.append(line)
            steps = (*steps, line)
        answer = bool(lines) and lines[-1].startswith("<answer>")
        return _sample("\n".join(lines), -0.1, answer, False, limit)


class TableScorer:
    """A PRM that scores each step from a table (0.5 for a step it does not know)."""

    def __init__(self, step_scores: dict[str, float]):
        self.step_scores, self.calls = step_scores, []

    def score(self, prompts, step_lists):
        self.calls.append((list(prompts), [list(s) for s in step_lists]))
        return [[self.step_scores.get(step, 0.5) for step in steps] for steps in step_lists]


PROMPT = "Q: What is 12 + 88 - 69? A:"
ROOT = PROMPT + "<think>\n"
RIGHT = "<think>\n12 + 88 = 100\n100 - 69 = 31\n</think>\n<answer>31</answer>"
WRONG = "<think>\n12 + 88 = 90\n90 - 69 = 21\n</think>\n<answer>21</answer>"
# The policy prefers the slip 12 + 88 = 90 (per-token log-prob -0.1 against -0.5).
SOLUTIONS = {
    (): [("12 + 88 = 90", -0.1), ("12 + 88 = 100", -0.5)],
    ("12 + 88 = 90",): [("90 - 69 = 21", -0.1)],
    ("12 + 88 = 100",): [("100 - 69 = 31", -0.1)],
    ("12 + 88 = 90", "90 - 69 = 21"): [("</think>", -0.1)],
    ("12 + 88 = 100", "100 - 69 = 31"): [("</think>", -0.1)],
    ("12 + 88 = 90", "90 - 69 = 21", "</think>"): [("<answer>21</answer>", -0.1)],
    ("12 + 88 = 100", "100 - 69 = 31", "</think>"): [("<answer>31</answer>", -0.1)],
}
# A PRM that sees the slip: the right branch scores 0.9 per step, the wrong one 0.2.
GOOD_PRM = {"12 + 88 = 100": 0.9, "100 - 69 = 31": 0.9, "<answer>31</answer>": 0.9}
GOOD_PRM |= {"12 + 88 = 90": 0.2, "90 - 69 = 21": 0.2, "<answer>21</answer>": 0.2}


def problem(gold: str = "31") -> Problem:
    return Problem(question="What is 12 + 88 - 69?", answer=gold, task="arithmetic")


# -- the expander --------------------------------------------------------------------------------


def test_expander_cuts_steps_at_newlines_with_priors_terminals_and_every_token_counted():
    policy = ScriptedPolicy(
        {
            (): [
                ("12 + 88 = 100", -0.2),  # 13 chars + "\n" = 14 tokens, stopped
                ("", -1.0),  # a bare "\n": 1 token, no child
                ("<answer>100</answer>", -0.3),  # 20 chars + EOS = 21 tokens, ended
                ("x" * 40, -0.4),  # cut at the 30-token limit
            ]
        }
    )
    expander = PolicyExpander(policy, TOKENIZER, SamplingParams(max_new_tokens=30))
    candidates = expander(ROOT, 4)
    (params,) = policy.calls
    assert params.stop == ("\n",) and params.max_new_tokens == 30
    assert [(c.text, c.tokens, c.terminal) for c in candidates] == [
        ("12 + 88 = 100", 14 + 1, False),  # carries the bare newline's token
        ("<answer>100</answer>", 21, True),  # EOS
        ("x" * 30, 30, True),  # ran out of tokens: terminal, and recorded as truncated
    ]
    assert [c.prior for c in candidates] == pytest.approx([math.exp(-0.2), math.exp(-0.3), 0.67032])
    assert sum(c.tokens for c in candidates) == policy.tokens == 66
    assert expander.truncated == {ROOT + "x" * 30 + "\n"}
    assert expander.uncounted_tokens == 0


def test_expander_keeps_its_own_stop_strings_and_counts_tokens_of_an_all_empty_expansion():
    policy = ScriptedPolicy({(): [("", -1.0)]})
    params = SamplingParams(max_new_tokens=8, stop=("</answer>",))
    expander = PolicyExpander(policy, TOKENIZER, params)
    assert expander(ROOT, 3) == []
    assert policy.calls[0].stop == ("</answer>", "\n")
    assert expander.uncounted_tokens == 3  # three bare newlines, no candidate to carry them


# -- the evaluators ------------------------------------------------------------------------------


def test_rollout_evaluator_scores_the_finished_completion_and_costs_its_tokens():
    seen = []

    def outcome(completion: str, stopped: bool) -> float:
        seen.append((completion, stopped))
        return 0.75

    policy = ScriptedPolicy(SOLUTIONS)
    evaluator = RolloutEvaluator(
        policy, TOKENIZER, PROMPT, SamplingParams(max_new_tokens=100), outcome
    )
    value, tokens = evaluator(ROOT + "12 + 88 = 100\n")
    # "100 - 69 = 31\n</think>\n<answer>31</answer>" = 14 + 9 + 19 characters, then EOS
    assert (value, tokens) == (0.75, 43)
    assert seen == [(RIGHT, True)]
    assert policy.calls[0].stop == ()

    evaluator.params = SamplingParams(max_new_tokens=10)
    assert evaluator(ROOT + "12 + 88 = 100\n")[1] == 10
    assert seen[-1] == ("<think>\n12 + 88 = 100\n100 - 69 =", False)


def test_oracle_outcome_is_the_strict_rule_against_the_gold_answer():
    assert oracle_outcome(problem("31"))(RIGHT, True) == 1.0
    assert oracle_outcome(problem("31"))(RIGHT, False) == 0.0  # did not stop: wrong
    assert oracle_outcome(problem("21"))(RIGHT, True) == 0.0


def test_prm_evaluator_and_outcome_aggregate_the_steps_so_far():
    scorer = TableScorer({"12 + 88 = 100": 0.9, "100 - 69 = 31": 0.6})
    prefix = ROOT + "12 + 88 = 100\n100 - 69 = 31\n"
    assert PRMEvaluator(scorer, PROMPT, "min")(prefix) == (0.6, 0)
    assert PRMEvaluator(scorer, PROMPT, "mean")(prefix) == (pytest.approx(0.75), 0)
    assert scorer.calls[0] == ([PROMPT], [["12 + 88 = 100", "100 - 69 = 31"]])

    outcome = prm_outcome(scorer, PROMPT, "last")
    assert outcome("<think>\n12 + 88 = 100\n100 - 69 = 31", True) == 0.6
    calls = len(scorer.calls)
    assert outcome("<think>\n12 + 88 = 100\n100 - 69 = 31", False) == 0.0  # truncated
    assert len(scorer.calls) == calls  # ... which needs no PRM call
    with pytest.raises(ValueError, match="does not start with the prompt"):
        PRMEvaluator(scorer, PROMPT)("another prompt\n")


# -- MCTS with the policy ------------------------------------------------------------------------


def settings(**overrides) -> MCTSSettings:
    return MCTSSettings(**{"width": 2, "depth": 6, "token_budget": 1000, **overrides})


def test_gold_free_mcts_chooses_without_reading_the_gold_answer():
    # The whole tree: root expansion 13 + 14 tokens, then 2 samples per expansion:
    # "90 - 69 = 21\n" 2 x 13, "100 - 69 = 31\n" 2 x 14, "</think>\n" 2 x 9 twice and
    # "<answer>..</answer>" + EOS 2 x 20 twice: 27 + 26 + 28 + 18 + 18 + 80 = 197.
    def solve(gold: str):
        policy = ScriptedPolicy(SOLUTIONS)
        outcome = mcts_solve(
            problem(gold),
            PROMPT,
            policy,
            TOKENIZER,
            TableScorer(GOOD_PRM),
            settings(),
            SamplingParams(max_new_tokens=60),
        )
        return outcome, policy.tokens

    right, tokens = solve("31")
    assert right.completion == RIGHT and right.correct and right.strict_format and right.stopped
    assert right.tokens_used == tokens == 197
    # min over the steps, "</think>" unknown to the PRM: 0.5 (the other answer's is 0.2)
    assert right.value == 0.5
    assert (right.stop_reason, right.nodes, right.candidates) == ("exhausted", 9, 2)
    assert [t.completion for t in right.traces] == [RIGHT, WRONG]

    poisoned, _ = solve("21")  # a wrong gold answer changes nothing but the verdict
    assert poisoned.completion == RIGHT and not poisoned.correct
    assert (poisoned.tokens_used, poisoned.iterations, poisoned.value) == (
        right.tokens_used,
        right.iterations,
        right.value,
    )

    # An oracle does read it: with the poisoned gold it picks the other answer.
    oracle = mcts_solve(
        problem("21"),
        PROMPT,
        ScriptedPolicy(SOLUTIONS),
        TOKENIZER,
        None,
        settings(evaluator="rollout", terminal="oracle"),
        SamplingParams(max_new_tokens=60),
    )
    assert oracle.completion == WRONG and oracle.correct and oracle.value == 1.0


def test_rollout_evaluator_mcts_values_rollouts_with_the_prm_when_gold_free():
    misled = {step: 1.0 - score for step, score in GOOD_PRM.items()}  # prefers the slip
    outcome = mcts_solve(
        problem(),
        PROMPT,
        ScriptedPolicy(SOLUTIONS),
        TOKENIZER,
        TableScorer(misled),
        settings(evaluator="rollout"),
        SamplingParams(max_new_tokens=60),
    )
    assert outcome.completion == WRONG and not outcome.correct
    assert outcome.value == 0.5  # min(0.8, 0.8, 0.5 for "</think>", 0.8); the right one's: 0.1


def test_mcts_stops_at_the_token_budget_with_an_unfinished_answer():
    # The root expansion costs 27 tokens; with a budget of 27 nothing else may run, and the
    # answer is the higher-prior unvisited step, unfinished: wrong.
    outcome = mcts_solve(
        problem(),
        PROMPT,
        ScriptedPolicy(SOLUTIONS),
        TOKENIZER,
        TableScorer(GOOD_PRM),
        settings(token_budget=27),
        SamplingParams(max_new_tokens=60),
    )
    assert outcome.stop_reason == "budget" and outcome.tokens_used == 27
    assert outcome.completion == "<think>\n12 + 88 = 90"
    assert not outcome.stopped and not outcome.correct and outcome.candidates == 0


def test_lead_of_the_r1_zero_template_starts_the_search_after_its_space():
    assert completion_lead(PromptTemplate(kind="r1_zero")) == " "
    assert completion_lead(PromptTemplate(kind="plain")) == ""
    outcome = mcts_solve(
        problem(),
        PROMPT,
        ScriptedPolicy(SOLUTIONS),
        TOKENIZER,
        TableScorer(GOOD_PRM),
        settings(),
        SamplingParams(max_new_tokens=60),
        lead=" ",
    )
    assert outcome.completion == " " + RIGHT and outcome.correct


def test_a_prm_search_without_a_prm_is_refused():
    with pytest.raises(ConfigError, match="search.evaluator=prm search.terminal=prm needs a PRM"):
        mcts_solve(
            problem(),
            PROMPT,
            ScriptedPolicy(SOLUTIONS),
            TOKENIZER,
            None,
            settings(),
            SamplingParams(),
        )


# -- best-of-N -----------------------------------------------------------------------------------


class TextEngine:
    """Returns the given texts in order, each ended by EOS unless it ends with "..." (cut at the
    limit); one token per character."""

    def __init__(self, texts):
        self.texts, self.calls = list(texts), 0

    def generate(self, prompt_ids, params, n):
        self.calls += 1
        texts, self.texts = self.texts[: len(prompt_ids) * n], self.texts[len(prompt_ids) * n :]
        samples = [_sample(t, -0.1, not t.endswith("..."), False, 1000) for t in texts]
        return build_rollout(TOKENIZER, prompt_ids, *(list(column) for column in zip(*samples)), n)


def test_choose_best_prefers_stopped_completions_then_the_highest_value():
    assert choose_best([0.2, None, 0.9], [True, True, False]) == 0  # 0.9 did not stop
    assert choose_best([0.2, 0.7, 0.7], [True, True, True]) == 1  # a tie: the earlier
    assert choose_best([0.2, 0.4], [False, False]) == 1  # none stopped: all compete
    assert choose_best([None, 0.1], [True, True]) == 1  # no value counts as 0


def test_best_of_n_reranks_by_the_prm_and_counts_all_n_samples():
    truncated = "<think>\n12 + 88 = 100\n100 - 69 = 31\n</think>..."
    off_by_one = RIGHT.replace("31", "32")
    engine = TextEngine(
        [WRONG, RIGHT, truncated]  # problem 1
        + [WRONG, off_by_one, WRONG]  # problem 2: no right sample
    )
    scorer = TableScorer(GOOD_PRM | {"</think>...": 1.0})
    outcomes = best_of_n(
        engine,
        scorer,
        [problem("31"), problem("31")],
        [PROMPT, PROMPT],
        [[7], [8]],
        3,
        SamplingParams(max_new_tokens=100),
        aggregate="min",
        batch_size=2,
        progress=False,
    )
    assert engine.calls == 1  # one engine call for the batch of problems
    assert len(scorer.calls[0][1]) == 6  # the PRM saw all 2 x 3 samples
    first, second = outcomes
    # min over the steps: WRONG 0.2, RIGHT 0.5 ("</think>" is unknown: 0.5), the truncated
    # one 0.9, but it did not stop
    assert first.completion == RIGHT and first.correct and first.value == 0.5
    # tokens: characters + EOS for the stopped ones, characters for the cut one
    assert first.tokens_used == (62 + 1) + (64 + 1) + 47 == 175
    assert first.candidates == 3 and first.stop_reason is None
    assert second.completion == off_by_one and not second.correct  # PRM 0.5 against 0.2


def test_plain_sampling_reports_its_tokens_per_problem_for_the_equal_budget_comparison():
    from r1.eval.runner import evaluate

    engine = TextEngine([RIGHT, WRONG, WRONG, RIGHT + "..."])
    report = evaluate(
        engine, [problem(), problem()], [PROMPT, PROMPT], [[7], [8]], k=2, progress=False
    )
    # (64 + 1) + (62 + 1) for the first problem, (62 + 1) + 67 for the second: 2 x mean length
    assert report.metrics["tokens_per_problem"] == ((65 + 63) + (63 + 67)) / 2 == 129
    assert report.metrics["pass@1"] == 0.25


# -- configs, reports, expert iteration ----------------------------------------------------------


def test_search_configs_are_checked_before_any_model_loads():
    mcts = {"method": "mcts", "width": 2, "prm": {"name": None, "path": None}}
    with pytest.raises(ConfigError, match="search=best_of_n reranks with a PRM"):
        check_search_config({"method": "best_of_n", "n": 4, "aggregate": "min"}, test_time=True)
    with pytest.raises(ConfigError, match="search.n=0 must be >= 1"):
        check_search_config({"method": "best_of_n", "n": 0, "aggregate": "min"}, test_time=True)
    with pytest.raises(ConfigError, match="search.method='beam'"):
        check_search_config({"method": "beam"}, test_time=True)
    with pytest.raises(ConfigError, match="search.width=0 must be >= 1"):
        check_search_config({**mcts, "width": 0, "prm": {"name": "tiny"}}, test_time=True)
    with pytest.raises(ConfigError, match="needs a PRM"):
        check_search_config(mcts, test_time=True)
    oracle = {**mcts, "evaluator": "rollout", "terminal": "oracle"}
    with pytest.raises(ConfigError, match="search.allow_oracle=true"):
        check_search_config(oracle, test_time=True)
    check_search_config(oracle, test_time=False)  # training problems: allowed
    check_search_config({**oracle, "allow_oracle": True}, test_time=True)


def test_search_report_metrics_by_hand(tmp_path):
    def outcome(correct, tokens, reason, found):
        return SearchOutcome(
            completion=RIGHT if correct else WRONG,
            correct=correct,
            strict_format=True,
            stopped=bool(found),
            tokens_used=tokens,
            value=0.5,
            candidates=found,
            stop_reason=reason,
            iterations=4,
            nodes=9,
        )

    outcomes = [outcome(True, 100, "exhausted", 1), outcome(False, 300, "budget", 0)]
    settings = {"temperature": 0.6, "top_p": 0.95, "max_new_tokens": 64}
    report = search_report(
        "mcts",
        [problem(), problem()],
        outcomes,
        "answer_tag",
        {**settings, "search_settings": {"token_budget": 300}, "oracle": True},
    )
    m = report.metrics
    assert (m["accuracy"], m["tokens_per_problem"], m["tokens_per_problem_max"]) == (0.5, 200, 300)
    assert (m["search_stop_budget_rate"], m["search_found_rate"], m["stop_rate"]) == (0.5, 0.5, 0.5)
    assert report.problems[0]["answers"] == ["31"] and report.problems[1]["correct"] == [False]
    markdown = report.markdown()
    assert "by search `mcts` (token_budget=300)" in markdown and "**ORACLE**" in markdown
    json_path, _ = report.write(tmp_path)
    assert json.loads(json_path.read_text())["settings"]["oracle"] is True
    gold_free = search_report(
        "best_of_n", [problem()], outcomes[:1], "answer_tag", {**settings, "oracle": False}
    )
    assert "ORACLE" not in gold_free.markdown() and "search_found_rate" not in gold_free.metrics


def test_expert_iteration_keeps_correct_traces_as_sft_rows_that_load(tmp_path):
    problems = [problem("31"), problem("7")]  # the second is unsolvable: nothing is kept
    rows, report = collect_traces(
        problems,
        [PROMPT, PROMPT],
        ScriptedPolicy(SOLUTIONS),
        TOKENIZER,
        None,
        settings(evaluator="rollout", terminal="oracle"),
        SamplingParams(max_new_tokens=60),
        keep=2,
        progress=False,
    )
    assert rows == [
        {
            "question": "What is 12 + 88 - 69?",
            "answer": "31",
            "task": "arithmetic",
            "meta": {},
            "completion": RIGHT,
        }
    ]
    assert (report.problems, report.solved, report.traces_found, report.traces_kept) == (2, 1, 4, 1)
    # per problem: the whole tree's 197 expansion tokens, and one rollout per non-terminal
    # node: 42 + 43 (after step 1), 29 + 29 (after step 2), 20 + 20 (after "</think>")
    assert report.stop_reasons == {"exhausted": 2} and report.tokens_used == 2 * (197 + 183)
    path = write_traces(rows, report, tmp_path)
    (loaded,) = load_jsonl(path, solution_field=None)  # what data=jsonl reads for SFT
    assert loaded.meta["completion"] == RIGHT and loaded.answer == "31"
    assert json.loads((tmp_path / "search.json").read_text())["traces_kept"] == 1
    assert (
        "| solved (a correct finished solution) | 1 (50.0%) |"
        in (tmp_path / "search.md").read_text()
    )
