"""csc8607.metrics computes what torchmetrics computes, for every task, from counts kept batch by batch."""
from __future__ import annotations

import math

import pytest
import torch
from torchmetrics import classification as tmc

from csc8607.metrics import Scores, expected_initial_loss


def reference(task: str, n: int) -> dict[str, object]:
    """torchmetrics' metrics with the definitions csc8607 reports."""
    if task == "multiclass":
        metrics = {"accuracy": tmc.MulticlassAccuracy(n, average="micro"), "f1": tmc.MulticlassF1Score(n, average="macro"),
                   "per_class_accuracy": tmc.MulticlassAccuracy(n, average=None),
                   "confusion_matrix": tmc.MulticlassConfusionMatrix(n)}
        if n > 10:
            metrics["top5"] = tmc.MulticlassAccuracy(n, top_k=5, average="micro")
        return metrics
    if task == "binary":  # f1: macro over the two classes, like multiclass (the positive class's F1 alone was not)
        return {"accuracy": tmc.BinaryAccuracy(), "f1": ClassesOfOneLogit(2, average="macro"),
                "confusion_matrix": tmc.BinaryConfusionMatrix()}
    return {"accuracy": tmc.MultilabelAccuracy(n, average="micro"), "f1": tmc.MultilabelF1Score(n, average="macro"),
            "f1_micro": tmc.MultilabelF1Score(n, average="micro"),
            "per_class_accuracy": tmc.MultilabelAccuracy(n, average=None),
            "per_class_f1": tmc.MultilabelF1Score(n, average=None),
            "confusion_matrix": tmc.MultilabelConfusionMatrix(n)}


class ClassesOfOneLogit(tmc.MulticlassF1Score):
    """torchmetrics' multiclass F1 on one logit's classes (logit > 0: class 1)."""

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        super().update((preds > 0).long(), target)


def batches(task: str, n: int, seed: int, skew: bool):
    """Random logits (wide range, so torchmetrics applies its sigmoid) and labels; `skew` leaves classes absent."""
    g = torch.Generator().manual_seed(seed)
    for size in (37, 64, 5):
        width = n if task != "binary" else 1
        logits = torch.randn(size, width, generator=g) * 4
        if task == "multiclass":
            labels = torch.randint(0, max(2, n // 3) if skew else n, (size,), generator=g)
            logits[:, : n // 2] += 2.0 * skew  # some classes never predicted either
        elif task == "binary":
            labels = (torch.rand(size, generator=g) < (0.9 if skew else 0.5)).long()
        else:
            labels = (torch.rand(size, n, generator=g) < (0.1 if skew else 0.5)).long()
        yield logits, labels


@pytest.mark.parametrize("task,n", [("multiclass", 5), ("multiclass", 12), ("multiclass", 200), ("binary", 2),
                                     ("multilabel", 6)])
@pytest.mark.parametrize("skew", [False, True])
def test_scores_equal_torchmetrics(task: str, n: int, skew: bool) -> None:
    ours, refs = Scores(task, n), reference(task, n)
    for logits, labels in batches(task, n, seed=n, skew=skew):
        ours.update(logits, labels)
        preds = logits.view(-1) if task == "binary" else logits
        for metric in refs.values():
            metric.update(preds, labels)
    got = ours.compute(detailed=True)
    assert set(got) == set(refs)
    for key, metric in refs.items():
        expected = metric.compute()
        assert torch.allclose(torch.tensor(got[key], dtype=torch.float64), expected.double(), atol=1e-6), key
    if task == "multiclass" and n > 10:
        assert got["top5"] >= got["accuracy"]


def test_scores_continue_from_saved_counts() -> None:
    """An interrupted pass resumed from `counts` scores exactly like an uninterrupted one."""
    whole, first, second = Scores("multiclass", 12), Scores("multiclass", 12), Scores("multiclass", 12)
    parts = list(batches("multiclass", 12, seed=3, skew=False))
    for logits, labels in parts:
        whole.update(logits, labels)
    first.update(*parts[0])
    second.load({k: v.clone() for k, v in first.counts.items()})
    for logits, labels in parts[1:]:
        second.update(logits, labels)
    assert second.compute(detailed=True) == whole.compute(detailed=True)


def test_expected_initial_loss() -> None:
    assert expected_initial_loss("multiclass", 200) == pytest.approx(math.log(200))
    assert expected_initial_loss("binary", 1) == pytest.approx(math.log(2))


def test_top5_can_be_left_out() -> None:
    scores = Scores("multiclass", 200, top5=False)
    for logits, labels in batches("multiclass", 200, seed=1, skew=False):
        scores.update(logits, labels)
    assert "top5" not in scores.compute() and scores.counts["top5_hits"] == 0
