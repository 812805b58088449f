"""Logger factories that need a decision at run time (the rest are plain `_target_`s)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

WANDB_MODES = ("auto", "online", "offline", "disabled")


def wandb_has_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return "api.wandb.ai" in netrc.read_text()
    except OSError:
        return False


def wandb_logger(
    project: str,
    group: str,
    name: str,
    save_dir: str,
    tags: Sequence[str] = (),
    mode: str = "auto",
    **kwargs,
):
    """A Lightning WandbLogger; `mode=auto` runs offline when no API key is configured, so
    a run never blocks on a login prompt (sync later with `wandb sync <save_dir>/wandb`)."""
    from lightning.pytorch.loggers import WandbLogger

    if mode not in WANDB_MODES:
        raise ValueError(
            f"logger.mode {mode!r} is not valid; choose one of {', '.join(WANDB_MODES)}"
        )
    if mode == "auto":
        mode = "online" if wandb_has_credentials() else "offline"
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    return WandbLogger(
        project=project,
        group=group,
        name=name,
        save_dir=save_dir,
        tags=list(tags),
        mode=mode,
        **kwargs,
    )
