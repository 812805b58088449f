"""Checks for values a user sets in the config. Each failure names the config key, the bad
value and what would be valid, so a run fails before training with a message that says what
to fix (Hydra passes `module.group_size=abc` through as the string "abc")."""

from __future__ import annotations

import functools
import logging
import math
import sys
from collections.abc import Iterable
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


def exits_on_config_error(logger: logging.Logger):
    """Decorator for a script's main: a ConfigError (a bad value the user gave) is logged as
    one line and exits with code 2, no traceback."""

    def decorate(main):
        @functools.wraps(main)
        def run(*args, **kwargs):
            try:
                return main(*args, **kwargs)
            except ConfigError as error:
                logger.error("bad config: %s", error)
                sys.exit(2)

        return run

    return decorate
