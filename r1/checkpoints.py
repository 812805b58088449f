"""Resumable training: checkpoints at step boundaries, written atomically, holding everything
a resumed run needs to continue exactly where the interrupted one stopped; a graceful stop on
SIGTERM/SIGINT; and finding the checkpoint that `resume=auto` continues from.

A checkpoint is taken at the start of a training batch, before anything of that batch has
run: the previous step is complete (optimizer and scheduler stepped, metrics logged and
flushed, validation done) and nothing of the next one has consumed randomness. It holds
Lightning's state (weights, optimizer, scheduler, loop counters, the data module's position in
the data stream) plus the CPU and CUDA random states, restored at the same boundary.
"""

from __future__ import annotations

import csv
import logging
import os
import random
import re
import shutil
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import yaml
from lightning.pytorch.loggers import CSVLogger, WandbLogger

from r1.checks import ConfigError, check_int

log = logging.getLogger(__name__)

CHECKPOINT_NAME = re.compile(r"^step-(\d+)\.ckpt$")
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class TrainingInterrupted(Exception):
    """Training stopped on a signal after saving a checkpoint; rerun with resume=auto."""

    def __init__(self, signum: int, checkpoint: Path | None, step: int):
        self.signum, self.checkpoint, self.step = signum, checkpoint, step
        name = signal.Signals(signum).name
        super().__init__(f"stopped by {name} at step {step}; checkpoint: {checkpoint}")


def checkpoint_path(directory: Path | str, step: int) -> Path:
    return Path(directory) / f"step-{step:08d}.ckpt"


def list_checkpoints(directory: Path | str) -> list[Path]:
    """Complete checkpoints in `directory`, oldest step first (a save cut short leaves only a
    `.tmp` file, which is never listed)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [
        (int(m.group(1)), p) for p in directory.iterdir() if (m := CHECKPOINT_NAME.match(p.name))
    ]
    return [p for _, p in sorted(found)]


def temporary_path(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


def commit(tmp: Path, path: Path) -> None:
    """Make the finished `tmp` (a file or, for sharded strategies, a directory) durable and
    rename it to `path`: a crash at any moment leaves either no new checkpoint or the complete
    one, never a partial file under the final name."""
    _fsync_tree(tmp)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_tree(path: Path) -> None:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    for file in files:
        with open(file, "rb") as f:
            os.fsync(f.fileno())


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def rng_state() -> dict[str, Any]:
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": _numpy_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _numpy_state() -> tuple:
    # plain Python values: checkpoints load with torch.load(weights_only=True)
    name, keys, position, has_gauss, cached = np.random.get_state()
    return name, keys.tolist(), int(position), int(has_gauss), float(cached)


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    name, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), position, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def csv_rows(path: Path) -> int:
    if not path.is_file():
        return 0
    with open(path, newline="") as f:
        return max(sum(1 for _ in csv.reader(f)) - 1, 0)


class ResumableCheckpoint(L.Callback):
    """Saves `step-<global step>.ckpt` into `dirpath` every `every_n_steps` optimizer steps
    (and when training ends), keeping the `keep_last` newest. On SIGTERM or SIGINT it lets the
    running step finish, saves, and raises TrainingInterrupted; a second signal stops at once.

    The random state is restored in `on_train_batch_start`, which Lightning runs before the
    training step, where the RL modules generate.
    """

    def __init__(
        self,
        dirpath: str,
        every_n_steps: int = 50,
        keep_last: int = 2,
        save_on_train_end: bool = True,
    ):
        self.dirpath = Path(dirpath)
        self.every_n_steps = check_int("checkpoint.every_n_steps", every_n_steps, 1)
        self.keep_last = check_int("checkpoint.keep_last", keep_last, 1)
        self.save_on_train_end = save_on_train_end
        self.last_saved_step: int | None = None
        self.last_path: Path | None = None
        self._pending_rng: dict[str, Any] | None = None
        self._stop_signal: int | None = None
        self._previous_handlers: dict[int, Any] = {}
        self._at_batch_start = False

    # -- what is saved besides Lightning's own state ---------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"rng": rng_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._pending_rng = state["rng"]  # applied at the first batch boundary

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        epoch_loop = checkpoint["loops"]["fit_loop"]["epoch_loop.state_dict"]
        if self._at_batch_start:
            # Lightning adds one to this logging-step counter when it restarts from a
            # checkpoint taken anywhere but at the end of a batch; ours are taken at the start
            # of the next one, when the finished batch was already counted.
            epoch_loop["_batches_that_stepped"] -= 1
        checkpoint["r1"] = {
            "global_step": trainer.global_step,
            "next_log_step": epoch_loop["_batches_that_stepped"] + int(self._at_batch_start),
            "loggers": logger_positions(trainer.loggers),
        }

    # -- when to save ----------------------------------------------------------------------
    def on_train_start(self, trainer, pl_module) -> None:
        self._install_signal_handlers()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self._pending_rng is not None:  # first batch of a resumed run: this boundary was saved
            set_rng_state(self._pending_rng)
            self._pending_rng = None
            self.last_saved_step = trainer.global_step
        elif self._save_due(trainer.global_step):
            self.save(trainer, at_batch_start=True)
        stop = trainer.strategy.reduce_boolean_decision(self._stop_signal is not None, all=False)
        if stop:
            if self.last_saved_step != trainer.global_step:
                self.save(trainer, at_batch_start=True)
            raise TrainingInterrupted(
                self._stop_signal or signal.SIGTERM, self.last_path, trainer.global_step
            )

    def on_train_end(self, trainer, pl_module) -> None:
        self._restore_signal_handlers()
        if self.save_on_train_end and self.last_saved_step != trainer.global_step:
            self.save(trainer, at_batch_start=False)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        self._restore_signal_handlers()

    def _save_due(self, step: int) -> bool:
        if step == 0 or step == self.last_saved_step:
            return False
        last = self.last_saved_step or 0
        return step // self.every_n_steps > last // self.every_n_steps

    def save(self, trainer: L.Trainer, at_batch_start: bool) -> Path:
        for logger in trainer.loggers:
            logger.save()  # rows up to this step are on disk before the checkpoint names them
        started = time.perf_counter()
        path = checkpoint_path(self.dirpath, trainer.global_step)
        tmp = temporary_path(path)
        if trainer.is_global_zero:
            self.dirpath.mkdir(parents=True, exist_ok=True)
            for stale in self.dirpath.glob("*.tmp"):  # left by a save that was killed
                _remove(stale)
        trainer.strategy.barrier("r1.checkpoint.start")
        self._at_batch_start = at_batch_start
        try:
            trainer.save_checkpoint(tmp)  # every rank: collective for sharded strategies
        finally:
            self._at_batch_start = False
        trainer.strategy.barrier("r1.checkpoint.written")
        if trainer.is_global_zero:
            commit(tmp, path)
        trainer.strategy.barrier("r1.checkpoint")
        if trainer.is_global_zero:
            for old in list_checkpoints(self.dirpath)[: -self.keep_last]:
                _remove(old)
            log.info("checkpoint saved: %s (%.1f s)", path, time.perf_counter() - started)
        self.last_saved_step, self.last_path = trainer.global_step, path
        return path

    # -- signals ---------------------------------------------------------------------------
    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in STOP_SIGNALS:
            self._previous_handlers[signum] = signal.getsignal(signum)
            signal.signal(signum, self._on_stop_signal)

    def _restore_signal_handlers(self) -> None:
        for signum, handler in self._previous_handlers.items():
            signal.signal(signum, handler)
        self._previous_handlers = {}

    def _on_stop_signal(self, signum: int, frame) -> None:
        if self._stop_signal is not None:
            self._restore_signal_handlers()
            raise KeyboardInterrupt(f"second {signal.Signals(signum).name}: stopping now")
        self._stop_signal = signum
        log.warning(
            "received %s: finishing this step, saving a checkpoint, then stopping "
            "(send it again to stop at once, without saving)",
            signal.Signals(signum).name,
        )


def logger_positions(loggers: Sequence[Any]) -> dict[str, Any]:
    """What each logger needs to continue without duplicates: CSV rows already written, the
    W&B run id."""
    positions: dict[str, Any] = {}
    for logger in loggers:
        if isinstance(logger, CSVLogger):
            positions["csv_rows"] = csv_rows(Path(logger.log_dir) / "metrics.csv")
        elif isinstance(logger, WandbLogger):
            positions["wandb_id"] = logger.version
    return positions


# -- resume=... --------------------------------------------------------------------------
@dataclass
class ResumePoint:
    """The checkpoint a run continues from, and the run directory it continues in."""

    checkpoint: Path
    run_dir: Path
    meta: dict[str, Any] = field(default_factory=dict)  # checkpoint["r1"]

    def logger_state(self) -> dict[str, Any]:
        """What the loggers continue from: `csv_rows` written up to the checkpoint, the
        `wandb_id`, the `next_log_step`."""
        return {**self.meta.get("loggers", {}), "next_log_step": self.meta.get("next_log_step", 0)}


def read_checkpoint_meta(path: Path) -> dict[str, Any]:
    """checkpoint["r1"] without reading the tensors (memory-mapped load)."""
    try:
        checkpoint = torch.load(path, map_location="cpu", mmap=True, weights_only=False)
    except Exception as error:
        raise ConfigError(f"resume: cannot read checkpoint {path}: {error}") from error
    if "r1" not in checkpoint:
        raise ConfigError(f"resume: {path} is not an r1 training checkpoint (no 'r1' entry)")
    return dict(checkpoint["r1"])


def resolve_resume(
    resume: str | None,
    output_dir: Path | str,
    checkpoint_dir: str = "checkpoints",
    runs_root: Path | str = "outputs",
    overrides: Sequence[str] = (),
) -> ResumePoint | None:
    """The checkpoint for `resume`:
    - null/false: none (a fresh run);
    - a `.ckpt` file, or a run directory (its newest checkpoint);
    - `auto`: the newest checkpoint of this run directory, else of the most recent run under
      `runs_root` launched with the same overrides (ignoring `resume` and `hydra.*`); none
      when no such run has a checkpoint yet.
    """
    if resume in (None, False, "", "null", "none"):
        return None
    output_dir = Path(output_dir)
    if str(resume) != "auto":
        target = Path(str(resume))
        if target.is_file():
            run_dir = target.parent.parent if target.parent.name == checkpoint_dir else output_dir
            return ResumePoint(target, run_dir, read_checkpoint_meta(target))
        if target.is_dir():
            found = list_checkpoints(target / checkpoint_dir) or list_checkpoints(target)
            if not found:
                raise ConfigError(f"resume={resume}: no checkpoint in {target / checkpoint_dir}")
            run_dir = target.parent if target.name == checkpoint_dir else target
            return ResumePoint(found[-1], run_dir, read_checkpoint_meta(found[-1]))
        raise ConfigError(
            f"resume={resume!r}: no such checkpoint file or run directory "
            "(use resume=auto, a run directory, or a .ckpt file)"
        )
    candidates = [output_dir] + _runs_with_overrides(Path(runs_root), overrides, output_dir)
    newest: tuple[float, Path, Path] | None = None
    for run_dir in candidates:
        found = list_checkpoints(run_dir / checkpoint_dir)
        if found and (newest is None or found[-1].stat().st_mtime > newest[0]):
            newest = (found[-1].stat().st_mtime, found[-1], run_dir)
        if found and run_dir == output_dir:
            break  # an explicit, reused run directory wins
    if newest is None:
        log.info("resume=auto: no earlier run of this command has a checkpoint; starting fresh")
        return None
    _, checkpoint, run_dir = newest
    return ResumePoint(checkpoint, run_dir, read_checkpoint_meta(checkpoint))


def comparable_overrides(overrides: Sequence[str]) -> list[str]:
    return sorted(o for o in overrides if not o.startswith(("resume=", "hydra.", "+hydra.")))


def _runs_with_overrides(root: Path, overrides: Sequence[str], exclude: Path) -> list[Path]:
    if not root.is_dir():
        return []
    wanted = comparable_overrides(overrides)
    runs = []
    for saved in root.glob("**/.hydra/overrides.yaml"):
        run_dir = saved.parent.parent
        if run_dir.resolve() == exclude.resolve():
            continue
        try:
            previous = yaml.safe_load(saved.read_text()) or []
        except (OSError, yaml.YAMLError):
            continue
        if comparable_overrides(previous) == wanted:
            runs.append(run_dir)
    return runs
