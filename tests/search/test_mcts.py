"""Step-level MCTS: scores by hand, a hand-traced search, a toy problem greedy decoding
fails and MCTS solves, and the width / depth / token-budget invariants."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import pytest

from r1.search.mcts import MCTS, Node, puct_score, uct_score

# -- scores ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        # Q = 1/2 = 0.5; U = 1.5 * 0.5 * sqrt(9) / (1 + 2) = 0.75
        ((9, 2, 1.0, 0.5, 1.5), 1.25),
        # unvisited: Q = 0; U = 2 * 0.25 * sqrt(4) / 1 = 1.0
        ((4, 0, 0.0, 0.25, 2.0), 1.0),
        # no exploration: only Q = 3 / 4
        ((16, 4, 3.0, 0.9, 0.0), 0.75),
        # a parent never visited: sqrt(0) = 0, only Q remains
        ((0, 0, 0.0, 1.0, 1.5), 0.0),
    ],
)
def test_puct_by_hand(args, expected) -> None:
    assert puct_score(*args) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        # Q = 0.5; sqrt(ln(9) / 2) = sqrt(1.09861) = 1.04815; 0.5 + 1.5 * 1.04815 = 2.07222
        ((9, 2, 1.0, 1.5), 2.072221),
        ((1, 1, 0.25, 2.0), 0.25),  # ln(1) = 0
        ((10, 0, 0.0, 1.0), math.inf),
    ],
)
def test_uct_by_hand(args, expected) -> None:
    assert uct_score(*args) == pytest.approx(expected, abs=1e-6)


# -- a search small enough to trace by hand ----------------------------------------------------


def test_two_answer_search_by_hand() -> None:
    # The root has two terminal children: "A" (prior 3 -> 0.75 after renormalising, reward 0)
    # and "B" (prior 1 -> 0.25, reward 1); each costs 5 tokens.
    # It 1: expand the root (10 tokens); its visits are 0, so every PUCT score is 0 and the
    #       tie goes to the higher prior: A, reward 0, exhausted. Root: N = 1, W = 0.
    # It 2: A is exhausted, B is the only open child: reward 1, exhausted -> root exhausted.
    calls: list[str] = []

    def expander(prefix: str, k: int):
        calls.append(prefix)
        return [("A", 3.0, 5, True), ("B", 1.0, 5, True)]

    def terminal_value(prefix: str) -> float:
        return 1.0 if prefix.endswith("B\n") else 0.0

    def evaluator(prefix: str):
        raise AssertionError("terminal children never need the evaluator")

    result = MCTS(expander, evaluator, terminal_value, max_width=2, max_depth=3).search("Q: ")
    assert calls == ["Q: "]
    a, b = result.root.children
    assert (a.prior, b.prior) == (0.75, 0.25)
    assert (a.visits, a.value_sum, b.visits, b.value_sum) == (1, 0.0, 1, 1.0)
    assert (result.root.visits, result.root.value_sum) == (2, 1.0)
    assert (result.best_trace, result.best_value, result.best_is_terminal) == ("B", 1.0, True)
    assert [(t.text, t.value, t.visits) for t in result.terminal_traces] == [
        ("B", 1.0, 1),
        ("A", 0.0, 1),
    ]
    assert (result.tokens_used, result.iterations, result.nodes) == (10, 2, 3)
    assert result.stop_reason == "exhausted"


def test_candidates_beyond_width_are_dropped_and_duplicates_merged() -> None:
    # 4 candidates for width 2: "x" twice (priors 0.2 + 0.2 merge), "y", then "z" is dropped;
    # all 4 were generated, so all 4 * 3 = 12 tokens count.
    def expander(prefix: str, k: int):
        return [("x", 0.2, 3, True), ("y", 0.4, 3, True), ("x", 0.2, 3, True), ("z", 0.2, 3, True)]

    search = MCTS(expander, lambda p: (0.0, 0), lambda p: 1.0, max_width=2, max_depth=2)
    result = search.search("")
    assert [(c.text, c.prior, c.tokens) for c in result.root.children] == [
        ("x", 0.5, 6),
        ("y", 0.5, 3),
    ]
    assert result.tokens_used == 12
    assert sorted(t.text for t in result.terminal_traces) == ["x", "y"]


def test_no_terminal_found_returns_the_most_visited_path() -> None:
    # Never terminal: every path is a dead end at max_depth; values come from the evaluator.
    def expander(prefix: str, k: int):
        return [("good", 0.5, 1, False), ("bad", 0.5, 1, False)]

    def evaluator(prefix: str):
        return (1.0 if prefix.rstrip("\n").endswith("good") else 0.0), 0

    result = MCTS(expander, evaluator, lambda p: 1.0, max_width=2, max_depth=2).search("")
    assert not result.best_is_terminal and result.terminal_traces == []
    assert result.best_steps[0] == "good"
    assert result.stop_reason == "exhausted"


def test_settings_are_validated() -> None:
    def make(**kw):
        return MCTS(lambda p, k: [], lambda p: (0.0, 0), lambda p: 0.0, **kw)

    with pytest.raises(ValueError, match="'ucb'.*valid: puct, uct"):
        make(selection="ucb")
    with pytest.raises(ValueError, match="max_width must be >= 1, got 0"):
        make(max_width=0)
    with pytest.raises(ValueError, match="max_depth must be >= 1, got 0"):
        make(max_depth=0)
    with pytest.raises(ValueError, match="token_budget must be >= 0, got -1"):
        make(token_budget=-1)
    result = make(token_budget=0).search("")
    assert (result.iterations, result.tokens_used, result.stop_reason) == (0, 0, "budget")


# -- a toy problem: reach TARGET from 0 in exactly D steps of +5, +2 or +1 ----------------------

STEP_COST = 3  # tokens per generated step, for expansions and rollouts alike
_RESULT = re.compile(r"= (\d+)")


@dataclass
class Toy:
    """The policy's priors favour +5 at every step (0.6 / 0.3 / 0.1), and all-+5 overshoots:
    greedy decoding ends at 5 * D != target. Reward 1 only for the target after D steps.
    Every call is logged with the tokens already spent when it started."""

    target: int
    depth: int
    spent: int = 0
    starts: list[int] = field(default_factory=list)
    call_costs: list[int] = field(default_factory=list)
    moves: tuple[tuple[int, float], ...] = ((5, 0.6), (2, 0.3), (1, 0.1))

    def state(self, prefix: str) -> tuple[int, int]:
        results = _RESULT.findall(prefix)
        return len(results), int(results[-1]) if results else 0

    def _charge(self, tokens: int) -> int:
        self.starts.append(self.spent)
        self.call_costs.append(tokens)
        self.spent += tokens
        return tokens

    def expand(self, prefix: str, k: int):
        steps, total = self.state(prefix)
        out = []
        for move, prior in self.moves[:k]:
            done = steps + 1 == self.depth
            text = f"{total} + {move} = {total + move}" + (" Answer." if done else "")
            out.append((text, prior, STEP_COST, done))
        self._charge(STEP_COST * len(out))
        return out

    def evaluate(self, prefix: str) -> tuple[float, int]:
        """Roll out greedily (+5 until D steps) and score the end with the rule reward."""
        steps, total = self.state(prefix)
        left = max(self.depth - steps, 0)
        return float(total + 5 * left == self.target), self._charge(STEP_COST * left)

    def reward(self, prefix: str) -> float:
        steps, total = self.state(prefix)
        return float(steps == self.depth and total == self.target)

    def greedy(self, root_prefix: str) -> tuple[str, float]:
        prefix = root_prefix
        while True:
            text, _, _, done = max(self.expand(prefix, 3), key=lambda c: c[1])
            prefix += text + "\n"
            if done:
                return prefix, self.reward(prefix)

    def perfect_value(self, prefix: str) -> tuple[float, int]:
        """A perfect value model / PRM (no tokens): 1 iff the target is still reachable."""
        steps, total = self.state(prefix)
        left = self.depth - steps
        return float(total + left <= self.target <= total + 5 * left), 0


@pytest.mark.parametrize(
    ("target", "depth", "evaluator", "budget"),
    [
        # A greedy rollout is a sparse signal here (it scores 1 only one step before a
        # solution), so the search is close to trying the whole tree ...
        (8, 3, "rollout", 150),
        (9, 4, "rollout", 400),
        (12, 5, "rollout", 800),
        # ... while a good value model finds it at a fraction of the tree's cost
        # (the whole tree costs 13, 40, 121 expansions * 9 tokens = 117, 360, 1089).
        (8, 3, "value_model", 60),
        (9, 4, "value_model", 180),
        (12, 5, "value_model", 300),
    ],
)
def test_greedy_fails_where_mcts_finds_the_target(
    target: int, depth: int, evaluator: str, budget: int
) -> None:
    root = f"Reach {target} from 0 in {depth} steps.\n"
    greedy_trace, greedy_reward = Toy(target, depth).greedy(root)
    assert greedy_reward == 0.0 and greedy_trace.endswith(f"= {5 * depth} Answer.\n")

    toy = Toy(target, depth)
    evaluate = toy.evaluate if evaluator == "rollout" else toy.perfect_value
    search = MCTS(
        toy.expand, evaluate, toy.reward, max_width=3, max_depth=depth, token_budget=budget
    )
    result = search.search(root)
    assert result.best_is_terminal and result.best_value == 1.0
    assert len(result.best_steps) == depth
    assert result.best_steps[-1].endswith(f"= {target} Answer.")
    assert toy.reward(root + "".join(s + "\n" for s in result.best_steps)) == 1.0
    assert result.tokens_used <= budget + max(toy.call_costs)
    # every solution found is scored right, best first: ready to filter into SFT data
    values = [t.value for t in result.terminal_traces]
    assert values == sorted(values, reverse=True)
    for trace in result.terminal_traces:
        assert trace.value == toy.reward(root + trace.text + "\n")


def test_the_value_model_decides_what_a_budget_buys() -> None:
    # The paper's second obstacle: the value model steers every step. Same budget, same
    # policy: the perfect value model finds 12 in 5 steps, greedy rollouts do not.
    found = {}
    for name in ("rollout", "value_model"):
        toy = Toy(12, 5)
        evaluate = toy.evaluate if name == "rollout" else toy.perfect_value
        search = MCTS(toy.expand, evaluate, toy.reward, max_width=3, max_depth=5, token_budget=300)
        found[name] = search.search("").best_value
    assert found == {"rollout": 0.0, "value_model": 1.0}


def test_width_one_is_greedy_and_gets_stuck() -> None:
    # The paper's local optimum: capping the children per node at 1 leaves only the greedy path.
    toy = Toy(8, 3)
    result = MCTS(toy.expand, toy.evaluate, toy.reward, max_width=1, max_depth=3).search("")
    assert result.best_steps == ("0 + 5 = 5", "5 + 5 = 10", "10 + 5 = 15 Answer.")
    assert result.best_value == 0.0 and len(result.terminal_traces) == 1
    assert result.stop_reason == "exhausted"


# -- invariants ----------------------------------------------------------------------------------


def _walk(root: Node):
    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(node.children)


@pytest.mark.parametrize("selection", ["puct", "uct"])
@pytest.mark.parametrize(
    ("width", "max_depth", "budget", "toy_depth"),
    [
        (1, 1, 10, 1),
        (2, 3, 30, 3),
        (3, 3, 50, 3),
        (3, 4, 200, 4),
        (3, 2, 100, 5),  # answers lie deeper than max_depth: every path is a dead end
        (2, 6, 1000, 6),  # a budget larger than the whole tree costs
        (3, 5, 7, 5),  # a budget smaller than one expansion
    ],
)
def test_width_depth_and_budget_invariants(
    selection: str, width: int, max_depth: int, budget: int, toy_depth: int
) -> None:
    toy = Toy(target=toy_depth + 2, depth=toy_depth)
    search = MCTS(
        toy.expand,
        toy.evaluate,
        toy.reward,
        max_width=width,
        max_depth=max_depth,
        token_budget=budget,
        selection=selection,
    )
    result = search.search("")
    nodes = list(_walk(result.root))
    assert result.nodes == len(nodes)
    for node in nodes:
        assert len(node.children) <= width
        assert node.depth <= max_depth
        assert all(child.depth == node.depth + 1 for child in node.children)
        # a node's visits are its own evaluation (if any) plus its children's
        assert node.visits >= sum(child.visits for child in node.children)
    assert result.root.visits == result.iterations
    # tokens: exactly what the callables reported; no call started once the budget was spent,
    # so the overshoot is at most the one call that crossed it
    assert result.tokens_used == toy.spent
    assert all(start < budget for start in toy.starts)
    assert result.tokens_used <= budget + max(toy.call_costs, default=0)
    if result.stop_reason == "budget":
        assert result.tokens_used >= budget
    else:
        assert result.stop_reason == "exhausted" and result.root.exhausted
    for trace in result.terminal_traces:
        assert 1 <= len(trace.steps) <= max_depth
    if toy_depth > max_depth:
        assert result.terminal_traces == [] and not result.best_is_terminal


@pytest.mark.parametrize("budget", [1, 9, 10, 60, 200])
def test_search_stops_when_the_budget_is_spent(budget: int) -> None:
    # The depth-6 tree costs 4887 tokens in all (expansions 9, greedy rollouts 3 per step
    # left). A budget cuts the same deterministic search short: the calls made are the
    # unbounded search's calls up to the first that would start with >= budget spent.
    unbounded = Toy(target=9, depth=6)
    MCTS(
        unbounded.expand,
        unbounded.evaluate,
        unbounded.reward,
        max_width=3,
        max_depth=6,
        token_budget=10**9,
    ).search("")
    toy = Toy(target=9, depth=6)
    search = MCTS(
        toy.expand, toy.evaluate, toy.reward, max_width=3, max_depth=6, token_budget=budget
    )
    result = search.search("")
    made = len(toy.starts)
    assert toy.starts == unbounded.starts[:made]
    assert unbounded.starts[made] >= budget > toy.starts[-1]
    assert result.stop_reason == "budget"
    assert budget <= result.tokens_used <= budget + max(toy.call_costs)
    assert 0 <= result.iterations <= made


def test_max_iterations_caps_a_free_search() -> None:
    toy = Toy(target=9, depth=6)
    result = MCTS(
        toy.expand,
        lambda p: (0.5, 0),
        toy.reward,
        max_depth=6,
        token_budget=10**9,
        max_iterations=4,
    ).search("")
    assert (result.iterations, result.stop_reason) == (4, "max_iterations")
