#!/usr/bin/env python
"""Evaluate a checkpoint: `python evaluate.py ckpt=outputs/.../checkpoints/best.ckpt [split=test] [key=value ...]`.

Data and model are rebuilt from the checkpoint's own config; keys given on the command line replace theirs
(e.g. `data.root=...`, `trainer.device=cpu`). Writes <split>_metrics.json and tb/ into its own run dir.
"""
import csc8607  # noqa: F401  (first: csc8607.STARTED_AT times the start-up, heavy imports included)
import hydra
from omegaconf import DictConfig

from csc8607.errors import exit_on_user_error


@hydra.main(version_base="1.3", config_path="conf", config_name="eval")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    from omegaconf import OmegaConf

    from csc8607.errors import UserError

    if OmegaConf.is_missing(cfg, "ckpt"):
        raise UserError("Missing mandatory value: ckpt (python evaluate.py ckpt=outputs/.../checkpoints/best.ckpt)")
    from csc8607.rundir import claim
    from csc8607.sections.evaluation import evaluate_checkpoint

    hydra_cfg = HydraConfig.get()
    with claim(cfg, hydra_cfg.runtime.output_dir, "evaluate"):  # its own dir: never another run's
        evaluate_checkpoint(cfg, list(hydra_cfg.overrides.task), hydra_cfg.runtime.output_dir)


if __name__ == "__main__":
    main()
