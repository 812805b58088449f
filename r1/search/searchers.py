"""Search with the real policy and PRM: MCTS over reasoning steps and best-of-N reranking.

Three ways to spend generated tokens on one problem, compared at an equal budget by
`scripts/evaluate.py search=none|best_of_n|mcts`:

- plain sampling (r1.eval.runner): k samples; the gold-free choice among them is the
  majority answer (cons@k), at k x mean-length tokens;
- best-of-N (`best_of_n`): N samples; the answer is the one the PRM scores highest, at
  N x mean-length tokens;
- MCTS (`mcts_solve`): the pure step-level search of r1.search.mcts, a step being one line of
  the <think> block, stopped when `token_budget` tokens were generated (step expansions and
  evaluation rollouts alike).

Gold-free or oracle. The pure MCTS scores a finished solution with a `TerminalValue` and
returns the finished solution it valued highest. Scored against the gold answer (the rule
reward), that is an oracle: fine for expert iteration on training problems, whose gold answer
is training data (`collect_traces`), but at test time it would pick the right answer by
reading it. So every finished solution, a terminal node or the end of an evaluation
rollout, is scored by one `Outcome` chosen with `terminal`:

- "prm": the PRM's aggregate over its steps, 0 for a completion that did not stop. Gold-free:
  the default, and the only mode `scripts/evaluate.py` runs unless told otherwise;
- "oracle": 1.0 if the strict rule finds it right against the gold answer, else 0.0.

Whatever the mode, the chosen completion is scored against the gold answer only after the
search returned, to report `correct`; best-of-N never reads the gold answer to choose either.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from r1.checks import ConfigError, check_choice, check_float, check_int
from r1.data.problem import Problem
from r1.data.templates import PromptTemplate
from r1.eval.heldout import sample_completions, score_completion, score_text
from r1.eval.rejection import write_dataset
from r1.eval.runner import EvalReport
from r1.rewards.accuracy import extract_answer
from r1.rewards.prm import AGGREGATIONS, aggregate_step_scores
from r1.rollout.types import SamplingParams
from r1.search.mcts import MCTS, SELECTIONS, Candidate
from r1.search.policy import continue_texts
from r1.text import ANSWER_CLOSE, STEP_SEPARATOR, THINK_START, completion_steps

EVALUATORS = ("prm", "rollout")
TERMINALS = ("prm", "oracle")
SEARCH_METHODS = ("none", "best_of_n", "mcts")

# The value in [0, 1] of a finished completion (the text after the prompt) and whether it
# stopped by itself (EOS or the end of an answer step) rather than running out of tokens.
Outcome = Callable[[str, bool], float]


# -- completions and their values --------------------------------------------------------------


def completion_lead(template: PromptTemplate) -> str:
    """What the template's completions write before "<think>": " " for the R1-Zero template
    (its prompt ends in "Assistant:"), else "". A search starts where the policy would."""
    if template.response_prefix:
        raise ConfigError(
            f"search writes whole responses; data.template.response_prefix="
            f"{template.response_prefix!r} puts part of one in the prompt: set it to ''"
        )
    return template.lead


def trace_completion(steps: Sequence[str], lead: str = "") -> str:
    """The completion a list of steps stands for: ["a", "</think>", "<answer>1</answer>"] ->
    "<think>\\na\\n</think>\\n<answer>1</answer>" (after `lead`)."""
    return lead + THINK_START + STEP_SEPARATOR.join(steps)


def _after_prompt(prompt: str, prefix: str) -> str:
    """The completion so far in a search prefix (prompt + lead + "<think>\n" + steps, each
    followed by the separator)."""
    if not prefix.startswith(prompt):
        raise ValueError(f"search prefix {prefix[:60]!r} does not start with the prompt")
    return prefix[len(prompt) :]


def _completion_of(prompt: str, prefix: str) -> str:
    """The completion a finished prefix stands for: without its final separator."""
    return _after_prompt(prompt, prefix).removesuffix(STEP_SEPARATOR)


def oracle_outcome(problem: Problem, answer_source: str = "answer_tag") -> Outcome:
    """1.0 if the completion stopped and its answer is right against the gold answer (the
    strict rule of held-out evaluation), else 0.0. Reads the gold answer: training only."""

    def outcome(completion: str, stopped: bool) -> float:
        return float(score_text(problem, completion, stopped, answer_source).correct)

    return outcome


def prm_outcome(scorer, prompt: str, aggregate: str = "min") -> Outcome:
    """The PRM's `aggregate` of the completion's step scores (its lines, as MCTS builds
    steps); 0.0 for a completion that did not stop (truncated, it cannot count as right) or
    has no steps. `scorer` needs `score(prompts, step_lists)`, as `PRMScorer` has."""
    check_choice("search.aggregate", aggregate, AGGREGATIONS)

    def outcome(completion: str, stopped: bool) -> float:
        return _prm_value(scorer, prompt, completion, aggregate) if stopped else 0.0

    return outcome


def _prm_value(scorer, prompt: str, completion: str, aggregate: str) -> float:
    """The PRM's `aggregate` over the completion's lines (as MCTS builds steps); 0.0 without
    steps."""
    (scores,) = scorer.score([prompt], [completion_steps(completion, STEP_SEPARATOR)])
    value = aggregate_step_scores(scores, aggregate)
    return 0.0 if value is None else value


# -- the callables MCTS takes ------------------------------------------------------------------


class PolicyExpander:
    """MCTS's `Expander` with the policy: k sampled next steps of a prefix.

    Each continuation is sampled with "\\n" added to the stop strings; the step is its text
    up to the first "\\n", stripped (a stop token may carry text past the newline: it is
    dropped). prior = exp(logprob / tokens), the per-token geometric mean probability, so a
    long step is not penalised for its length alone (MCTS renormalises among siblings). A step
    is terminal when the model ended the text (EOS), when it holds "</answer>", or when it ran
    out of tokens before a newline: such a step is recorded in `truncated` and its solution
    counts as not stopped, so it scores 0.

    An empty step (a bare "\\n") becomes no child; its tokens are added to the first kept
    candidate so MCTS counts them against the budget, or, when nothing was kept, to
    `uncounted_tokens`, which `mcts_solve` adds to tokens_used (the budget check inside MCTS
    cannot see those: a search can overshoot its budget by them).
    """

    def __init__(self, engine, tokenizer, params: SamplingParams):
        stops = tuple(dict.fromkeys((*params.stop, STEP_SEPARATOR)))
        self.engine, self.tokenizer = engine, tokenizer
        self.params = replace(params, stop=stops)
        self.truncated: set[str] = set()  # prefix + step + "\n" of every step cut by the limit
        self.uncounted_tokens = 0

    def __call__(self, prefix: str, k: int) -> list[Candidate]:
        (group,) = continue_texts(self.engine, self.tokenizer, [prefix], self.params, k)
        candidates: list[Candidate] = []
        dropped_tokens = 0
        for continuation in group:
            text = continuation.text.partition(STEP_SEPARATOR)[0].strip()
            if not text:
                dropped_tokens += continuation.num_tokens
                continue
            ran_out = not continuation.finished
            if ran_out:
                self.truncated.add(prefix + text + STEP_SEPARATOR)
            prior = math.exp(continuation.logprob / max(continuation.num_tokens, 1))
            terminal = continuation.end == "eos" or ran_out or ANSWER_CLOSE in text
            candidates.append(Candidate(text, prior, continuation.num_tokens, terminal))
        if candidates:
            first = candidates[0]
            candidates[0] = first._replace(tokens=first.tokens + dropped_tokens)
        else:
            self.uncounted_tokens += dropped_tokens
        return candidates


class RolloutEvaluator:
    """MCTS's `Evaluator` by simulation: continue the partial solution once to the end (no
    stop string beyond those in `params`) and score the finished completion with `outcome`;
    the cost is the rollout's tokens."""

    def __init__(self, engine, tokenizer, prompt: str, params: SamplingParams, outcome: Outcome):
        self.engine, self.tokenizer, self.prompt = engine, tokenizer, prompt
        self.params, self.outcome = params, outcome

    def __call__(self, prefix: str) -> tuple[float, int]:
        so_far = _after_prompt(self.prompt, prefix)
        ((rollout,),) = continue_texts(self.engine, self.tokenizer, [prefix], self.params, 1)
        value = self.outcome(so_far + rollout.text, rollout.finished)
        return float(value), rollout.num_tokens


class PRMEvaluator:
    """MCTS's `Evaluator` by the PRM: the `aggregate` of the step scores of the partial
    solution (its lines so far); free in generated tokens."""

    def __init__(self, scorer, prompt: str, aggregate: str = "min"):
        check_choice("search.aggregate", aggregate, AGGREGATIONS)
        self.scorer, self.prompt, self.aggregate = scorer, prompt, aggregate

    def __call__(self, prefix: str) -> tuple[float, int]:
        so_far = _after_prompt(self.prompt, prefix)
        return _prm_value(self.scorer, self.prompt, so_far, self.aggregate), 0


# -- settings ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MCTSSettings:
    """One problem's search (the `search=mcts` config group, without `method` and `prm`).

    width: candidate steps per expansion (k samples). depth: steps per solution. token_budget:
    tokens generated per problem, expansions and rollouts together (the last call may cross
    it). step_max_tokens: the limit of one step. evaluator: "prm" (free) or "rollout" (one
    simulation to the end). terminal: how finished solutions are valued, "prm" (gold-free) or
    "oracle" (reads the gold answer). aggregate: how PRM step scores become one value.
    allow_oracle: scripts/evaluate.py refuses terminal=oracle unless this is true.
    """

    width: int = 4
    depth: int = 12
    token_budget: int = 2048
    c_puct: float = 1.5
    selection: str = "puct"
    max_iterations: int | None = None
    step_max_tokens: int = 48
    evaluator: str = "prm"
    terminal: str = "prm"
    aggregate: str = "min"
    allow_oracle: bool = False

    def __post_init__(self):
        check_int("search.width", self.width, 1)
        check_int("search.depth", self.depth, 1)
        check_int("search.token_budget", self.token_budget, 0)
        check_float("search.c_puct", self.c_puct, 0.0)
        check_choice("search.selection", self.selection, SELECTIONS)
        if self.max_iterations is not None:
            check_int("search.max_iterations", self.max_iterations, 0)
        check_int("search.step_max_tokens", self.step_max_tokens, 1)
        check_choice("search.evaluator", self.evaluator, EVALUATORS)
        check_choice("search.terminal", self.terminal, TERMINALS)
        check_choice("search.aggregate", self.aggregate, AGGREGATIONS)

    @property
    def needs_prm(self) -> bool:
        return self.evaluator == "prm" or self.terminal == "prm"

    @classmethod
    def from_config(cls, search: Mapping[str, Any]) -> MCTSSettings:
        """The settings from a `search=mcts` config; `method` and `prm` are read elsewhere."""
        names = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in search.items() if key in names})


def check_search_config(search: Mapping[str, Any], test_time: bool) -> None:
    """Refuse a search that cannot run or would not be what it claims, before any model loads.

    best_of_n and a PRM-guided or PRM-valued MCTS need a PRM (search.prm.name or .path). At
    test time (`test_time`, scripts/evaluate.py) an oracle MCTS reads the gold answer to
    choose, so it runs only with search.allow_oracle=true, and its report says so."""
    method = check_choice("search.method", search.get("method"), SEARCH_METHODS)
    prm = search.get("prm") or {}
    has_prm = bool(prm.get("name") or prm.get("path"))
    if method == "best_of_n":
        check_int("search.n", search.get("n"), 1)
        check_choice("search.aggregate", search.get("aggregate"), AGGREGATIONS)
        if not has_prm:
            raise ConfigError(
                "search=best_of_n reranks with a PRM: set search.prm.path=<a stage=prm "
                "checkpoint> or search.prm.name (tiny: a random one, for tests); without a "
                "PRM, the gold-free choice among k samples is the majority vote, cons@k of "
                "search=none"
            )
    if method == "mcts":
        settings = MCTSSettings.from_config(search)
        if settings.needs_prm and not has_prm:
            raise ConfigError(
                f"search.evaluator={settings.evaluator} search.terminal={settings.terminal} "
                "needs a PRM: set search.prm.path=<a stage=prm checkpoint> or search.prm.name; "
                "without one only evaluator=rollout terminal=oracle runs, which reads the "
                "gold answer"
            )
        if test_time and settings.terminal == "oracle" and not settings.allow_oracle:
            raise ConfigError(
                "search.terminal=oracle scores finished solutions against the gold answer, so "
                "its accuracy is not a test-time result; use terminal=prm, or set "
                "search.allow_oracle=true to run it anyway (the report is marked ORACLE)"
            )


def load_search_prm(prm: Mapping[str, Any] | None, seed: int = 0):
    """A `PRMScorer` for `search.prm` ({name, path, dtype}), or None when neither name nor
    path is set."""
    prm = dict(prm or {})
    if not prm.get("name") and not prm.get("path"):
        return None
    from r1.models.prm import prm_scorer

    return prm_scorer(
        name=prm.get("name"), path=prm.get("path"), dtype=prm.get("dtype", "float32"), seed=seed
    )


# -- what a search returns ---------------------------------------------------------------------


@dataclass(frozen=True)
class FoundTrace:
    """A finished solution MCTS found."""

    completion: str  # as the policy would write it: lead, "<think>\n", the steps
    value: float  # its terminal value (the PRM's, or the oracle's 0/1)
    visits: int
    stopped: bool  # False: its last step ran out of tokens


@dataclass(frozen=True)
class SearchOutcome:
    """One problem's search: the chosen completion, scored against the gold answer only
    after it was chosen, and what the search cost."""

    completion: str
    correct: bool  # stopped, and its answer is right (the strict held-out rule)
    strict_format: bool
    stopped: bool  # best-of-N: the sample stopped; MCTS: a finished, untruncated solution
    tokens_used: int  # every generated token: all N samples, or expansions + rollouts
    value: float | None  # the search's own score of its choice (None: it had none)
    candidates: int  # completions it chose among: N samples, or the finished solutions found
    stop_reason: str | None = None  # MCTS: budget | exhausted | max_iterations
    iterations: int = 0
    nodes: int = 0
    traces: tuple[FoundTrace, ...] = ()  # MCTS: every finished solution, best first


def _scored(problem: Problem, text: str, tokens: int, stopped: bool, answer_source: str):
    return score_text(problem, text, stopped, answer_source)


def choose_best(values: Sequence[float | None], stopped: Sequence[bool]) -> int:
    """Index of the highest value among the completions that stopped (all of them when none
    did; a missing value counts as 0); ties go to the earlier one. Gold-free: a truncated
    completion is wrong whatever it says, and that needs no answer key to see."""
    if not values:
        raise ValueError("choose_best needs at least one completion")
    pool = [i for i in range(len(values)) if stopped[i]] or list(range(len(values)))
    return max(pool, key=lambda i: (values[i] if values[i] is not None else 0.0, -i))


def best_of_n(
    engine,
    scorer,
    problems: Sequence[Problem],
    prompts: Sequence[str],
    prompt_ids: Sequence[Sequence[int]],
    n: int,
    params: SamplingParams,
    *,
    aggregate: str = "min",
    answer_source: str = "answer_tag",
    batch_size: int = 8,
    progress: bool = True,
) -> list[SearchOutcome]:
    """N samples per problem (one engine call per batch of problems), reranked by the PRM's
    `aggregate` of each sample's step scores (steps cut as `completion_steps` does, the way
    PRM labels are made); the answer is `choose_best` of them. tokens_used counts all N."""
    check_int("search.n", n, 1)
    check_choice("search.aggregate", aggregate, AGGREGATIONS)
    outcomes: list[SearchOutcome] = []
    batches = range(0, len(problems), batch_size)
    for start in tqdm(batches, desc=f"best-of-{n}", unit="batch", disable=not progress):
        chunk_prompts = prompts[start : start + batch_size]
        chunk_ids = [list(ids) for ids in prompt_ids[start : start + batch_size]]
        samples = sample_completions(engine, chunk_ids, params, n)
        scores = scorer.score(
            [p for p in chunk_prompts for _ in range(n)],
            [completion_steps(c.text) for c in samples],
        )
        for i, problem in enumerate(problems[start : start + batch_size]):
            own = samples[i * n : (i + 1) * n]
            values = [aggregate_step_scores(s, aggregate) for s in scores[i * n : (i + 1) * n]]
            best = choose_best(values, [c.finished for c in own])
            chosen = own[best]
            score = score_completion(problem, chosen, answer_source)
            outcomes.append(
                SearchOutcome(
                    completion=chosen.text,
                    correct=score.correct,
                    strict_format=score.strict_format,
                    stopped=chosen.finished,
                    tokens_used=sum(c.num_tokens for c in own),
                    value=values[best],
                    candidates=n,
                )
            )
    return outcomes


def mcts_solve(
    problem: Problem,
    prompt: str,
    engine,
    tokenizer,
    scorer,
    settings: MCTSSettings,
    params: SamplingParams,
    *,
    lead: str = "",
    answer_source: str = "answer_tag",
) -> SearchOutcome:
    """Search one problem with step-level MCTS, starting after prompt + lead + "<think>\\n".

    params: the sampling settings (temperature, top-p) of every generation, and the token
    limit of an evaluation rollout; a step is limited to settings.step_max_tokens. The answer
    is the finished solution with the highest terminal value (then the most visited), or,
    when none was found, the most visited path (unfinished: wrong). With terminal="prm" no
    part of the search reads `problem`; only the final `correct` does.
    """
    if settings.needs_prm and scorer is None:
        raise ConfigError(
            f"search.evaluator={settings.evaluator} search.terminal={settings.terminal} "
            "needs a PRM scorer"
        )
    if settings.terminal == "oracle":
        outcome = oracle_outcome(problem, answer_source)
    else:
        outcome = prm_outcome(scorer, prompt, settings.aggregate)
    expander = PolicyExpander(
        engine, tokenizer, replace(params, max_new_tokens=settings.step_max_tokens)
    )
    if settings.evaluator == "prm":
        evaluator = PRMEvaluator(scorer, prompt, settings.aggregate)
    else:
        evaluator = RolloutEvaluator(engine, tokenizer, prompt, params, outcome)
    root_prefix = prompt + lead + THINK_START

    def prefix_of(steps: Sequence[str]) -> str:
        return root_prefix + "".join(step + STEP_SEPARATOR for step in steps)

    def terminal_value(prefix: str) -> float:
        return outcome(_completion_of(prompt, prefix), prefix not in expander.truncated)

    search = MCTS(
        expander,
        evaluator,
        terminal_value,
        max_width=settings.width,
        max_depth=settings.depth,
        token_budget=settings.token_budget,
        c_puct=settings.c_puct,
        selection=settings.selection,
        max_iterations=settings.max_iterations,
    )
    result = search.search(root_prefix)
    traces = tuple(
        FoundTrace(
            completion=trace_completion(trace.steps, lead),
            value=trace.value,
            visits=trace.visits,
            stopped=prefix_of(trace.steps) not in expander.truncated,
        )
        for trace in result.terminal_traces
    )
    completion = trace_completion(result.best_steps, lead)
    stopped = result.best_is_terminal and traces[0].stopped
    tokens = result.tokens_used + expander.uncounted_tokens
    score = _scored(problem, completion, tokens, stopped, answer_source)
    return SearchOutcome(
        completion=completion,
        correct=score.correct,
        strict_format=score.strict_format,
        stopped=stopped,
        tokens_used=tokens,
        value=result.best_value,
        candidates=len(traces),
        stop_reason=result.stop_reason,
        iterations=result.iterations,
        nodes=result.nodes,
        traces=traces,
    )


# -- reports -----------------------------------------------------------------------------------


def search_report(
    method: str,
    problems: Sequence[Problem],
    outcomes: Sequence[SearchOutcome],
    answer_source: str,
    settings: Mapping[str, Any],
) -> EvalReport:
    """scripts/evaluate.py's report of a search, comparable with plain sampling's:

    accuracy: the share of problems whose chosen completion is right (strict);
    tokens_per_problem: mean tokens generated per problem (compare with search=none's
      tokens_per_problem = k x mean completion length); tokens_per_problem_max;
    format_rate, stop_rate: of the chosen completions;
    MCTS only: search_stop_budget_rate (searches ended by the token budget),
      search_found_rate (a finished solution was found), search_iterations_mean,
      search_nodes_mean.
    `settings` must hold temperature, top_p, max_new_tokens, "search_settings" (shown in
    eval.md) and "oracle" (True when the search read the gold answer: the report is then
    marked as not a test-time result).
    """
    if len(problems) != len(outcomes):
        raise ValueError(f"{len(outcomes)} search outcomes for {len(problems)} problems")
    count = max(len(outcomes), 1)
    tokens = [o.tokens_used for o in outcomes]
    metrics = {
        "accuracy": sum(o.correct for o in outcomes) / count,
        "tokens_per_problem": sum(tokens) / count,
        "tokens_per_problem_max": float(max(tokens, default=0)),
        "format_rate": sum(o.strict_format for o in outcomes) / count,
        "stop_rate": sum(o.stopped for o in outcomes) / count,
    }
    if method == "mcts":
        metrics |= {
            "search_stop_budget_rate": sum(o.stop_reason == "budget" for o in outcomes) / count,
            "search_found_rate": sum(o.candidates > 0 for o in outcomes) / count,
            "search_iterations_mean": sum(o.iterations for o in outcomes) / count,
            "search_nodes_mean": sum(o.nodes for o in outcomes) / count,
        }
    rows = []
    for problem, o in zip(problems, outcomes):
        rows.append(
            {
                "question": problem.question,
                "gold": problem.answer,
                "answers": [extract_answer(o.completion, answer_source)],
                "correct": [o.correct],
                "completions": [o.completion],
                "value": o.value,
                "tokens_used": o.tokens_used,
                "candidates": o.candidates,
                "stop_reason": o.stop_reason,
                "traces": [asdict(t) for t in o.traces],
            }
        )
    return EvalReport(
        {
            "search": method,
            "answer_source": answer_source,
            "num_problems": len(problems),
            **settings,
        },
        metrics,
        rows,
    )


@dataclass
class TracesReport:
    """Expert iteration's account: how many training problems MCTS solved, at what cost."""

    problems: int = 0
    solved: int = 0  # problems with at least one correct finished solution
    traces_found: int = 0  # finished solutions, right or wrong
    traces_kept: int = 0  # rows written: up to `keep` correct solutions per problem
    tokens_used: int = 0
    stop_reasons: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)

    def markdown(self) -> str:
        oracle = self.settings.get("terminal") == "oracle"
        ended_by = ", ".join(f"{k}: {v}" for k, v in sorted(self.stop_reasons.items()))
        return "\n".join(
            [
                "| quantity | value |",
                "|---|---|",
                f"| problems searched | {self.problems} |",
                f"| solved (a correct finished solution) | {self.solved} "
                f"({self.solved / max(self.problems, 1):.1%}) |",
                f"| finished solutions found | {self.traces_found} |",
                f"| traces kept (rows of sft.jsonl) | {self.traces_kept} |",
                f"| tokens generated | {self.tokens_used} |",
                f"| tokens per problem | {self.tokens_used / max(self.problems, 1):.1f} |",
                f"| searches ended by | {ended_by or '-'} |",
                "",
                "Terminal value: "
                + (
                    "oracle (the gold answer of each training problem, which is training data)."
                    if oracle
                    else "the PRM (gold-free); kept traces were then checked against the gold answer."
                ),
            ]
        )


def collect_traces(
    problems: Sequence[Problem],
    prompts: Sequence[str],
    engine,
    tokenizer,
    scorer,
    settings: MCTSSettings,
    params: SamplingParams,
    *,
    keep: int = 1,
    lead: str = "",
    answer_source: str = "answer_tag",
    progress: bool = True,
) -> tuple[list[dict[str, Any]], TracesReport]:
    """Expert iteration's data: search each training problem with MCTS and keep up to `keep`
    of its finished solutions that are right against the gold answer, best (highest search
    value, then most visited) first. Rows are what `data=jsonl` SFT trains on verbatim, as
    scripts/sample.py writes them: question, answer, task, meta, completion."""
    check_int("traces.keep", keep, 1)
    started = time.perf_counter()
    report = TracesReport(problems=len(problems), settings={**asdict(settings), "keep": keep})
    rows: list[dict[str, Any]] = []
    for problem, prompt in tqdm(
        list(zip(problems, prompts)), desc="MCTS traces", unit="problem", disable=not progress
    ):
        outcome = mcts_solve(
            problem,
            prompt,
            engine,
            tokenizer,
            scorer,
            settings,
            params,
            lead=lead,
            answer_source=answer_source,
        )
        report.tokens_used += outcome.tokens_used
        report.traces_found += len(outcome.traces)
        reason = outcome.stop_reason or "?"
        report.stop_reasons[reason] = report.stop_reasons.get(reason, 0) + 1
        right = [
            t
            for t in outcome.traces
            if _scored(problem, t.completion, 0, t.stopped, answer_source).correct
        ][:keep]
        report.solved += bool(right)
        rows += [
            {
                "question": problem.question,
                "answer": problem.answer,
                "task": problem.task,
                "meta": dict(problem.meta),
                "completion": trace.completion,
            }
            for trace in right
        ]
    report.traces_kept = len(rows)
    report.seconds = time.perf_counter() - started
    return rows, report


def write_traces(
    rows: Sequence[dict[str, Any]], report: TracesReport, directory: str | Path
) -> Path:
    """<directory>/sft.jsonl (the kept traces) and search.json / search.md (the report)."""
    return write_dataset(rows, report, directory, report_name="search")
