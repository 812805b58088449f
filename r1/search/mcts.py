"""Step-level Monte Carlo tree search over reasoning steps.

A node is one reasoning step; the path from the root is a partial solution. One iteration:

1. select: from the root, repeatedly take the child with the best score, PUCT as in
   AlphaZero (Silver et al., 2017): Q + c_puct * P * sqrt(N_parent) / (1 + N_child), or
   UCT: Q + c * sqrt(ln N_parent / N_child), down to a leaf;
2. expand: a leaf that is not terminal, is shallower than max_depth and was already
   evaluated once (or is the root) asks the policy for up to max_width candidate next steps
   (once per node); a leaf never evaluated goes straight to 3 and is expanded next time;
3. evaluate: the new child that selection would take (or the unevaluated leaf) gets a value
   in [0, 1]: the rule reward for a terminal step, 0 for a dead end, else the evaluator (a
   PRM score, or a rollout to a final answer scored by a rule reward);
4. back up: add the value to value_sum and 1 to visits on every node up to the root.

The policy and the value enter only through three callables (`Expander`, `Evaluator`,
`TerminalValue`); this module is pure Python. The terminal traces found, with their rewards,
are what expert iteration trains on (the best become SFT data), and the value estimates are
what a value model / PRM would be trained on.

DeepSeek-R1 (section 4.2, "Unsuccessful Attempts") tried this, AlphaGo/AlphaZero-style
(search guided by a pre-trained value model, then train actor and value on the answers
found) and found it does not scale: unlike chess, token generation has an exponentially
large search space, and capping the children per node (max_width here) makes the search
get stuck in local optima; the value model steers every step, yet a fine-grained value
model is hard to train, so self-search did not iteratively improve the model. MCTS helped
at inference time with a pre-trained value model, not as a training recipe.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from r1.checks import ConfigError
from r1.text import STEP_SEPARATOR

SELECTIONS = ("puct", "uct")
STOP_REASONS = ("budget", "exhausted", "max_iterations")


def puct_score(
    parent_visits: int, child_visits: int, child_value_sum: float, prior: float, c_puct: float
) -> float:
    """AlphaZero's PUCT: Q + c_puct * prior * sqrt(parent_visits) / (1 + child_visits), with
    Q = child_value_sum / child_visits (0 for an unvisited child)."""
    q = child_value_sum / child_visits if child_visits > 0 else 0.0
    return q + c_puct * prior * math.sqrt(max(parent_visits, 0)) / (1 + child_visits)


def uct_score(parent_visits: int, child_visits: int, child_value_sum: float, c: float) -> float:
    """UCT (UCB1 on trees): Q + c * sqrt(ln(parent_visits) / child_visits); +inf for an
    unvisited child, so every child is tried once before any is tried twice."""
    if child_visits <= 0:
        return math.inf
    q = child_value_sum / child_visits
    return q + c * math.sqrt(math.log(max(parent_visits, 1)) / child_visits)


class Candidate(NamedTuple):
    """One proposed next step (a plain 4-tuple in the same order works too)."""

    text: str
    prior: float  # the policy's probability of this step (renormalised among siblings)
    tokens: int  # tokens generated to produce it
    terminal: bool  # the step holds a final answer / ended with EOS


class Expander(Protocol):
    def __call__(self, prefix: str, k: int) -> Sequence[tuple[str, float, int, bool]]:
        """Up to k candidate next steps continuing `prefix`, as (text, prior, tokens,
        terminal). In real use: sample k continuations from the policy, each stopped at the
        step separator or EOS, prior = the (length-normalised) sequence probability."""
        ...


class Evaluator(Protocol):
    def __call__(self, prefix: str) -> tuple[float, int]:
        """The value in [0, 1] of a non-terminal partial solution and the tokens that cost:
        a PRM score (0 tokens) or a rollout to a final answer scored by a rule reward (the
        rollout's tokens)."""
        ...


class TerminalValue(Protocol):
    def __call__(self, prefix: str) -> float:
        """The reward of a finished solution, e.g. the accuracy rule reward. Assumed cheap and
        deterministic: it is called once per terminal node and costs no tokens."""
        ...


@dataclass(eq=False)
class Node:
    """One reasoning step in the tree; the root holds no step (text "")."""

    text: str
    parent: Node | None = field(default=None, repr=False)
    children: list[Node] = field(default_factory=list, repr=False)
    visits: int = 0
    value_sum: float = 0.0
    prior: float = 1.0
    depth: int = 0  # steps from the root: the root is 0, its children 1
    terminal: bool = False
    tokens: int = 0  # tokens generated for this step
    expanded: bool = False  # the expander was called (it may have returned nothing)
    reward: float | None = None  # terminal_value, once computed
    # Nothing left to learn below: a scored terminal, a dead end, or every child exhausted.
    # Selection skips exhausted children, so an iteration never re-scores a known leaf.
    exhausted: bool = False

    @property
    def value(self) -> float:
        """Mean backed-up value (0 before the first visit)."""
        return self.value_sum / self.visits if self.visits else 0.0

    def path(self) -> list[Node]:
        """The nodes from the first step down to this one (the root excluded)."""
        nodes, node = [], self
        while node.parent is not None:
            nodes.append(node)
            node = node.parent
        return nodes[::-1]

    def steps(self) -> tuple[str, ...]:
        return tuple(node.text for node in self.path())


@dataclass(frozen=True)
class Trace:
    """A finished solution found by the search."""

    steps: tuple[str, ...]
    text: str  # the steps joined by "\n", without the root prefix
    value: float  # its terminal reward
    visits: int


@dataclass
class SearchResult:
    best_trace: str  # steps joined by "\n", without the root prefix
    best_steps: tuple[str, ...]
    best_value: float  # the best terminal's reward, else the chosen leaf's mean value
    best_is_terminal: bool  # False: no finished solution was found, best is the visit path
    terminal_traces: list[Trace]  # every finished solution, highest value first
    tokens_used: int  # expansions + evaluations
    iterations: int  # completed select/expand/evaluate/backup rounds
    nodes: int  # all nodes, the root included
    stop_reason: str  # one of STOP_REASONS
    root: Node = field(repr=False)


class MCTS:
    """Step-level MCTS under a token budget.

    max_width: children per node (the k passed to the expander; extra candidates are
    dropped). max_depth: steps per solution; a non-terminal node at max_depth is a dead end
    (value 0: it ran out of steps without an answer). token_budget: generated tokens
    (expansions + evaluations). Before every expander or evaluator call the search stops if
    tokens_used >= token_budget; a call is never cut short, so tokens_used can exceed the
    budget by at most the cost of the single call that crossed it. c_puct: the exploration
    constant (c in UCT). selection: "puct" or "uct". max_iterations: an optional cap (with
    a 0-token PRM evaluator the budget is spent only by expansions).

    The search is deterministic given deterministic callables: ties go to the higher prior,
    then to the earlier candidate. It also ends when the whole tree is exhausted.
    """

    def __init__(
        self,
        expander: Expander,
        evaluator: Evaluator,
        terminal_value: TerminalValue,
        *,
        max_width: int = 4,
        max_depth: int = 8,
        token_budget: int = 4096,
        c_puct: float = 1.5,
        selection: str = "puct",
        max_iterations: int | None = None,
    ) -> None:
        if selection not in SELECTIONS:
            raise ConfigError(f"unknown selection {selection!r}; valid: {', '.join(SELECTIONS)}")
        for name, value, low in (
            ("max_width", max_width, 1),
            ("max_depth", max_depth, 1),
            ("token_budget", token_budget, 0),
        ):
            if value < low:
                raise ConfigError(f"{name} must be >= {low}, got {value}")
        if c_puct < 0:
            raise ConfigError(f"c_puct must be >= 0, got {c_puct}")
        if max_iterations is not None and max_iterations < 0:
            raise ConfigError(f"max_iterations must be >= 0 or None, got {max_iterations}")
        self.expander = expander
        self.evaluator = evaluator
        self.terminal_value = terminal_value
        self.max_width = max_width
        self.max_depth = max_depth
        self.token_budget = token_budget
        self.c_puct = c_puct
        self.selection = selection
        self.max_iterations = max_iterations

    # -- tree operations -------------------------------------------------------------------

    def _score(self, parent: Node, child: Node) -> float:
        if self.selection == "puct":
            return puct_score(
                parent.visits, child.visits, child.value_sum, child.prior, self.c_puct
            )
        return uct_score(parent.visits, child.visits, child.value_sum, self.c_puct)

    def _best_child(self, node: Node) -> Node:
        open_children = [child for child in node.children if not child.exhausted]
        # max keeps the first of equal keys: ties go to the higher prior, then the earlier one
        return max(open_children, key=lambda child: (self._score(node, child), child.prior))

    def _select(self, root: Node) -> Node:
        node = root
        while node.children and not node.terminal:
            node = self._best_child(node)
        return node

    @staticmethod
    def _prefix(root_prefix: str, node: Node) -> str:
        # Each step is followed by the separator so the model starts the next step afresh.
        return root_prefix + "".join(step + STEP_SEPARATOR for step in node.steps())

    def _expand(self, root_prefix: str, node: Node) -> int:
        """Add up to max_width children; return the tokens spent."""
        node.expanded = True
        candidates = list(self.expander(self._prefix(root_prefix, node), self.max_width))
        spent = sum(max(int(c[2]), 0) for c in candidates)
        merged: dict[str, Node] = {}
        for text, prior, tokens, terminal in candidates:
            p = float(prior)
            p = p if math.isfinite(p) and p > 0 else 0.0
            if text in merged:  # a sampled duplicate: one child, the probabilities add up
                twin = merged[text]
                twin.prior += p
                twin.tokens += max(int(tokens), 0)
                twin.terminal = twin.terminal or bool(terminal)
                continue
            if len(merged) == self.max_width:
                continue
            merged[text] = Node(
                text=text,
                parent=node,
                prior=p,
                depth=node.depth + 1,
                terminal=bool(terminal),
                tokens=max(int(tokens), 0),
            )
        node.children = list(merged.values())
        # Whole-step sequence probabilities are tiny (1e-30 for a long step) and would zero
        # the PUCT exploration term: use them relative to the siblings.
        total = sum(child.prior for child in node.children)
        for child in node.children:
            child.prior = child.prior / total if total > 0 else 1 / len(node.children)
        return spent

    def _free_value(self, root_prefix: str, node: Node) -> float | None:
        """The value of a leaf that costs no tokens (scored terminal, dead end), else None."""
        if node.terminal:
            if node.reward is None:
                node.reward = float(self.terminal_value(self._prefix(root_prefix, node)))
            return node.reward
        if node.depth >= self.max_depth or (node.expanded and not node.children):
            return 0.0
        return None

    @staticmethod
    def _backup(node: Node, value: float) -> None:
        leaf = node
        while node is not None:
            node.visits += 1
            node.value_sum += value
            node = node.parent
        # Only the free-valued leaf itself can become exhausted; then its ancestors may.
        node = leaf.parent
        while node is not None and node.children and all(c.exhausted for c in node.children):
            node.exhausted = True
            node = node.parent

    # -- the search ------------------------------------------------------------------------

    def search(self, root_prefix: str) -> SearchResult:
        """Search from `root_prefix` (the prompt, ending where the first step begins)."""
        root = Node(text="")
        spent, iterations, stop = 0, 0, "exhausted"
        while not root.exhausted:
            if self.max_iterations is not None and iterations >= self.max_iterations:
                stop = "max_iterations"
                break
            leaf = self._select(root)
            node, value = leaf, self._free_value(root_prefix, leaf)
            # A child never evaluated is evaluated itself first (its own value, not that of
            # its highest-prior grandchild); it is expanded when selected again.
            if value is None and (leaf.visits > 0 or leaf is root):
                if spent >= self.token_budget:
                    stop = "budget"
                    break
                spent += self._expand(root_prefix, leaf)
                if leaf.children:
                    node = self._best_child(leaf)
                value = self._free_value(root_prefix, node)
            if value is None:
                if spent >= self.token_budget:
                    stop = "budget"
                    break
                value, tokens = self.evaluator(self._prefix(root_prefix, node))
                spent += max(int(tokens), 0)
            else:
                node.exhausted = True
            self._backup(node, float(value))
            iterations += 1
        return self._result(root_prefix, root, spent, iterations, stop)

    def _result(
        self, root_prefix: str, root: Node, spent: int, iterations: int, stop: str
    ) -> SearchResult:
        nodes, terminals, stack = 0, [], [root]
        while stack:  # depth-first, children in creation order: a stable discovery order
            node = stack.pop()
            nodes += 1
            if node.terminal:
                # A terminal generated but never selected is still a solution found: its
                # reward is free, so score it here without touching the tree statistics.
                self._free_value(root_prefix, node)
                terminals.append(node)
            stack.extend(reversed(node.children))
        # sorted is stable: equal (value, visits) keep discovery order
        terminals.sort(key=lambda n: (n.reward, n.visits), reverse=True)
        traces = [
            Trace(n.steps(), STEP_SEPARATOR.join(n.steps()), float(n.reward), n.visits)
            for n in terminals
        ]
        if terminals:
            best, best_value = terminals[0], float(terminals[0].reward)
        else:
            best = root
            while best.children:
                best = max(best.children, key=lambda c: (c.visits, c.value, c.prior))
            best_value = best.value
        return SearchResult(
            best_trace=STEP_SEPARATOR.join(best.steps()),
            best_steps=best.steps(),
            best_value=best_value,
            best_is_terminal=bool(terminals),
            terminal_traces=traces,
            tokens_used=spent,
            iterations=iterations,
            nodes=nodes,
            stop_reason=stop,
            root=root,
        )
