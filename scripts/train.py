"""Train one stage: compose the config, instantiate, fit, report, return the swept metric.

python scripts/train.py                                   # cold-start SFT on CPU
python scripts/train.py stage=sft data=countdown model=tiny
python scripts/train.py -m data.num_train=500,1000 seed=0,1
python scripts/train.py --cfg job                         # show the composed config
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

import hydra
import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from r1 import cli
from r1.checkpoints import TrainingInterrupted, resolve_resume
from r1.checks import check_targets
from r1.models.loading import save_pretrained
from r1.pipeline import run_pipeline, stages_from_config
from r1.progress import BudgetProgressBar
from r1.summary import RunSummary

log = logging.getLogger("r1.train")


def held_out_metrics_after_fit(trainer: L.Trainer, module, datamodule) -> dict[str, float]:
    """The fit's own last validation when it ran at the final step, else a fresh one."""
    if module.validated_at_step == trainer.global_step:
        return {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    return trainer.validate(module, datamodule)[0]


def held_out_before(trainer: L.Trainer, module, datamodule, cfg, resume) -> dict[str, float]:
    """Held-out metrics of the starting model, measured once per run: a resumed run reads
    the ones its first part measured."""
    path = Path(cfg.paths.output_dir) / "heldout_before.json"
    if resume is not None:
        return json.loads(path.read_text()) if path.is_file() else {}
    if not cfg.validate_before_training:
        return {}
    before = trainer.validate(module, datamodule)[0]
    if trainer.is_global_zero:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(before, indent=2))
    return before


def warn_if_ranks_may_split(overrides: list[str]) -> None:
    """Under torchrun or SLURM every process composes its own config: without an explicit
    hydra.run.dir each would name its run directory after its own start time."""
    external = any(int(os.environ.get(v, "1")) > 1 for v in ("WORLD_SIZE", "SLURM_NTASKS"))
    if external and not any(o.startswith("hydra.run.dir=") for o in overrides):
        log.warning(
            "launched as one of several processes (torchrun / SLURM) without hydra.run.dir: "
            "ranks may write to different run directories; pass hydra.run.dir=<shared dir>"
        )


def resume_command(resume_value: str = "auto") -> str:
    args = [a for a in sys.argv[1:] if not a.startswith("resume=")]
    return " ".join(["python", sys.argv[0], *args, f"resume={resume_value}"])


def continue_in(run_dir: Path, fresh: Path) -> None:
    """A resumed run continues in its first part's directory: this process's log goes on
    in that run's train.log, Hydra's record of this command moves to .hydra/resumed/, and
    the directory Hydra made for this invocation is removed, so no stray run folder stays."""
    if fresh.resolve() == run_dir.resolve():
        return
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logging.FileHandler) and Path(handler.baseFilename).parent == fresh:
            moved = logging.FileHandler(run_dir / Path(handler.baseFilename).name, mode="a")
            moved.setFormatter(handler.formatter)
            moved.setLevel(handler.level)
            root.removeHandler(handler)
            handler.close()
            root.addHandler(moved)
    if (fresh / ".hydra").is_dir():
        record = run_dir / ".hydra" / "resumed" / fresh.name
        record.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(fresh / ".hydra"), str(record))
    leftovers = {p.name for p in fresh.iterdir()} if fresh.is_dir() else set()
    if leftovers <= {"train.log"}:
        shutil.rmtree(fresh, ignore_errors=True)


def run_pipeline_from(cfg: DictConfig) -> float:
    """`experiment=r1_pipeline` and the like: a `pipeline` of stages, each an ordinary run."""
    spec = cfg.pipeline
    rows = run_pipeline(
        stages_from_config(OmegaConf.to_container(spec.stages, resolve=True)),
        root=spec.dir,
        shared=list(spec.get("shared") or []),
        evaluation=list(spec.get("evaluation") or []),
        train=list(spec.get("train") or []),
    )
    return float(rows[-1].get("pass@1") or float("nan"))


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
@cli.reports_user_errors
def main(cfg: DictConfig) -> float:
    if cfg.get("pipeline"):
        return run_pipeline_from(cfg)
    warn_if_ranks_may_split(list(HydraConfig.get().overrides.hydra))
    resume = resolve_resume(
        cfg.resume,
        cfg.paths.output_dir,
        runs_root=cfg.paths.runs_root,
        overrides=HydraConfig.get().overrides.task,
    )
    check_targets(OmegaConf.to_container(cfg, resolve=True))  # types of every setting, at once
    if resume is not None:
        continue_in(Path(resume.run_dir), Path(cfg.paths.output_dir))
        log.info("resuming from %s; the run continues in %s", resume.checkpoint, resume.run_dir)
        cfg.paths.output_dir = str(resume.run_dir)
    first_step = int(resume.meta.get("global_step", 0)) if resume else 0
    L.seed_everything(cfg.seed, workers=True)
    model, tokenizer = instantiate(cfg.model)
    datamodule = instantiate(cfg.data, tokenizer=tokenizer)
    datamodule.setup("fit")  # read and check the data now, not mid-run
    module = instantiate(cfg.module, model=model, tokenizer=tokenizer)
    trainer: L.Trainer = instantiate(
        cfg.trainer,
        logger=instantiate(cfg.logger, resume=resume.logger_state() if resume else None),
        callbacks=[instantiate(cfg.checkpoint)]
        + ([BudgetProgressBar()] if cfg.trainer.get("enable_progress_bar", True) else []),
    )

    started = time.perf_counter()
    try:
        before = held_out_before(trainer, module, datamodule, cfg, resume)
        trainer.fit(module, datamodule, ckpt_path=str(resume.checkpoint) if resume else None)
    except TrainingInterrupted as stop:
        log.warning("%s. To continue: %s", stop, resume_command())
        sys.exit(128 + stop.signum)
    after = held_out_metrics_after_fit(trainer, module, datamodule)
    seconds = time.perf_counter() - started

    # Every rank: gathering sharded weights is collective; rank 0 writes.
    checkpoint = save_pretrained(
        module.model, tokenizer, cfg.paths.checkpoint_dir, writer=trainer.is_global_zero
    )
    if not trainer.is_global_zero:
        return float(after.get(cfg.optimized_metric, float("nan")))
    choices = HydraConfig.get().runtime.choices
    summary = RunSummary(
        what=" ".join(
            f"{k}={choices[k]}" for k in ("stage", "model", "data", "experiment") if choices.get(k)
        ),
        steps=trainer.global_step,
        steps_this_process=trainer.global_step - first_step,
        seconds=seconds,
        run_dir=cfg.paths.output_dir,
        checkpoint=str(checkpoint),
        before=before,
        after=after,
        samples=module.val_samples,
        training=getattr(module, "reward_history", {}),
    )
    summary.write(f"{cfg.paths.output_dir}/summary.json")
    print(summary.render())
    return float(after.get(cfg.optimized_metric, float("nan")))


if __name__ == "__main__":
    cli.run(main)
