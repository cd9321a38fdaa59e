"""M3 — overfit a small sample: N train examples, no augmentation, weight decay 0, train until the train loss
falls below a threshold (verdict PASS; regression: relative to the target's scale) or the epoch budget runs out
(FAIL). Same engine and `fit` as training."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from csc8607 import checkpoint, figures
from csc8607.errors import UserError
from csc8607.engine import fit
from csc8607.models import count_parameters
from csc8607.run import setup
from csc8607.tb import open_writer

log = logging.getLogger(__name__)


def run(cfg: DictConfig, run_dir: Path | str) -> dict[str, Any]:
    run_dir = Path(run_dir)
    opts = cfg.overfit
    s = setup(cfg)
    train = s.data.splits["train"]
    n = opts.num_samples
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= len(train):
        raise UserError(f"overfit.num_samples={n} must be between 1 and the train split size {len(train)}")
    index = np.sort(np.random.default_rng(cfg.seed).choice(len(train), n, replace=False))
    subset = train.subset(index)
    batches = s.data.loader(subset, min(int(cfg.trainer.batch_size), n), device=s.engine.device, train=True,
                            augment=False, seed=cfg.seed, channels_last=s.channels_last)
    optimizer = s.optimizer()
    for group in optimizer.param_groups:
        group["weight_decay"] = 0.0  # the point is to memorize: no regularization
    threshold, scale = pass_threshold(float(opts.loss_threshold), s, train.targets)
    writer = open_writer(run_dir)
    try:
        # no checkpoints (a memorized sample is not a model to keep); val/loss on a fixed val sample shows the gap
        val = s.data.splits["val"]
        val_index = np.sort(np.random.default_rng(cfg.seed).choice(len(val), min(int(opts.val_samples), len(val)),
                                                                    replace=False))
        val_batches = s.data.loader(val.subset(val_index), int(cfg.trainer.eval_batch_size), device=s.engine.device,
                                    channels_last=s.channels_last)
        result = fit(s.engine, s.model, optimizer, batches, val_batches, max_epochs=int(opts.max_epochs),
                     run_dir=None, monitor="train/loss", mode="min", writer=writer, log_every=1,
                     stop=lambda row: row["train/loss"] < threshold)
        history = result["history"]
        epochs = [row["epoch"] for row in history]
        curve = figures.line_plot(
            run_dir / "overfit_loss.png",
            {"loss": {"train/loss": (epochs, [r["train/loss"] for r in history]),
                      "val/loss": (epochs, [r["val/loss"] for r in history])}},
            "époque", weight=0.0, title=f"M3 : surapprentissage de {n} exemples de train (seuil "
                                        f"{threshold:.4g})".replace(".", ","))
        figures.to_tensorboard(writer, "overfit/loss", curve)
    finally:
        writer.close()
    final = history[-1]
    reached = final["train/loss"] < threshold
    summary = {
        "num_samples": n,
        "sample_index": index.tolist(),
        "augmentation": None,
        "weight_decay": 0.0,
        "lr": optimizer.param_groups[0]["lr"],
        "model": {k: v for k, v in cfg.model.items() if k != "_target_"},
        "params": count_parameters(s.model),
        "loss_threshold": threshold,  # regression: overfit.loss_threshold x the mean prediction's loss (scale)
        "threshold_scale": scale,
        "max_epochs": int(opts.max_epochs),
        "epochs_run": len(history),
        "final_train_loss": final["train/loss"],
        "final_train_accuracy": final.get("train/accuracy"),  # None for regression (train/rmse is in history)
        "final_val_loss": final["val/loss"],
        "val_samples": len(val_index),
        "verdict": "PASS" if reached else "FAIL",
        "history": history,
        "figures": [curve.name],
    }
    checkpoint.write_json(run_dir / "overfit.json", summary)
    log.info("overfit %d examples: train/loss %.4f after %d epochs (threshold %.4f): %s", n, final["train/loss"],
             len(history), threshold, summary["verdict"])
    if not reached:
        rule = f" ({opts.loss_threshold} x {scale['mean_prediction_loss']:.4g}, the loss of predicting the train " \
               "mean)" if scale else ""
        raise UserError(f"overfit failed: train/loss {final['train/loss']:.4f} is still above {threshold:.4g}{rule} "
                        f"after {len(history)} epochs (raise overfit.max_epochs or optim.lr); see "
                        f"{run_dir / 'overfit.json'}")
    return summary


def pass_threshold(fraction: float, s: Any, targets: torch.Tensor) -> tuple[float, dict[str, float] | None]:
    """The train loss that passes: overfit.loss_threshold itself for classification (losses of one scale, ln C at
    the start); for regression, that fraction of the loss of predicting the train targets' mean (M0's baseline:
    their variance for MSE), since a loss in the target's units says nothing without its scale."""
    if s.data.task != "regression":
        return fraction, None
    y = targets.float().view(len(targets), -1)
    baseline = float(s.engine.loss(y.mean(0, keepdim=True).expand_as(y), targets))
    return fraction * baseline, {"fraction": fraction, "mean_prediction_loss": baseline}
