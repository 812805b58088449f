"""Checks for values a user sets in the config. Each failure names the config key, the bad
value and what would be valid, so a run fails before training with a message that says what
to fix (Hydra passes `module.group_size=abc` through as the string "abc")."""

from __future__ import annotations

import enum
import importlib
import inspect
import math
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from pathlib import PurePath
from typing import Any


class ConfigError(ValueError):
    """A config value is of the wrong type, out of range, or not one of the choices."""


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def check_int(key: str, value: Any, minimum: int | None = None, why: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key}={_describe(value)} must be an integer{_range(minimum, None)}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{key}={value} must be >= {minimum}{_because(why)}")
    return value


def check_float(
    key: str,
    value: Any,
    minimum: float | None = None,
    maximum: float | None = None,
    why: str = "",
    exclusive_minimum: bool = False,
) -> float:
    bounds = _range(minimum, maximum, exclusive_minimum)
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ConfigError(f"{key}={_describe(value)} must be a number{bounds}")
    too_low = minimum is not None and (value <= minimum if exclusive_minimum else value < minimum)
    if too_low or (maximum is not None and value > maximum):
        raise ConfigError(f"{key}={value} must be{bounds}{_because(why)}")
    return float(value)


def check_choice(key: str, value: Any, choices: Iterable[str]) -> str:
    choices = list(choices)
    if value not in choices:
        raise ConfigError(f"{key}={value!r} is not valid; choose one of: {', '.join(choices)}")
    return value


def _range(minimum: float | None, maximum: float | None, exclusive_minimum: bool = False) -> str:
    if minimum is not None and maximum is not None:
        return f" in {'(' if exclusive_minimum else '['}{minimum}, {maximum}]"
    if minimum is not None:
        return f" {'>' if exclusive_minimum else '>='} {minimum}"
    if maximum is not None:
        return f" <= {maximum}"
    return ""


def _because(why: str) -> str:
    return f" ({why})" if why else ""


def check_targets(config: Mapping[str, Any], prefix: str = "") -> None:
    """Check every ``_target_`` node of a resolved config (plain dicts and lists) against the
    signature of the callable it names: unknown settings, and values whose type the
    callable's annotations rule out (``trainer.max_steps=abc``), raise ConfigError naming
    the key, the value and what is valid. Annotations this cannot judge pass."""
    for key, value in config.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            check_targets(value, path)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, Mapping):
                    check_targets(item, f"{path}[{i}]")
    target = config.get("_target_")
    if isinstance(target, str):
        _check_call(prefix or "config", target, config)


def _check_call(prefix: str, target: str, config: Mapping[str, Any]) -> None:
    fn = _locate(target)
    if fn is None:
        raise ConfigError(f"{prefix}._target_={target!r} cannot be imported")
    init = fn.__init__ if inspect.isclass(fn) else fn
    try:
        parameters = inspect.signature(init).parameters
        hints = typing.get_type_hints(init)
    except (TypeError, ValueError, NameError):
        return  # no signature to judge by
    open_ended = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    settings = [k for k in config if not str(k).startswith("_")]
    for key in settings:
        if key not in parameters:
            if open_ended:
                continue
            valid = ", ".join(p for p in parameters if p != "self")
            raise ConfigError(f"{prefix}.{key} is not a setting of {target}; valid: {valid}")
        annotation = hints.get(key)
        value = config[key]
        if annotation is not None and not _matches(value, annotation):
            raise ConfigError(f"{prefix}.{key}={_describe(value)} must be {_expected(annotation)}")


def _locate(path: str) -> Any:
    module_name, _, attribute = path.rpartition(".")
    while module_name:
        try:
            found: Any = importlib.import_module(module_name)
        except ImportError:
            module_name, _, head = module_name.rpartition(".")
            attribute = f"{head}.{attribute}"
            continue
        for part in attribute.split("."):
            found = getattr(found, part, None)
        return found
    return None


def _arms(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def _matches(value: Any, annotation: Any) -> bool:
    if isinstance(value, Mapping) and "_target_" in value:
        return True  # instantiated first; its own node is checked on its own
    for arm in _arms(annotation):
        origin = typing.get_origin(arm)
        if arm is Any or isinstance(arm, typing.TypeVar):
            return True
        if arm is type(None):
            if value is None:
                return True
        elif origin is typing.Literal:
            if value in typing.get_args(arm):
                return True
        elif arm is bool:
            if isinstance(value, bool):
                return True
        elif arm is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return True
        elif arm is float:
            if isinstance(value, int | float) and not isinstance(value, bool):
                return True
        elif arm is str:
            if isinstance(value, str):
                return True
        elif origin is not None:
            base = origin if isinstance(origin, type) else None
            if base is None or base is typing.Union:
                return True  # Callable[...], Annotated, ...: not judged here
            if issubclass(base, Mapping):
                if isinstance(value, Mapping):
                    return True
            elif issubclass(base, str):
                if isinstance(value, str):
                    return True
            elif issubclass(base, Sequence | Iterable):
                if isinstance(value, list | tuple):
                    return True
            else:
                return True
        elif isinstance(arm, type):
            if isinstance(value, arm) or (issubclass(arm, PurePath) and isinstance(value, str)):
                return True
            if issubclass(arm, enum.Enum) and value in {m.name for m in arm} | {
                m.value for m in arm
            }:
                return True
            if arm in (list, tuple) and isinstance(value, list | tuple):
                return True
            if arm is dict and isinstance(value, Mapping):
                return True
        else:
            return True  # a string annotation or another construct: not judged here
    return False


def _expected(annotation: Any) -> str:
    names = []
    literals = [
        v
        for a in _arms(annotation)
        if typing.get_origin(a) is typing.Literal
        for v in typing.get_args(a)
    ]
    if literals:
        names.append("one of " + ", ".join(repr(v) for v in literals))
    for arm in _arms(annotation):
        origin = typing.get_origin(arm)
        if origin is typing.Literal:
            continue
        if arm is type(None):
            names.append("null")
        elif arm is bool:
            names.append("true or false")
        elif arm is int:
            names.append("an integer")
        elif arm is float:
            names.append("a number")
        elif arm is str:
            names.append("a string")
        elif origin is not None and isinstance(origin, type):
            names.append("a mapping" if issubclass(origin, Mapping) else "a list")
        elif isinstance(arm, type):
            names.append("a path" if issubclass(arm, PurePath) else f"a {arm.__name__} config")
        else:
            names.append(str(arm))
    return " or ".join(dict.fromkeys(names))
