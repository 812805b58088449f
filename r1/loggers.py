"""Logger factories that need a decision at run time (the rest are plain `_target_`s).

Every logger keeps the local metrics file: `logger=wandb` and `logger=tensorboard` return
their logger together with the CSV one (`local_metrics=True`, the default), so
<run dir>/logs/metrics.csv, which scripts/plot_run.py and scripts/plot_ablation.py read, is
written whatever else the metrics go to, and a W&B sweep charts offline.
"""

from __future__ import annotations

import csv
import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.loggers.logger import Logger, rank_zero_experiment

from r1.checks import ConfigError

WANDB_MODES = ("auto", "online", "offline", "disabled")
LOCAL_METRICS_DIR = "logs"  # <run dir>/logs/metrics.csv, as logger=csv writes it


def wandb_has_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return "api.wandb.ai" in netrc.read_text()
    except OSError:
        return False


def arm_tags(overrides: str) -> list[str]:
    """W&B tags naming a run's ablation arm: its own overrides (Hydra's override_dirname,
    "reward=lang_consistency,seed=1"), the seed left out so that seeds share the arm's tags."""
    return [o for o in overrides.split(",") if o and not o.startswith("seed=")]


def wandb_logger(
    project: str,
    group: str,
    name: str,
    save_dir: str,
    tags: Sequence[str] = (),
    mode: str = "auto",
    resume: Any = None,
    arm: str = "",
    local_metrics: bool = True,
    **kwargs,
):
    """A Lightning WandbLogger; `mode=auto` runs offline when no API key is configured, so
    a run never blocks on a login prompt (sync later with `wandb sync <save_dir>/wandb`).
    With `local_metrics`, [the WandbLogger, the CSV logger of <save_dir>/logs]."""
    from lightning.pytorch.loggers import WandbLogger

    if mode not in WANDB_MODES:
        raise ConfigError(
            f"logger.mode {mode!r} is not valid; choose one of {', '.join(WANDB_MODES)}"
        )
    if mode == "auto":
        mode = "online" if wandb_has_credentials() else "offline"
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    if resume and resume.get("wandb_id"):
        # Same run: W&B keeps the steps it already has and accepts the ones after them.
        kwargs.update(id=resume["wandb_id"], resume="allow")
    logger = WandbLogger(
        project=project,
        group=group,
        name=f"{name}-{arm}" if arm else name,
        save_dir=save_dir,
        tags=[*tags, *arm_tags(arm)],
        mode=mode,
        **kwargs,
    )
    return with_local_metrics(logger, save_dir, resume) if local_metrics else logger


class ResumableCSVLogger(CSVLogger):
    """Lightning's CSVLogger, except that it never deletes a metrics.csv already in its
    directory (Lightning's does): a resumed run keeps the first `keep_rows` rows, those written
    up to its checkpoint, and appends after them; a fresh run moves an old file aside."""

    def __init__(self, *args: Any, keep_rows: int | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.keep_rows = keep_rows

    @property
    @rank_zero_experiment
    def experiment(self):
        if self._experiment is not None:
            return self._experiment
        path = Path(self.log_dir) / "metrics.csv"
        header, rows = None, []
        if path.is_file():
            if self.keep_rows is None:
                path.rename(path.with_name(f"metrics.{time.strftime('%Y%m%d-%H%M%S')}.csv"))
            else:
                with open(path, newline="") as f:
                    reader = csv.DictReader(f)
                    header, rows = list(reader.fieldnames or []), list(reader)[: self.keep_rows]
                path.unlink()
        with warnings.catch_warnings():  # its "will be deleted" no longer holds
            warnings.filterwarnings("ignore", message="Experiment logs directory")
            writer = CSVLogger.experiment.fget(self)
        if header is not None:
            with open(path, "w", newline="") as f:
                out = csv.DictWriter(f, fieldnames=header)
                out.writeheader()
                out.writerows(rows)
            writer.metrics_keys = header
        return writer


def csv_logger(save_dir: str, name: str, version: str = "", resume: Any = None, **kwargs: Any):
    keep_rows = resume.get("csv_rows", 0) if resume else None
    return ResumableCSVLogger(save_dir, name=name, version=version, keep_rows=keep_rows, **kwargs)


def tensorboard_logger(
    save_dir: str,
    name: str,
    version: str = "",
    resume: Any = None,
    local_metrics: bool = True,
    **kwargs: Any,
):
    """Lightning's TensorBoardLogger; with `local_metrics`, [it, the CSV logger of
    <save_dir>/logs]."""
    if resume:  # drop the events the interrupted run logged after its checkpoint
        kwargs["purge_step"] = resume["next_log_step"]
    logger = TensorBoardLogger(save_dir, name=name, version=version, **kwargs)
    return with_local_metrics(logger, save_dir, resume) if local_metrics else logger


def with_local_metrics(logger: Logger, save_dir: str, resume: Any = None) -> list[Logger]:
    """`logger` and beside it the CSV logger of <save_dir>/logs/metrics.csv (resumed like
    logger=csv's: rows up to the checkpoint kept). Lightning's Trainer takes the list; the
    first logger stays the run's main one (its directory is the Trainer's log_dir)."""
    local = csv_logger(save_dir, name=LOCAL_METRICS_DIR, resume=resume, flush_logs_every_n_steps=10)
    return [logger, local]
