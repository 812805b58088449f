"""Process rewards and search over reasoning steps: Math-Shepherd step labels for PRM
training and step-level MCTS, the paper's "unsuccessful attempts" (section 4.2).

`steps` and `mcts` are pure Python on strings; the policy and value models enter only
through small callables (see `Expander`, `Evaluator`, `TerminalValue`, `label_solution`).
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
from r1.search.steps import label_solution, label_steps, split_steps, step_prefixes

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
]
