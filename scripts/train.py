"""Train one stage: compose the config, instantiate, fit, report, return the swept metric.

python scripts/train.py                                   # cold-start SFT on CPU
python scripts/train.py stage=sft data=countdown model=tiny
python scripts/train.py -m data.num_train=500,1000 seed=0,1
python scripts/train.py --cfg job                         # show the composed config
"""

from __future__ import annotations

import logging
import time

import hydra
import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig

from r1.models.loading import save_pretrained
from r1.summary import RunSummary

log = logging.getLogger("r1.train")


def held_out_metrics_after_fit(trainer: L.Trainer, module, datamodule) -> dict[str, float]:
    """The fit's own last validation when it ran at the final step, else a fresh one."""
    if module.validated_at_step == trainer.global_step:
        return {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    return trainer.validate(module, datamodule)[0]


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    L.seed_everything(cfg.seed, workers=True)
    model, tokenizer = instantiate(cfg.model)
    datamodule = instantiate(cfg.data, tokenizer=tokenizer)
    module = instantiate(cfg.module, model=model, tokenizer=tokenizer)
    trainer: L.Trainer = instantiate(cfg.trainer, logger=instantiate(cfg.logger))

    started = time.perf_counter()
    before = trainer.validate(module, datamodule)[0] if cfg.validate_before_training else {}
    trainer.fit(module, datamodule)
    after = held_out_metrics_after_fit(trainer, module, datamodule)
    seconds = time.perf_counter() - started

    if not trainer.is_global_zero:
        return float(after.get(cfg.optimized_metric, float("nan")))
    checkpoint = save_pretrained(module.model, tokenizer, cfg.paths.checkpoint_dir)
    choices = HydraConfig.get().runtime.choices
    summary = RunSummary(
        what=" ".join(
            f"{k}={choices[k]}" for k in ("stage", "model", "data", "experiment") if choices.get(k)
        ),
        steps=trainer.global_step,
        seconds=seconds,
        run_dir=cfg.paths.output_dir,
        checkpoint=str(checkpoint),
        before=before,
        after=after,
        samples=module.val_samples,
    )
    summary.write(f"{cfg.paths.output_dir}/summary.json")
    print(summary.render())
    return float(after.get(cfg.optimized_metric, float("nan")))


if __name__ == "__main__":
    main()
