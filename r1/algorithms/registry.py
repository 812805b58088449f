"""Named registries of the RL objective's pieces, each filled by a decorator where the piece
is defined (as verl's core_algos does): advantage estimators, policy losses, KL estimators,
loss aggregations. A module looks a piece up by the name its config gives; adding an
objective is one decorated function, one test, one override."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

F = TypeVar("F", bound=Callable)


class Registry(Generic[F]):
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, F] = {}
        self._traits: dict[str, dict[str, object]] = {}

    def register(self, name: str, **traits: object) -> Callable[[F], F]:
        """Decorator: register `fn` under `name`; `traits` are facts a caller may ask for
        (e.g. an advantage estimator's `per_step=True`)."""

        def add(fn: F) -> F:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = fn
            self._traits[name] = dict(traits)
            return fn

        return add

    def trait(self, name: str, trait: str, default: object = None) -> object:
        self[name]  # an unknown name fails here, with the valid ones
        return self._traits[name].get(trait, default)

    def __getitem__(self, name: str) -> F:
        if name not in self._entries:
            raise ValueError(f"unknown {self.kind} {name!r}; valid: {', '.join(self.names())}")
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)
