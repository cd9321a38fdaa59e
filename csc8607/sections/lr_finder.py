"""M4 — LR range test: the LR grows exponentially from `lr_min` to `lr_max` over `iterations` train steps
(one `Engine.train_step` each), the loss is smoothed, and the test stops when the smoothed loss exceeds
`diverge_factor` × its minimum. Model and optimizer are restored afterwards. One curve per weight decay.

Rule (see `suggest`): only the part of the curve before the smoothed loss reaches its minimum counts (past it
the loss rises, spikes and may fall again while training diverges; a steep fall after a spike is recovery, not
learning). There, the suggested LR is where the smoothed loss falls fastest (steepest negative slope against
log10 LR), ignoring the first `skip_start` points (the smoothing's warm-up, where the slope is noise); the
stable window is the contiguous LR range around it where the loss still falls at least half as fast.
"""
from __future__ import annotations

import copy
import logging
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from omegaconf import DictConfig

from csc8607 import checkpoint, figures
from csc8607.errors import UserError
from csc8607.run import setup
from csc8607.tb import open_writer

log = logging.getLogger(__name__)
RULE = ("suggested LR = steepest descent of the smoothed loss vs log10(LR), between the first skip_start points "
        "and the minimum of the smoothed loss; stable window = the contiguous LR range around it where the slope is "
        "at most half the steepest slope")


def suggest(lrs: Sequence[float], smoothed: Sequence[float], skip_start: int = 0) -> dict[str, float]:
    """Steepest-descent LR and the half-slope window of a smoothed loss curve (see the module docstring)."""
    if len(lrs) == 0:  # diverged at the first step: nothing to suggest
        return {"lr": math.nan, "window_low": math.nan, "window_high": math.nan, "slope": math.nan}
    lowest = int(np.argmin(smoothed)) + 1  # the descent region: up to the smoothed minimum
    lrs, smoothed = list(lrs)[:lowest], list(smoothed)[:lowest]
    skip = min(skip_start, max(len(lrs) - 3, 0))
    x, y = np.log10(np.asarray(lrs[skip:], dtype=float)), np.asarray(smoothed[skip:], dtype=float)
    if len(x) < 3:
        return {"lr": float(lrs[skip]), "window_low": float(lrs[skip]), "window_high": float(lrs[-1]), "slope": 0.0}
    slope = np.gradient(y, x)
    best = int(np.argmin(slope))
    low = high = best
    while low > 0 and slope[low - 1] <= 0.5 * slope[best]:
        low -= 1
    while high < len(x) - 1 and slope[high + 1] <= 0.5 * slope[best]:
        high += 1
    return {"lr": float(10 ** x[best]), "window_low": float(10 ** x[low]), "window_high": float(10 ** x[high]),
            "slope": float(slope[best])}


def range_test(s: Any, optimizer: torch.optim.Optimizer, opts: DictConfig, writer: Any) -> dict[str, list[float]]:
    """Exponential LR sweep over `opts.iterations` steps; stops on divergence. Leaves the model trained."""
    lr_min, lr_max, steps = float(opts.lr_min), float(opts.lr_max), int(opts.iterations)
    loader = s.loader("train", train=True)
    lrs, losses, smoothed, best, epoch = [], [], [], math.inf, 0
    batches = iter(())
    every = max(steps // 10, 1)
    for i in range(steps):
        try:
            inputs, labels = next(batches)
        except StopIteration:
            epoch += 1
            loader.set_epoch(epoch)
            batches = iter(loader)
            inputs, labels = next(batches)
        lr = lr_min * (lr_max / lr_min) ** (i / max(steps - 1, 1))
        for group in optimizer.param_groups:
            group["lr"] = lr
        s.model.train()
        loss, _ = s.engine.train_step(s.model, inputs, labels, optimizer)
        value = loss.item()
        lrs.append(lr)
        losses.append(value)
        if i % every == 0 or i == steps - 1:  # progress in train.log: a long curve is never silent
            log.info("lr range test (wd=%g): step %d/%d  lr %.3g  loss %.4f",
                     optimizer.param_groups[0].get("weight_decay", 0.0), i + 1, steps, lr, value)
        smoothed.append(float(figures.smooth(losses, float(opts.smoothing))[-1]) if math.isfinite(value) else math.inf)
        writer.add_scalar("lr_finder/lr", lr, i)
        writer.add_scalar("lr_finder/loss", value, i)
        writer.add_scalar("lr_finder/loss_smoothed", smoothed[-1], i)
        best = min(best, smoothed[-1])
        if not math.isfinite(smoothed[-1]) or smoothed[-1] > float(opts.diverge_factor) * best:
            break
    return {"lr": lrs, "loss": losses, "smoothed": smoothed}


def finite_points(x: list[float], y: list[float]) -> tuple[list[float], list[float]]:
    """The points before the first non-finite value (the curve ends where the loss blew up)."""
    end = next((i for i, v in enumerate(y) if not math.isfinite(v)), len(y))
    return list(x[:end]), list(y[:end])


def useful_range(curves: dict[str, Any]) -> tuple[float, float]:
    """y limits that show the descent: from below the lowest smoothed loss to a bit above the starting loss, so
    the divergence spike at the end does not flatten the useful part of the curve."""
    low = min(min(finite_points(c["lr"], c["smoothed"])[1], default=0.0) for c in curves.values())
    start = max((c["loss"][0] for c in curves.values() if c["loss"] and math.isfinite(c["loss"][0])), default=1.0)
    return max(low - 0.1 * (start - low), 0.0), start + 0.25 * (start - low) + 1e-6


def run(cfg: DictConfig, run_dir: Path | str) -> dict[str, Any]:
    run_dir = Path(run_dir)
    opts = cfg.lr_finder
    if not opts.weight_decays or any(isinstance(w, bool) or not isinstance(w, (int, float)) or w < 0
                                     for w in opts.weight_decays):
        raise UserError(f"lr_finder.weight_decays={list(opts.weight_decays or [])} must list one or more numbers >= 0")
    s = setup(cfg)
    optimizer = s.optimizer()
    model_state = copy.deepcopy(s.model.state_dict())
    optim_state = copy.deepcopy(optimizer.state_dict())
    scaler_state, step = s.engine.scaler.state_dict(), s.engine.step  # fp16: a diverged curve lowers the scale
    curves: dict[str, Any] = {}
    for wd in opts.weight_decays:
        key = f"wd={wd:g}"
        writer = open_writer(run_dir, key)  # one TensorBoard run per weight decay: the curves overlay
        for group in optimizer.param_groups:
            group["weight_decay"] = float(wd)
        curve = range_test(s, optimizer, opts, writer)
        writer.close()
        lrs, smoothed = finite_points(curve["lr"], curve["smoothed"])
        curves[key] = {"weight_decay": float(wd), **curve, "steps": len(curve["lr"]),
                       "diverged": len(curve["lr"]) < int(opts.iterations),
                       "suggestion": suggest(lrs, smoothed, int(opts.skip_start))}
        s.model.load_state_dict(model_state)  # every curve starts from the same weights and optimizer state
        optimizer.load_state_dict(optim_state)
        s.engine.scaler.load_state_dict(scaler_state)
        s.engine.step = step
    first = next(iter(curves.values()))["suggestion"]
    png = figures.line_plot(run_dir / "lr_finder.png",
                            {"loss (train)": {k: finite_points(c["lr"], c["loss"]) for k, c in curves.items()}},
                            "taux d'apprentissage (échelle log)", weight=float(opts.smoothing), logx=True,
                            title="M4 : LR finder, loss selon le LR", mark=first["lr"],
                            span=(first["window_low"], first["window_high"]), ylim=useful_range(curves))
    result = {"rule": RULE, "suggested_lr": first["lr"], "stable_window": [first["window_low"], first["window_high"]],
              "smoothing": float(opts.smoothing), "skip_start": int(opts.skip_start),
              "diverge_factor": float(opts.diverge_factor),
              "lr_min": float(opts.lr_min), "lr_max": float(opts.lr_max), "iterations": int(opts.iterations),
              "curves": curves, "figures": [png.name]}
    checkpoint.write_json(run_dir / "lr_finder.json", result)
    writer = open_writer(run_dir)
    figures.to_tensorboard(writer, "lr_finder/curve", png)
    writer.close()
    for key, c in curves.items():
        sg = c["suggestion"]
        log.info("%s: %d steps%s; suggested lr %.3g, stable window [%.3g, %.3g]", key, c["steps"],
                 " (diverged)" if c["diverged"] else "", sg["lr"], sg["window_low"], sg["window_high"])
    log.info("rule: %s", RULE)
    return result
