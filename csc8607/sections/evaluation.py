"""M9 — final evaluation: a checkpoint on the test split, with everything the report quotes."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from csc8607 import checkpoint
from csc8607.config import with_overrides
from csc8607.errors import UserError
from csc8607.run import check_matches, check_same_vocabulary, setup
from csc8607.tb import open_writer

log = logging.getLogger(__name__)
EVAL_KEYS = ("ckpt", "split")


def evaluate_checkpoint(composed: DictConfig, overrides: list[str], out_dir: Path | str) -> dict[str, Any]:
    """Rebuild data and model from the checkpoint, evaluate `composed.split`, write <out_dir>/test_metrics.json."""
    split = composed.split
    if split not in ("train", "val", "test"):
        raise UserError(f"split={split} must be train, val or test")
    path = Path(composed.ckpt).expanduser()
    if path.is_dir() and (path / "checkpoints" / "best.ckpt").is_file():
        path = path / "checkpoints" / "best.ckpt"  # a run dir stands for its best checkpoint
    state = checkpoint.load(path)
    out_dir = Path(out_dir)
    cfg = with_overrides(state.get("config"), composed, overrides, skip=EVAL_KEYS,
                         source=f"checkpoint {path}")
    s = setup(cfg)
    check_same_vocabulary(state.get("meta") or {}, s.data.meta, path)
    check_matches(state, s.model, path, cfg)
    s.model.load_state_dict(state["model"])
    metrics = s.engine.evaluate(s.model, s.loader(split), detailed=True)
    monitor = state.get("monitor", "val/accuracy")
    val_value = state.get("best_value")
    name = monitor.split("/", 1)[-1]
    gap = val_value - metrics[name] if val_value is not None and name in metrics else None
    result = {
        "checkpoint": str(path.resolve()),
        "split": split,
        "epoch": state.get("epoch"),
        "run_name": state.get("run_name"),
        "metrics": metrics,
        "class_names": s.data.meta["class_names"],
        "val_from_checkpoint": {monitor: val_value},
        "val_minus_" + split: gap,
        "meta": s.data.meta,
    }
    checkpoint.write_json(out_dir / f"{split}_metrics.json", result)
    writer = open_writer(out_dir)
    for key, value in metrics.items():
        if isinstance(value, float):
            writer.add_scalar(f"{split}/{key}", value, state.get("epoch") or 0)
    writer.close()
    print(format_table(result, split))
    return result


def format_table(result: dict[str, Any], split: str) -> str:
    """A short human-readable summary: scalar metrics, val-vs-split gap, worst and best classes."""
    metrics = result["metrics"]
    lines = [f"{split} metrics of {result['checkpoint']} (epoch {result['epoch']})"]
    lines += [f"  {key:<12} {value:.4f}" for key, value in metrics.items() if isinstance(value, float)]
    for monitor, value in result["val_from_checkpoint"].items():
        if value is not None:
            gap = f"; gap val - {split}: {result['val_minus_' + split]:.4f}" if split != "val" else ""
            lines.append(f"  {monitor} (checkpoint) {value:.4f}{gap}")
    per_class = metrics.get("per_class_accuracy")
    if isinstance(per_class, list) and len(per_class) > 1:
        names = result["class_names"]
        ranked = sorted(zip(per_class, names))
        worst = ", ".join(f"{n} {v:.2f}" for v, n in ranked[:3])
        best = ", ".join(f"{n} {v:.2f}" for v, n in ranked[-3:][::-1])
        lines.append(f"  per-class accuracy: worst {worst}; best {best}")
    return "\n".join(lines)
