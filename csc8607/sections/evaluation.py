"""M9 — final evaluation: a checkpoint on the test split, with everything the report quotes."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from csc8607 import checkpoint
from csc8607.config import check_added_keys, with_overrides
from csc8607.errors import UserError
from csc8607.run import check_matches, check_same_split, check_same_vocabulary, setup
from csc8607.tb import open_writer

log = logging.getLogger(__name__)
EVAL_KEYS = ("ckpt", "split")
SAME_DATA = ("split_sizes", "input_shape", "class_names", "split_fingerprint")


def evaluate_checkpoint(composed: DictConfig, overrides: list[str], out_dir: Path | str) -> dict[str, Any]:
    """Rebuild data and model from the checkpoint, evaluate `composed.split`, write <out_dir>/test_metrics.json."""
    if OmegaConf.is_missing(composed, "ckpt") or not composed.ckpt:
        raise UserError("Missing mandatory value: ckpt (python evaluate.py ckpt=outputs/.../checkpoints/best.ckpt)")
    split = composed.split
    if split not in ("train", "val", "test"):
        raise UserError(f"split={split} must be train, val or test")
    path = Path(composed.ckpt).expanduser()
    if path.is_dir() and (path / "checkpoints" / "best.ckpt").is_file():
        path = path / "checkpoints" / "best.ckpt"  # a run dir stands for its best checkpoint
    state = checkpoint.load(path)
    checkpoint.check_fields(state, path)
    check_added_keys(composed, overrides)
    cfg = with_overrides(state["config"], composed, overrides, skip=EVAL_KEYS, source=f"checkpoint {path}")
    check_same_split(state["config"], cfg, "evaluate.py evaluates")
    s = setup(cfg, train_steps=0)  # one pass: trainer.compile=auto does not compile
    check_same_data(state.get("meta") or {}, s.data.meta, path)
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
        "precision": s.engine.precision,  # a bf16-trained checkpoint evaluated at fp32 can differ in the 3rd digit
        "precision_why": s.engine.precision_why,
        "compile": s.engine.compiled,
        "meta": s.data.meta,
    }
    out_dir = Path(out_dir)
    checkpoint.write_json(out_dir / f"{split}_metrics.json", result)
    writer = open_writer(out_dir)
    for key, value in metrics.items():
        if isinstance(value, float):
            writer.add_scalar(f"{split}/{key}", value, state.get("epoch") or 0)
    writer.close()
    print(format_table(result, split))
    print(f"written: {out_dir / f'{split}_metrics.json'}")
    return result


def check_same_data(recorded: dict[str, Any], rebuilt: dict[str, Any], path: Path) -> None:
    """The splits rebuilt here are the run's: same sizes, classes, input shape, labels (the fingerprint, in
    checkpoints that have it) and normalization; else (a moved data.root holding other files) refuse."""
    differ = [f"{key} {recorded[key]} -> {rebuilt.get(key)}" for key in SAME_DATA
              if key in recorded and recorded[key] != rebuilt.get(key)]
    for key in ("mean", "std"):
        before, now = (recorded.get("preprocess") or {}).get(key), rebuilt["preprocess"][key]
        # a loose tolerance: another image decoder version may shift the train mean a little, not 0.1%
        if before is not None and (len(before) != len(now) or any(abs(a - b) > 1e-3 for a, b in zip(before, now))):
            differ.append(f"normalize.{key} {before} -> {now}")
    if differ:
        raise UserError(f"the data rebuilt for {path} is not the data the run recorded ({'; '.join(differ)[:300]}): "
                        "point data.root at the dataset it was trained on")


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
        imperfect = [(v, n) for v, n in ranked if v < 1.0]  # a class at 1.00 is not among the worst
        worst = ", ".join(f"{n} {v:.2f}" for v, n in imperfect[:3])
        best = ", ".join(f"{n} {v:.2f}" for v, n in ranked[-3:][::-1])
        lines.append(f"  per-class accuracy: worst {worst}; best {best}" if imperfect else
                     f"  per-class accuracy: all {len(ranked)} classes at 1.00")
    return "\n".join(lines)
