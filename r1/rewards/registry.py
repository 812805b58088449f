"""The reward registry and the composite reward built from config.

A reward term is a plain function registered by name:

    @register_reward("format_strict")
    def format_strict(sample: RewardSample) -> float | None: ...

`batched=True` terms take a list of samples and return a list (a reward model scoring many
completions in one forward pass, the code sandbox running all tests in one pool).

Composite semantics (CompositeReward.score):
- total = sum over *active* terms (step inside [start_step, end_step)) of weight * value.
- A term returning None gives no signal for that sample: it adds nothing to the total and is
  left out of that term's mean. A sample for which every active term returned None has
  total None ("no signal at all"); consumers drop it (e.g. GRPO gives it zero advantage).
- A term that raises or runs past its time limit is counted in `errors[term]`, and the sample
  gets the term's `fallback` value (default 0.0) instead; training never stops for it.
  Errors stay with the completion that caused them: a batched term returns a RewardError in
  a failed sample's place, and a batched call that raises is retried sample by sample, so
  the rest of the batch keeps its scores.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from r1.checks import ConfigError
from r1.rewards.types import RewardError, RewardSample
from r1.rewards.workers import CallFailed, RewardWorkers

RewardFn = Callable[..., Any]


@dataclass(frozen=True)
class RegisteredReward:
    fn: RewardFn
    batched: bool
    sandboxed: bool = False  # runs model-written programs (the log says what the sandbox holds)


_REGISTRY: dict[str, RegisteredReward] = {}


def register_reward(
    name: str, batched: bool = False, sandboxed: bool = False
) -> Callable[[RewardFn], RewardFn]:
    def decorate(fn: RewardFn) -> RewardFn:
        existing = _REGISTRY.get(name)
        if (
            existing is not None
            and existing.fn is not fn
            and (existing.fn.__module__, existing.fn.__qualname__)
            != (fn.__module__, fn.__qualname__)
        ):
            raise ValueError(f"reward {name!r} is already registered by {existing.fn.__module__}")
        _REGISTRY[name] = RegisteredReward(fn, batched, sandboxed)
        return fn

    return decorate


def registered_rewards() -> list[str]:
    _load_builtin_terms()
    return sorted(_REGISTRY)


def get_reward(name: str) -> RegisteredReward:
    _load_builtin_terms()
    if name not in _REGISTRY:
        raise ConfigError(
            f"reward {name!r} is not registered; registered: {', '.join(sorted(_REGISTRY))}. "
            "Register a new one with @r1.rewards.register_reward(name) in an imported module."
        )
    return _REGISTRY[name]


def _load_builtin_terms() -> None:
    import r1.rewards.terms  # noqa: F401  (registers the built-in terms)


@dataclass(frozen=True)
class RewardTerm:
    """One weighted term of a composite reward.

    fn: the registered reward's name (defaults to the term's key in config).
    start_step / end_step: active for start_step <= step < end_step (None = open); the paper
      adds the preference reward only in the last steps of training.
    tasks: the sample tasks (RewardSample.task, e.g. "arithmetic", "general") the term scores;
      other samples get no signal from it (None). None = every task. This routes each prompt
      of a mixed batch to its own terms: rules for reasoning, a reward model for the rest.
    fallback: the value a sample gets when the term raises or times out.
    timeout_s: per-call limit for per-sample terms (enforced by killing a worker process).
    params: keyword arguments for the reward function.
    """

    fn: str
    weight: float = 1.0
    start_step: int | None = None
    end_step: int | None = None
    tasks: Sequence[str] | None = None
    fallback: float = 0.0
    timeout_s: float = 10.0
    params: Mapping[str, Any] = field(default_factory=dict)

    def active(self, step: int) -> bool:
        return (self.start_step is None or step >= self.start_step) and (
            self.end_step is None or step < self.end_step
        )

    def applies_to(self, sample: RewardSample) -> bool:
        return self.tasks is None or sample.task in self.tasks


@dataclass(frozen=True)
class RewardOutput:
    """Scores of N completions. total: [N] (None = no signal); terms: name -> [N] raw values
    of the active terms (None = no signal); errors: name -> count of raised/timed-out calls."""

    total: list[float | None]
    terms: dict[str, list[float | None]]
    errors: dict[str, int]

    def metrics(self, prefix: str = "train") -> dict[str, float]:
        out = {f"{prefix}/reward": _mean(self.total)}
        for name, values in self.terms.items():
            out[f"{prefix}/reward/{name}"] = _mean(values)
            out[f"{prefix}/reward_errors/{name}"] = float(self.errors.get(name, 0))
        return out


def _mean(values: Sequence[float | None]) -> float:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else math.nan


class CompositeReward:
    """A weighted sum of registered reward terms, built from config:

        CompositeReward(terms={"accuracy": {"weight": 1.0},
                               "format": {"fn": "format_strict", "weight": 0.5}})

    workers > 0: per-sample terms run in that many worker processes, where a call past its
    `timeout_s` is killed (a C-level bignum blow-up cannot be interrupted any other way).
    workers = 0: terms run in this process with no time limit (debugging, trusted terms).
    """

    def __init__(self, terms: Mapping[str, Mapping[str, Any] | RewardTerm], workers: int = 2):
        self._pool: RewardWorkers | None = None
        if not terms:
            raise ConfigError("a reward needs at least one term (reward.terms is empty)")
        if workers < 0:
            raise ConfigError(f"reward.workers must be >= 0, got {workers}")
        self.terms: dict[str, RewardTerm] = {}
        for key, spec in terms.items():
            if spec is None:  # `reward.terms.format=null` on the command line drops a term
                continue
            term = spec if isinstance(spec, RewardTerm) else _term_from_config(key, spec)
            # fail now, naming the unknown reward or parameter, not mid-training
            _check_params(key, term, get_reward(term.fn))
            self.terms[key] = term
        self.workers = workers
        if any(get_reward(t.fn).sandboxed for t in self.terms.values()):
            _log_sandbox_once()

    def score(self, samples: Sequence[RewardSample], step: int = 0) -> RewardOutput:
        n = len(samples)
        values: dict[str, list[float | None]] = {}
        errors: dict[str, int] = {}
        for key, term in self.terms.items():
            if not term.active(step):
                continue
            registered = get_reward(term.fn)
            routed = [i for i, sample in enumerate(samples) if term.applies_to(sample)]
            mine = [samples[i] for i in routed]
            if not mine:
                term_values, failures = [], 0
            elif registered.batched:
                term_values, failures = self._run_batched(registered.fn, term, mine)
            else:
                term_values, failures = self._run_per_sample(registered.fn, term, mine)
            values[key] = [None] * n
            for i, value in zip(routed, term_values):
                values[key][i] = value
            errors[key] = failures
        total: list[float | None] = []
        for i in range(n):
            present = [(self.terms[k].weight, v[i]) for k, v in values.items() if v[i] is not None]
            total.append(sum(w * v for w, v in present) if present else None)
        return RewardOutput(total=total, terms=values, errors=errors)

    def _run_batched(self, fn, term, samples):
        try:
            out = list(fn(list(samples), **term.params))
            if len(out) != len(samples):
                raise ValueError(f"returned {len(out)} values for {len(samples)} samples")
        except Exception:  # noqa: BLE001 - find the sample that broke the batch
            if len(samples) == 1:
                return [term.fallback], 1
            out = []
            for sample in samples:
                try:
                    out += list(fn([sample], **term.params))[:1] or [RewardError("no value")]
                except Exception as err:  # noqa: BLE001 - this sample gets the fallback
                    out.append(RewardError(repr(err)))
        return _values_or_fallback(out, term.fallback)

    def _run_per_sample(self, fn, term, samples):
        if self.workers == 0:
            results = []
            for sample in samples:
                try:
                    results.append(fn(sample, **term.params))
                except Exception as err:  # noqa: BLE001
                    results.append(CallFailed(repr(err)))
        else:
            if self._pool is None:
                self._pool = RewardWorkers(self.workers)
            results = self._pool.map(fn, samples, term.params, term.timeout_s)
        return _values_or_fallback(results, term.fallback)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __del__(self):
        self.close()

    def __getstate__(self):  # the worker pool does not travel (e.g. to DDP ranks)
        state = self.__dict__.copy()
        state["_pool"] = None
        return state


@functools.cache
def _log_sandbox_once() -> None:
    from r1.rewards.sandbox import describe_protections, sandbox_protections

    level = logging.INFO if all(sandbox_protections().values()) else logging.WARNING
    logging.getLogger("r1.rewards").log(level, describe_protections())


def _values_or_fallback(results: Sequence[Any], fallback: float) -> tuple[list, int]:
    """(values, failures): each result as a value, or the fallback where it is a failure
    (RewardError, CallFailed) or no finite number."""
    values, failures = [], 0
    for result in results:
        try:
            values.append(_as_value(result))
        except (TypeError, ValueError):
            values.append(fallback)
            failures += 1
    return values, failures


def _as_value(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, (RewardError, CallFailed)):
        raise ValueError(f"scoring failed: {value}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"reward value {value} is not finite")
    return value


def _check_params(key: str, term: RewardTerm, registered: RegisteredReward) -> None:
    """The term's params bind to its function (after the sample, or list of samples)."""
    try:
        signature = inspect.signature(registered.fn)
    except (TypeError, ValueError):
        return  # no signature to judge by
    parameters = list(signature.parameters.values())
    try:
        signature.bind(None, **term.params)
    except TypeError as err:
        valid = ", ".join(p.name for p in parameters[1:]) or "none"
        hint = ""
        if any(p.name == "scorer" and p.default is p.empty for p in parameters):
            hint = (
                ". It scores with a model, which reward terms do not load: its `scorer` param "
                "is built by r1.models (see conf/reward/prm.yaml, conf/reward/reward_model.yaml: "
                "params._target_)"
            )
        raise ConfigError(
            f"reward term {key!r} (fn={term.fn}): params {sorted(term.params)} do not fit: "
            f"{err}; its params: {valid}{hint}"
        ) from None
    # A term can judge its params' values too (`fn.check_params`), so a bad value fails when
    # the reward is built, not as a contained error on every sample.
    check_values = getattr(registered.fn, "check_params", None)
    if check_values is not None:
        try:
            check_values(**term.params)
        except ConfigError as err:
            raise ConfigError(f"reward term {key!r} (fn={term.fn}): {err}") from None


def _term_from_config(key: str, spec: Mapping[str, Any]) -> RewardTerm:
    spec = dict(spec)
    spec.setdefault("fn", key)
    spec["params"] = dict(spec.get("params") or {})
    if spec.get("tasks") is not None:
        spec["tasks"] = tuple(spec["tasks"])
    allowed = set(RewardTerm.__dataclass_fields__)
    unknown = set(spec) - allowed
    if unknown:
        raise ConfigError(
            f"reward term {key!r}: unknown setting(s) {sorted(unknown)}; valid: {sorted(allowed)} "
            "(reward-function arguments go under `params`)"
        )
    return RewardTerm(**spec)
