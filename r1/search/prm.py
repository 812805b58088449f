"""The process reward model lives in r1.models.prm (the network, its scorer, its loading) and
the aggregation of its step scores in r1.rewards.prm; search imports them from there.

What this module still exports is for r1/modules only, until it imports them from there.
"""

# moved to r1.models.prm; re-exported until r1/modules and r1/rollout import it from there
from r1.models.prm import PRMScorer as PRMScorer
from r1.models.prm import ProcessRewards as ProcessRewards
from r1.models.prm import prm_from_policy as prm_from_policy
from r1.models.prm import step_logits as step_logits
