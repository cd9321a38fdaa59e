"""Loss and metrics chosen from the task (multiclass, binary with one logit, multilabel)."""
from __future__ import annotations

import torch
import torchmetrics
from torch import nn
from torchmetrics import classification as tmc


def loss_function(task: str) -> nn.Module:
    """CrossEntropy for multiclass; BCEWithLogits for binary (one logit) and multilabel."""
    return nn.CrossEntropyLoss() if task == "multiclass" else nn.BCEWithLogitsLoss()


def loss_targets(labels: torch.Tensor, task: str) -> torch.Tensor:
    """Labels in the form the task's loss expects."""
    if task == "binary":
        return labels.float().view(-1, 1)
    if task == "multilabel":
        return labels.float()
    return labels


def expected_initial_loss(task: str, num_classes: int) -> float:
    """Loss of an untrained model predicting uniformly: ln C for softmax, ln 2 per logit for BCE."""
    return float(torch.log(torch.tensor(float(num_classes if task == "multiclass" else 2))))


def build_metrics(task: str, num_classes: int, detailed: bool = False) -> torchmetrics.MetricCollection:
    """accuracy and macro-F1 (top5 above 10 classes); `detailed` adds per-class accuracy and the confusion matrix."""
    if task == "multiclass":
        metrics: dict[str, torchmetrics.Metric] = {
            "accuracy": tmc.MulticlassAccuracy(num_classes, average="micro"),
            "f1": tmc.MulticlassF1Score(num_classes, average="macro"),
        }
        if num_classes > 10:
            metrics["top5"] = tmc.MulticlassAccuracy(num_classes, top_k=5, average="micro")
        if detailed:
            metrics["per_class_accuracy"] = tmc.MulticlassAccuracy(num_classes, average=None)
            metrics["confusion_matrix"] = tmc.MulticlassConfusionMatrix(num_classes)
    elif task == "binary":
        metrics = {"accuracy": tmc.BinaryAccuracy(), "f1": tmc.BinaryF1Score()}
        if detailed:
            metrics["confusion_matrix"] = tmc.BinaryConfusionMatrix()
    else:
        metrics = {
            "accuracy": tmc.MultilabelAccuracy(num_classes, average="micro"),
            "f1": tmc.MultilabelF1Score(num_classes, average="macro"),
        }
        if detailed:
            metrics["per_class_accuracy"] = tmc.MultilabelAccuracy(num_classes, average=None)
            metrics["confusion_matrix"] = tmc.MultilabelConfusionMatrix(num_classes)
    return torchmetrics.MetricCollection(metrics)


def metric_inputs(logits: torch.Tensor, labels: torch.Tensor, task: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(predictions, targets) in the form torchmetrics expects for the task."""
    logits = logits.float()
    if task == "binary":
        return logits.view(-1), labels.long().view(-1)
    if task == "multilabel":
        return logits, labels.long()
    return logits, labels


def to_python(values: dict[str, torch.Tensor]) -> dict[str, float | list]:
    """Tensors -> floats (scalars) and nested lists (per-class values, confusion matrices)."""
    return {k: (v.item() if v.numel() == 1 and v.dim() == 0 else v.tolist()) for k, v in values.items()}
