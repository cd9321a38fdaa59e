"""Loss and metrics chosen from the task (multiclass, binary with one logit, multilabel, regression).

The metrics are read off counts kept during a pass (a confusion matrix, top-5 hits) with torchmetrics'
definitions (tests/test_metrics.py checks every value against torchmetrics). Computing them here instead of
importing torchmetrics saves about 3.8 s at every process start (it imports torchvision.models, torch._dynamo,
scipy.signal and matplotlib), which is most of a sweep job's start-up time.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from csc8607.errors import UserError


LOSSES = {"cross_entropy": nn.CrossEntropyLoss, "bce": nn.BCEWithLogitsLoss,  # the classification tasks'
          "mse": nn.MSELoss, "l1": nn.L1Loss, "huber": nn.HuberLoss}  # regression: data.loss (huber: delta 1)
REGRESSION_LOSSES = ("mse", "l1", "huber")


def loss_name(task: str, asked: str | None = None) -> str:
    """The loss a task trains with: cross_entropy for multiclass, bce (one logit per output) for binary and
    multilabel; regression: `asked` (data.loss: mse, the default, l1 or huber)."""
    if task != "regression":
        if asked is not None:
            raise UserError(f"data.loss={asked} is for data.task=regression (mse, l1 or huber); a {task} task "
                            "has its own loss: leave data.loss null")
        return "cross_entropy" if task == "multiclass" else "bce"
    if (asked or "mse") not in REGRESSION_LOSSES:
        raise UserError(f"data.loss={asked} is not one of {', '.join(REGRESSION_LOSSES)}")
    return asked or "mse"


def loss_function(task: str, name: str | None = None) -> nn.Module:
    """The loss module `name` (meta["loss"]; None: the task's default from loss_name)."""
    return LOSSES[name or loss_name(task)]()


def loss_targets(labels: torch.Tensor, task: str) -> torch.Tensor:
    """Labels in the form the task's loss expects."""
    if task in ("binary", "regression"):
        return labels.float().view(len(labels), -1)
    if task == "multilabel":
        return labels.float()
    return labels


def expected_initial_loss(task: str, num_classes: int) -> float:
    """Loss of an untrained model predicting uniformly: ln C for softmax, ln 2 per logit for BCE (regression: the
    mean y² of the scored targets, which the caller has)."""
    return math.log(num_classes if task == "multiclass" else 2)


def headline(task: str) -> str:
    """The metric a task is summarised by (train epochs, figures): accuracy, or RMSE for regression."""
    return "rmse" if task == "regression" else "accuracy"


def ratio(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """numerator / denominator as float64, 0 where the denominator is 0 (torchmetrics' zero_division=0)."""
    numerator, denominator = numerator.double(), denominator.double()
    return torch.where(denominator > 0, numerator / denominator.clamp(min=1), torch.zeros_like(numerator))


class Scores:
    """Running counts of one pass over batches, and the task's metrics computed from them.

    multiclass: a C x C confusion matrix (rows: true class) and top-5 hits; binary: a 2 x 2 confusion matrix
    (logit > 0 is positive); multilabel: one 2 x 2 matrix per label; regression: the sums n, Σ|e|, Σe², Σy, Σy²
    (e = prediction - target). `counts` is the whole state (saved to continue an interrupted epoch).
    """

    def __init__(self, task: str, num_classes: int, device: torch.device | str = "cpu", top5: bool = True) -> None:
        self.task, self.num_classes = task, num_classes
        self.top5 = top5 and task == "multiclass" and num_classes > 10  # off for train accuracy: a topk per step
        shape = {"multiclass": (num_classes, num_classes), "binary": (2, 2)}.get(task, (num_classes, 2, 2))
        self.counts = {"confusion": torch.zeros(shape, dtype=torch.int64, device=device),
                       "top5_hits": torch.zeros((), dtype=torch.int64, device=device)}
        if task == "regression":
            self.counts = {"sums": torch.zeros(5, dtype=torch.float64, device=device)}

    def load(self, counts: dict[str, torch.Tensor]) -> None:
        """Continue from the `counts` of an earlier (interrupted) part of the pass."""
        for key, value in counts.items():
            self.counts[key] += value.to(self.counts[key].device)

    def update(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """Add one batch: logits (N, C) or (N, 1) and labels (N,) or (N, L) for multilabel."""
        if self.task == "regression":
            y = labels.double().view(len(labels), -1)
            error = logits.double().view_as(y) - y
            self.counts["sums"] += torch.stack([error.new_tensor(float(y.numel())), error.abs().sum(),
                                                (error**2).sum(), y.sum(), (y**2).sum()])
            return
        if self.task == "multiclass":
            cells = labels.long() * self.num_classes + logits.argmax(dim=1)
            if self.top5:
                top5 = logits.topk(5, dim=1).indices
                self.counts["top5_hits"] += (top5 == labels.long()[:, None]).any(dim=1).sum()
        elif self.task == "binary":
            cells = labels.long().view(-1) * 2 + (logits.view(-1) > 0).long()
        else:  # label j's 2 x 2 matrix holds cells 4j..4j+3
            cells = labels.long() * 2 + (logits > 0).long() + 4 * torch.arange(labels.shape[1], device=labels.device)
        # index_add_, not bincount: on CUDA bincount reads its input's range back to the host (a sync per batch)
        cells = cells.flatten()
        self.counts["confusion"].view(-1).index_add_(0, cells, torch.ones_like(cells))

    def compute(self, detailed: bool = False) -> dict[str, float | list]:
        """accuracy and macro-F1 (and top5 above 10 classes); `detailed` adds per-class accuracy and the
        confusion matrix (rows: true class). Multilabel adds micro F1 (f1 is the macro mean); regression gives
        MAE, RMSE and R² (1 - Σe² / Σ(y - ȳ)²)."""
        if self.task == "regression":
            n, abs_sum, sq_sum, y_sum, y2_sum = self.counts["sums"].cpu().tolist()
            spread = y2_sum - y_sum**2 / max(n, 1)
            return {"mae": abs_sum / max(n, 1), "rmse": math.sqrt(sq_sum / max(n, 1)),
                    "r2": 1.0 - sq_sum / spread if spread > 0 else 0.0}
        confusion = self.counts["confusion"].cpu()
        out: dict[str, float | list] = {}
        if self.task == "multiclass":
            tp = confusion.diagonal()
            support, predicted = confusion.sum(1), confusion.sum(0)
            fp, fn = predicted - tp, support - tp
            f1 = ratio(2 * tp, 2 * tp + fp + fn)
            present = (tp + fp + fn) > 0  # classes neither present nor predicted do not count in the macro mean
            out["accuracy"] = ratio(tp.sum(), confusion.sum()).item()
            out["f1"] = (f1[present].sum() / present.sum().clamp(min=1)).item()
            if self.top5:
                out["top5"] = ratio(self.counts["top5_hits"].cpu(), confusion.sum()).item()
            per_class = ratio(tp, support)
        else:
            tn, fp, fn, tp = confusion.reshape(-1, 4).unbind(1)
            out["accuracy"] = ratio((tp + tn).sum(), confusion.sum()).item()
            f1 = ratio(2 * tp, 2 * tp + fp + fn)
            out["f1"] = f1.mean().item()
            if self.task == "binary":  # macro over the two classes, as multiclass (an absent, unpredicted one left out)
                both, seen = torch.cat([f1, ratio(2 * tn, 2 * tn + fn + fp)]), torch.cat([tp + fp + fn, tn + fn + fp]) > 0
                out["f1"] = (both[seen].sum() / seen.sum().clamp(min=1)).item()
            if self.task == "multilabel":
                out["f1_micro"] = ratio(2 * tp.sum(), 2 * tp.sum() + fp.sum() + fn.sum()).item()
            per_class = ratio(tp + tn, tp + tn + fp + fn)
        if detailed:
            if self.task != "binary":
                out["per_class_accuracy"] = per_class.tolist()
            if self.task == "multilabel":
                out["per_class_f1"] = f1.tolist()
            out["confusion_matrix"] = confusion.tolist()
        return out
