"""The edge of every script: a user's mistake is one line and exit code 2, a crash is a
traceback and exit code 1.

User mistakes are ConfigError (bad values, data and model names, resume paths: every check
in r1 raises one), Lightning's MisconfigurationException, and Hydra's and OmegaConf's errors
about the command line (an unknown config group or key, a missing mandatory value, an
override that does not parse). Hydra would print those itself and exit 1 like a crash, so
the scripts run with HYDRA_FULL_ERROR=1 and report them here.

Importing this module also registers the `r1.config_groups` resolver that `--help` lists a
script's config groups with (conf/hydra/help/). `run` also tunes glibc's malloc first
(`tune_malloc`; `R1_MALLOC_TUNING=0` leaves it alone).
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from omegaconf import OmegaConf

USER_ERROR = 2
# Config groups `--help` does not offer: Hydra's own (--hydra-help lists them) and
# conf/local/ (machine-specific overrides, git-ignored).
HIDDEN_GROUPS = ("hydra", "local")

log = logging.getLogger("r1")

# glibc's mallopt parameters (malloc.h). glibc hands blocks above the mmap threshold (at
# most 32 MB) back to the OS when they are freed and trims the heap's top, so each training
# step's large temporaries (logits, KV caches, activations) are mapped and zero-filled
# afresh: ~940,000 page faults (3.8 GB) per experiment=grpo_addition step. Serving them from
# a heap that is never trimmed reuses the same pages: 90% fewer faults, 85% less kernel time
# (docs/results/alloc.md). The price: the resident set stays at the step's peak between steps.
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_MAX = -1, -2, -4
MALLOC_SETTINGS = {
    M_MMAP_MAX: 0,  # no mmap for large blocks: they come from the heap and stay there
    M_TRIM_THRESHOLD: -1,  # never trim the heap's top (mallopt(3): -1 disables trimming)
    M_TOP_PAD: 256 << 20,  # grow the heap in 256 MB steps (address space; touched on use)
}
malloc_tuned = False  # set by tune_malloc (read by the tests)


def config_groups(choices: Any, width: int = 100) -> str:
    """One line per config group the script composed (Hydra's runtime.choices, so groups an
    experiment pulls in count too): `group: option, option, ...  [the selected one]`."""
    import textwrap

    from hydra.core.global_hydra import GlobalHydra

    found = GlobalHydra.instance()
    loader = found.config_loader() if found.is_initialized() else None
    lines = []
    for group in sorted(str(g) for g in choices):
        if group.split("/")[0] in HIDDEN_GROUPS:
            continue
        name = group.split("@")[0]  # sampling@module.sampling: the sampling group
        options = sorted(loader.get_group_options(name)) if loader is not None else []
        line = f"  {group}: {', '.join(options)}  [{choices[group] or 'none'}]"
        lines += textwrap.wrap(line, width, subsequent_indent=" " * (len(group) + 4))
    return "\n".join(lines)


OmegaConf.register_new_resolver("r1.config_groups", config_groups, replace=True)


def user_error(error: BaseException) -> BaseException | None:
    """The user's mistake behind ``error`` (itself or a cause), or None for a crash."""
    from hydra.errors import (
        ConfigCompositionException,
        MissingConfigException,
        OverrideParseException,
    )
    from lightning.fabric.utilities.exceptions import MisconfigurationException
    from omegaconf.errors import MissingMandatoryValue, ValidationError

    from r1.checks import ConfigError

    kinds = (
        ConfigError,
        MisconfigurationException,
        ConfigCompositionException,
        MissingConfigException,
        OverrideParseException,
        MissingMandatoryValue,
        ValidationError,
    )
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, kinds):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def one_line(error: BaseException) -> str:
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return text or type(error).__name__


def _report(mistake: BaseException) -> None:
    message = f"error: {one_line(mistake)}"
    if logging.getLogger().handlers:  # Hydra's job logging: the console and the run's log
        log.error(message)
    else:
        print(message, file=sys.stderr)
    sys.exit(USER_ERROR)


def reports_user_errors(main: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator for the task function under ``@hydra.main``: a mistake found while the job
    runs exits there, before Hydra reports it as a failed job."""

    @functools.wraps(main)
    def job(*args: Any, **kwargs: Any) -> Any:
        try:
            return main(*args, **kwargs)
        except Exception as error:
            mistake = user_error(error)
            if mistake is None:
                raise
            _report(mistake)

    return job


def tune_malloc() -> bool:
    """Apply MALLOC_SETTINGS to this process's glibc malloc (later allocations; forked
    children inherit them, spawned and exec'd ones do not). False where it is switched off
    (R1_MALLOC_TUNING=0) or the C library is not glibc (macOS, musl)."""
    global malloc_tuned
    if os.environ.get("R1_MALLOC_TUNING", "1") == "0":
        log.debug("malloc tuning off (R1_MALLOC_TUNING=0)")
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - glibc only; raises AttributeError elsewhere
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        log.debug("malloc tuning skipped: the C library is not glibc")
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    applied = [mallopt(param, value) == 1 for param, value in MALLOC_SETTINGS.items()]
    malloc_tuned = all(applied)
    if not malloc_tuned:
        log.debug("malloc tuning: mallopt refused a setting (%s)", applied)
    return malloc_tuned


def run(main: Callable[[], Any]) -> None:
    """Call a script's (Hydra-decorated) main; exit 2 with one line on a user's mistake."""
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")
    tune_malloc()
    try:
        main()
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as error:  # noqa: BLE001 - sorted into mistakes and crashes
        mistake = user_error(error)
        if mistake is None:
            raise
        _report(mistake)


def scratch_dir(prefix: str) -> str:
    """A temporary directory removed when the process exits: benchmark runs write checkpoints
    and logs there, and a benchmark repeated a few times must not fill /tmp."""
    import atexit
    import shutil
    import tempfile

    path = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path
