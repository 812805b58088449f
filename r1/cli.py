"""The edge of every script: a user's mistake is one line and exit code 2, a crash is a
traceback and exit code 1.

User mistakes are ConfigError (bad values, data and model names, resume paths: every check
in r1 raises one), Lightning's MisconfigurationException, and Hydra's and OmegaConf's errors
about the command line (an unknown config group or key, a missing mandatory value, an
override that does not parse). Hydra would print those itself and exit 1 like a crash, so
the scripts run with HYDRA_FULL_ERROR=1 and report them here.

Importing this module also registers the `r1.config_groups` resolver that `--help` lists a
script's config groups with (conf/hydra/help/), and `r1.short_name`, which keeps a sweep
job's directory name within the file system's limit (conf/hydra/default.yaml). `run` also tunes glibc's malloc first
(`tune_malloc`; `R1_MALLOC_TUNING=0` leaves it alone).
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from omegaconf import OmegaConf

from r1.malloc import tune_malloc

USER_ERROR = 2
# Config groups `--help` does not offer: Hydra's own (--hydra-help lists them) and
# conf/local/ (machine-specific overrides, git-ignored).
HIDDEN_GROUPS = ("hydra", "local")

log = logging.getLogger("r1")


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

MAX_NAME = 200  # bytes; file systems allow 255 in one path component


def short_name(name: str, limit: int = MAX_NAME) -> str:
    """`name` if it fits in `limit` bytes, else its start and a hash of the whole: a sweep job's
    directory is named after its overrides (hydra.job.override_dirname), and a dozen of them
    passed 255 bytes ("File name too long"). Distinct names stay distinct."""
    import hashlib

    encoded = name.encode()
    if len(encoded) <= limit:
        return name
    digest = hashlib.sha1(encoded).hexdigest()[:10]
    return encoded[: limit - 11].decode(errors="ignore") + "-" + digest


OmegaConf.register_new_resolver("r1.short_name", short_name, replace=True)


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
