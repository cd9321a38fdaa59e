"""M0 — baselines: majority class and uniform random predictions on val and test, scored by the model's metrics
(multi-label: also always-0 and always-1, per attribute; regression: the train mean).

Both are tiny "models" run through the same `Engine.evaluate` as the network, so their loss, accuracy and
macro-F1 are computed exactly as the model's. Majority predicts the train prior (its argmax is the majority
class, its loss is the cross-entropy to that prior); uniform random predicts equal probabilities (loss ln C,
ln 2 per logit for BCE) plus a tiny seeded noise whose argmax is a uniformly random class.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from torch import nn

from csc8607 import checkpoint, figures
from csc8607.metrics import expected_initial_loss
from csc8607.run import setup
from csc8607.sections.data import class_counts
from csc8607.tb import open_writer

log = logging.getLogger(__name__)


# the figure's bar labels (the records keep the keys)
SHOWN = {"majority": "classe majoritaire", "uniform_random": "aléatoire uniforme", "train_mean": "moyenne de train",
         "always_0": "toujours 0", "always_1": "toujours 1"}


class Constant(nn.Module):
    """Returns the same logits for every input, plus seeded noise of scale `noise` (0 = none)."""

    def __init__(self, logits: torch.Tensor, noise: float = 0.0, seed: int = 0) -> None:
        super().__init__()
        self.register_buffer("logits", logits.float())
        self.noise, self.generator = noise, torch.Generator().manual_seed(seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.logits.expand(len(x), -1)
        if self.noise:
            out = out + self.noise * torch.randn(out.shape, generator=self.generator).to(out.device)
        return out


def expected(task: str, prior: torch.Tensor, share: torch.Tensor) -> dict[str, dict[str, float]]:
    """Values the two baselines should score on a split with class shares `share` (train prior `prior`)."""
    c = len(share)
    if task != "multiclass":  # per-logit BCE: majority = train prior per output, random = 50 % per output
        prior = prior.clamp(1e-6, 1 - 1e-6)
        bce = -(share * prior.log() + (1 - share) * (1 - prior).log()).mean().item()
        majority = {"loss": bce}
        random_f1 = (share / (share + 0.5)).mean().item()  # precision = share, recall = 1/2 (in expectation)
        if task == "binary":  # positive predicted when the train prior is above 1/2 (logit > 0), else negative
            positive = bool(prior[0] > 0.5)
            q = share[0].item()
            # macro F1 over the two classes, as the model's: the predicted class scores 2s / (1 + s) (s: its share),
            # the other 0; a class neither present nor predicted does not count
            f1 = [2 * q / (1 + q) if positive else 0.0, 0.0 if positive else 2 * (1 - q) / (2 - q)]
            seen = [positive or q > 0, not positive or q < 1]
            majority.update(accuracy=q if positive else 1 - q, f1=sum(f for f, s in zip(f1, seen) if s) / sum(seen))
            random_f1 = (q / (q + 0.5) + (1 - q) / (1.5 - q)) / 2
        return {"majority": majority, "uniform_random": {"loss": math.log(2.0), "accuracy": 0.5, "f1": random_f1}}
    p = share[prior.argmax()].item()
    chance = 1.0 / c
    random_f1 = sum(2 * q * chance / (q + chance) for q in share.tolist()) / c
    return {
        "majority": {"accuracy": p, "f1": 2 * p / (1 + p) / c,
                     "loss": -(share * prior.clamp_min(1e-12).log()).sum().item()},
        "uniform_random": {"accuracy": chance, "f1": random_f1, "loss": expected_initial_loss(task, c)},
    }


def regression(s: Any, cfg: DictConfig, run_dir: Path) -> dict[str, Any]:
    """Regression: the train mean predicted for every input; expected MSE on a split = its variance plus the
    squared gap between its mean and the train mean (R² = 0 on a split whose mean is the train mean); the loss
    (MSE, L1 or Huber) of that constant on the whole split, outside the batched evaluation."""
    mean = s.data.meta["target_stats"]["mean"]
    model = Constant(torch.tensor([mean], device=s.engine.device))
    result: dict[str, Any] = {"train_mean": mean, "loss": s.data.meta.get("loss", "mse")}
    for split in cfg.baselines.splits:
        y = s.data.splits[split].targets.double()
        mse = (y.var(unbiased=False) + (y.mean() - mean) ** 2).item()
        loss = s.engine.loss_fn(torch.full_like(y, mean), y).item()
        result[split] = {"measured": {"train_mean": s.engine.evaluate(model, s.loader(split))},
                         "expected": {"train_mean": {"loss": loss, "rmse": math.sqrt(mse), "mae": (y - mean).abs().mean(
                         ).item(), "r2": 1.0 - mse / max(y.var(unbiased=False).item(), 1e-12)}}}
    rmse = {split: [result[split]["measured"]["train_mean"]["rmse"]] for split in cfg.baselines.splits}
    bars = figures.bar_chart(run_dir / "baselines.png", rmse, [SHOWN["train_mean"]], "RMSE",
                             title="M0 : moyenne de train")
    result["figures"] = [bars.name]
    checkpoint.write_json(run_dir / "baselines.json", result)
    for split in cfg.baselines.splits:
        got = result[split]["measured"]["train_mean"]
        log.info("%-5s train_mean  rmse %.4f (expected %.4f)  mae %.4f  r2 %.4f", split, got["rmse"],
                 result[split]["expected"]["train_mean"]["rmse"], got["mae"], got["r2"])
    return result


def per_attribute(prior: torch.Tensor, share: torch.Tensor) -> dict[str, dict[str, Any]]:
    """Multi-label: what always-0, always-1 and the train majority of each attribute score on a split whose
    positive shares are `share` (always-1: precision = share, recall = 1, so F1 = 2·share / (1 + share))."""
    always_1_f1 = 2 * share / (1 + share)
    majority = torch.where(prior > 0.5, share, 1 - share)
    rows = {"always_0": (1 - share, torch.zeros_like(share)), "always_1": (share, always_1_f1),
            "majority": (majority, torch.where(prior > 0.5, always_1_f1, torch.zeros_like(share)))}
    return {name: {"accuracy": acc.mean().item(), "f1": f1.mean().item(), "per_class_accuracy": acc.tolist(),
                   "per_class_f1": f1.tolist()} for name, (acc, f1) in rows.items()}


def run(cfg: DictConfig, run_dir: Path | str) -> dict[str, Any]:
    run_dir = Path(run_dir)
    s = setup(cfg)
    meta = s.data.meta
    if meta["task"] == "regression":
        return regression(s, cfg, run_dir)
    task, c = meta["task"], meta["num_classes"]
    counts = {split: torch.tensor(class_counts(part.targets, task, c), dtype=torch.float64)
              for split, part in s.data.splits.items()}
    sizes = meta["split_sizes"]
    prior = counts["train"] / sizes["train"]
    if task == "binary":
        prior = prior[1:]  # one logit: the positive rate
    logits = prior.clamp_min(1e-12).log() if task == "multiclass" else torch.logit(prior.clamp(1e-6, 1 - 1e-6))
    baselines = {
        "majority": Constant(logits.to(s.engine.device)),
        "uniform_random": Constant(torch.zeros(meta["num_outputs"], device=s.engine.device), noise=1e-4, seed=cfg.seed),
    }
    if task == "multilabel":  # every attribute predicted absent, or present (logits ±10: a loss, not an infinity)
        baselines.update({f"always_{v}": Constant(torch.full((c,), 20.0 * v - 10.0, device=s.engine.device))
                          for v in (0, 1)})
    result: dict[str, Any] = {"train_prior": prior.tolist(),
                              "majority_class": meta["class_names"][int(counts["train"].argmax())]}
    if task == "multilabel":
        result["attributes"] = meta["class_names"]
    writer = open_writer(run_dir)
    for split in cfg.baselines.splits:
        share = counts[split] / sizes[split]
        share = share[1:] if task == "binary" else share
        detailed = task == "multilabel"  # per-attribute accuracy and F1
        measured = {name: s.engine.evaluate(model, s.loader(split), detailed=detailed)
                    for name, model in baselines.items()}
        result[split] = {"measured": measured, "expected": expected(task, prior, share)}
        if detailed:
            for name, values in per_attribute(prior, share).items():
                result[split]["expected"][name] = {**result[split]["expected"].get(name, {}), **values}
        for name, values in measured.items():
            for key, value in ((k, v) for k, v in values.items() if isinstance(v, float)):
                writer.add_scalar(f"baselines/{name}/{split}/{key}", value, 0)
    names = list(baselines)
    metric = "f1" if task == "multilabel" else "accuracy"  # multi-label: always-0 has a high accuracy, F1 0
    scores = {split: [result[split]["measured"][n][metric] for n in names] for split in cfg.baselines.splits}
    bars = figures.bar_chart(run_dir / "baselines.png", scores, [SHOWN.get(n, n) for n in names], metric,
                             title="M0 : références")
    result["figures"] = [bars.name]
    figures.to_tensorboard(writer, f"baselines/{metric}", bars)
    writer.close()
    checkpoint.write_json(run_dir / "baselines.json", result)
    for split in cfg.baselines.splits:
        for name in names:
            got, exp = result[split]["measured"][name], result[split]["expected"][name]
            log.info("%-5s %-15s %s", split, name,
                     "  ".join(f"{k} {got[k]:.4f} (expected {exp[k]:.4f})" if k in exp else f"{k} {got[k]:.4f}"
                               for k in ("loss", "accuracy", "f1") if k in got))
    return result
