"""Process rewards and search over reasoning steps: Math-Shepherd step labels for PRM
training and step-level MCTS, the paper's "unsuccessful attempts" (section 4.2).

`steps` and `mcts` are pure Python on strings; the policy and value models enter only
through small callables (see `Expander`, `Evaluator`, `TerminalValue`, `label_solution`).
`searchers` plugs the policy and the PRM into them (MCTS, best-of-N reranking); its names
are exported here too but imported on first use, so the pure modules stay free of torch.
"""

from r1.search.mcts import (
    MCTS,
    Candidate,
    Evaluator,
    Expander,
    Node,
    SearchResult,
    TerminalValue,
    Trace,
    puct_score,
    uct_score,
)
from r1.search.steps import label_solution, label_steps, step_prefixes
from r1.text import split_steps

_SEARCHERS = (
    "FoundTrace",
    "MCTSSettings",
    "PolicyExpander",
    "PRMEvaluator",
    "RolloutEvaluator",
    "SearchOutcome",
    "best_of_n",
    "collect_traces",
    "mcts_solve",
    "search_report",
    "write_traces",
)

__all__ = [
    "MCTS",
    "Candidate",
    "Evaluator",
    "Expander",
    "Node",
    "SearchResult",
    "TerminalValue",
    "Trace",
    "label_solution",
    "label_steps",
    "puct_score",
    "split_steps",
    "step_prefixes",
    "uct_score",
    *_SEARCHERS,
]


def __getattr__(name: str):
    """The searchers' names, imported on first use (they need torch and the eval package)."""
    if name in _SEARCHERS:
        from r1.search import searchers

        return getattr(searchers, name)
    raise AttributeError(f"module 'r1.search' has no attribute {name!r}")
