"""D1–D11 — the data: splits, class distribution, input sizes, preprocessing, augmentation, examples and
the exact train batch shape."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from csc8607 import checkpoint, figures, figures_examples
from csc8607.errors import UserError
from csc8607.run import setup
from csc8607.tb import open_writer

log = logging.getLogger(__name__)


def class_counts(labels: torch.Tensor, task: str, num_classes: int, edges: torch.Tensor | None = None) -> list[int]:
    """Examples per class (multilabel: examples carrying each label; binary: negatives, positives; regression:
    targets per bin between `edges`)."""
    if task == "regression":
        return torch.histogram(labels.double().cpu(), bins=edges).hist.long().tolist()
    if task == "multilabel":
        return labels.sum(0).long().tolist()
    return torch.bincount(labels.long().view(-1), minlength=max(num_classes, 2 if task == "binary" else 1)).tolist()


def grey_count(images: torch.Tensor, chunk: int = 1024) -> int:
    """Images whose channels are all equal: greyscale content (a grey file converted to RGB); all of them with one
    channel. Counted on the decoded uint8 arrays, by chunks (no full-size boolean copy)."""
    return sum(int((x == x[:, :1]).flatten(1).all(1).sum()) for x in images.split(chunk))


def target_bins(targets: torch.Tensor, bins: int = 10) -> tuple[torch.Tensor, list[str]]:
    """Regression: edges of `bins` equal bins over the train targets' range, and their labels."""
    low, high = targets.min().item(), targets.max().item()
    edges = torch.linspace(low, high if high > low else low + 1.0, bins + 1, dtype=torch.float64)
    return edges, [f"{a:.3g}..{b:.3g}" for a, b in zip(edges[:-1].tolist(), edges[1:].tolist())]


def target_summary(targets: torch.Tensor) -> dict[str, float]:
    """Regression: a split's target distribution (D2, D4) as mean, std, min, quartiles and max."""
    y = targets.double().flatten()
    q = torch.quantile(y, torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64)).tolist()
    return {"mean": y.mean().item(), "std": y.std(unbiased=False).item(), "min": y.min().item(), "q25": q[0],
            "median": q[1], "q75": q[2], "max": y.max().item()}


def examples_figure(s: Any, path: Path, shown: dict[str, tuple[torch.Tensor, torch.Tensor]],
                    titles: dict[str, list[str]]) -> Path:
    """Examples as the input type is read: images, log-mel spectrograms with axes, or series per channel."""
    if s.data.modality == "text":
        texts = {split: decoded(s.data.meta, x) for split, (x, _) in shown.items()}
        return figures_examples.text_grid(path, texts, titles)
    arrays = {split: x.numpy() for split, (x, _) in shown.items()}
    if s.data.modality == "audio":
        return figures_examples.spectrogram_grid(path, arrays, titles)
    if s.data.modality == "series":
        return figures_examples.series_grid(path, arrays, titles, s.data.meta["input"].get("channel_names"))
    return figures_examples.image_grid(path, arrays, titles)


def decoded(meta: dict, ids: torch.Tensor, limit: int = 80) -> list[str]:
    """Token ids back to the tokens the model reads (padding left out, unknown words as ‹unk›), `limit` at most."""
    vocabulary, pad_id = meta["vocabulary"], meta["pad_id"]
    unk = vocabulary[meta["input"]["unk_id"]]
    texts = []
    for row in ids.tolist():
        tokens = ["‹unk›" if vocabulary[i] == unk else vocabulary[i] for i in row if i != pad_id]
        texts.append(" ".join(tokens[:limit]) + (" …" if len(tokens) > limit else ""))
    return texts


def batch_matches(meta: dict, shape: list[int]) -> bool:
    """D11: the train batch has meta's input shape (text: trimmed to its longest text, at most max_length)."""
    if meta["modality"] == "text":
        return len(shape) == 2 and shape[1] <= meta["max_length"]
    return shape[1:] == list(meta["input_shape"])


def distinct_classes(targets: torch.Tensor, count: int, seed: int) -> torch.Tensor:
    """Indexes of `count` examples of different classes where the split has that many (drawn with `seed`), else the
    first `count` of the draw: a split sorted by class would otherwise show `count` images of its first class."""
    order = torch.randperm(len(targets), generator=torch.Generator().manual_seed(seed))
    if targets.dim() != 1 or targets.is_floating_point():  # multi-hot or numeric targets: no single class
        return order[:count]
    firsts: dict[int, int] = {}  # class -> the first example of it in the draw
    for i in order.tolist():
        firsts.setdefault(int(targets[i]), i)
        if len(firsts) == count:
            break
    chosen = list(firsts.values())
    chosen += [i for i in order.tolist() if i not in firsts.values()][: count - len(chosen)]
    return torch.tensor(chosen, dtype=torch.long)


def examples(s: Any, split: str, count: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """`count` examples of a split, of different classes, exactly as the model gets them (train: augmented),
    de-normalized."""
    part = s.data.splits[split]
    loader = s.loader(part.subset(distinct_classes(part.targets, count, seed).numpy()), train=split == "train",
                      batch_size=count)
    loader.set_epoch(1)
    inputs, labels = next(iter(loader))
    return loader.transform.restore(inputs).cpu(), labels.cpu()


def label_of(meta: dict, y: torch.Tensor) -> str:
    """How one example's target is written under it: its class, its positive attributes, or its value."""
    if meta["task"] in ("multiclass", "binary"):
        return meta["class_names"][int(y)]
    if meta["task"] == "multilabel":
        return "+".join(n for n, v in zip(meta["class_names"], y.tolist()) if v > 0.5) or "none"
    return f"{float(y):.3g}" if meta["task"] == "regression" else str(int(y))


def run(cfg: DictConfig, run_dir: Path | str) -> dict[str, Any]:
    run_dir = Path(run_dir)
    s = setup(cfg)
    meta, names = s.data.meta, s.data.meta["class_names"]
    splits = s.data.splits
    edges = None
    if meta["task"] == "regression":  # the distribution of the target, in bins
        edges, names = target_bins(splits["train"].targets)
    counts = {split: class_counts(part.targets, meta["task"], meta["num_classes"], edges)
              for split, part in splits.items()}
    train = counts["train"]
    regression = meta["task"] == "regression"  # bins of a histogram, not classes: no imbalance ratio
    imbalance = None if regression else max(train) / min(train) if min(train) > 0 else float("inf")
    # decoded input sizes and pixel statistics (source sizes, when they vary, are in meta["notes"])
    sizes = {split: dict(zip(("channel_mean", "channel_std"), s.data.statistics(part.inputs)),
                         shape=list(part.inputs.shape[1:])) for split, part in splits.items()}

    # D11: the exact train batch the engine receives, checked against meta["input_shape"]
    inputs, _ = next(iter(s.loader("train", train=True)))
    batch_shape = list(inputs.shape)
    shape_ok = batch_matches(meta, batch_shape)

    per_split = int(cfg.data_report.examples_per_split)
    shown = {split: examples(s, split, per_split, int(cfg.seed)) for split in ("train", "val", "test")}
    grid = examples_figure(s, run_dir / "examples.png", shown,
                           {split: [label_of(meta, y) for y in ys] for split, (_, ys) in shown.items()})
    bars = figures.bar_chart(run_dir / "class_distribution.png", counts, names, "exemples",
                             title=f"{meta['name']} : histogramme de la cible" if regression else
                             f"{meta['name']} : distribution des classes (déséquilibre train "
                             f"{format(imbalance, '.2f').replace('.', ',')})")
    result = {
        "dataset": {k: meta[k] for k in ("name", "source", "modality", "task", "num_classes", "input_shape", "input",
                                         "notes")},
        "split_sizes": meta["split_sizes"],
        "split_protocol": meta["split_protocol"],
        "split_seed": meta["split_seed"],
        "class_names": names,
        "class_counts": counts,
        "imbalance_ratio_train": imbalance,  # largest / smallest train class (regression: None)
        "target_summary": {split: target_summary(part.targets) for split, part in splits.items()}
        if regression else None,  # D2, D4: the target's distribution per split
        "input_sizes": sizes,
        "grey_images": {split: grey_count(part.inputs) for split, part in splits.items()}
        if meta["modality"] == "image" else None,  # D5
        "label_cardinality": {split: part.targets.float().sum(1).mean().item() for split, part in splits.items()}
        if meta["task"] == "multilabel" else None,  # D5: mean positive attributes per example
        "preprocess": meta["preprocess"],  # applied identically to train, val and test
        "augment": meta["augment"],  # train split only
        "train_batch_shape": batch_shape,
        "batch_shape_matches_meta": shape_ok,
        "examples": {split: [label_of(meta, y) for y in ys] for split, (_, ys) in shown.items()},
        "example_texts": {split: decoded(meta, x) for split, (x, _) in shown.items()}
        if meta["modality"] == "text" else None,  # D10: what the model reads
        "figures": [grid.name, bars.name],
    }
    checkpoint.write_json(run_dir / "data.json", result)
    writer = open_writer(run_dir)
    if meta["modality"] == "image":
        for split, (x, _) in shown.items():
            writer.add_images(f"examples/{split}", x, 0)
    else:
        figures.to_tensorboard(writer, "data/examples", grid)
    figures.to_tensorboard(writer, "data/class_distribution", bars)
    writer.close()
    table = "\n".join(f"  {n:>12}  " + "  ".join(f"{counts[sp][i]:>6}" for sp in counts) for i, n in enumerate(names))
    log.info("splits %s; imbalance %s; train batch %s (meta %s)\n  %12s  %s\n%s", meta["split_sizes"],
             "-" if imbalance is None else f"{imbalance:.2f}",
             batch_shape, meta["input_shape"], "class", "  ".join(f"{sp:>6}" for sp in counts), table)
    if not shape_ok:
        raise UserError(f"train batch shape {batch_shape} does not match meta input_shape {meta['input_shape']}")
    return result
