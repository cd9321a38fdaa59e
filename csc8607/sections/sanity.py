"""M1–M2 — sanity checks: layer table and parameter count, initial loss vs −log(1/C), backward, gradient norms.

Verdict PASS when the initial loss on one train batch is within `sanity.tolerance` (absolute) of the loss of
a uniform prediction (ln C for softmax, ln 2 per logit for BCE), the loss is finite, and every layer with
parameters receives a non-zero gradient. A failed check exits non-zero after writing sanity.json.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from csc8607 import checkpoint, figures
from csc8607.errors import UserError
from csc8607.metrics import expected_initial_loss
from csc8607.models import count_parameters
from csc8607.run import setup
from csc8607.runtime import autocast
from csc8607.tb import open_writer

log = logging.getLogger(__name__)


def output_shape(module: nn.Module, out: Any) -> list[int] | None:
    """The shape of a module's output: its first tensor; an RNN's output sequence (padded when it is packed)."""
    first = out[0] if isinstance(out, (tuple, list)) and out and not isinstance(out, PackedSequence) else out
    if isinstance(first, PackedSequence):
        first = pad_packed_sequence(first, batch_first=getattr(module, "batch_first", False))[0]
    return list(first.shape) if isinstance(first, torch.Tensor) else None


def layer_table(model: nn.Module, inputs: torch.Tensor) -> list[dict[str, Any]]:
    """One row per call of a leaf module (or of a module holding parameters of its own, e.g. a custom layer with
    nn.Parameter) in call order: name, type, output shape (an RNN's: its output sequence), own parameter count."""
    rows: list[dict[str, Any]] = []
    hooks = []
    for name, module in model.named_modules():
        if (name and not list(module.children())) or any(True for _ in module.parameters(recurse=False)):
            def hook(mod: nn.Module, _inp: Any, out: Any, name: str = name or "(model)") -> None:
                rows.append({"layer": name, "type": type(mod).__name__, "output_shape": output_shape(mod, out),
                             "params": sum(p.numel() for p in mod.parameters(recurse=False))})
            hooks.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model.eval()
            model(inputs)
    finally:
        for handle in hooks:
            handle.remove()
    return rows


def grad_norms(model: nn.Module) -> dict[str, float]:
    """Gradient L2 norm per layer (leaf module with parameters)."""
    norms = {}
    for name, module in model.named_modules():
        params = [p for p in module.parameters(recurse=False) if p.requires_grad]
        if name and params:
            grads = [p.grad.detach().float().norm() ** 2 for p in params if p.grad is not None]
            norms[name] = math.sqrt(sum(g.item() for g in grads)) if grads else 0.0
    return norms


RULES = {"multiclass": "-log(1/C) = ln C",  # in the report's language (M2)
         "regression": "loss de sorties nulles sur le batch (MSE : moyenne de y², L1 : moyenne de |y| ; train : "
                       "variance + moyenne², dans target_stats) ; tolérance relative à cette valeur"}


def run(cfg: DictConfig, run_dir: Path | str) -> dict[str, Any]:
    run_dir = Path(run_dir)
    s = setup(cfg)
    meta, engine, model = s.data.meta, s.engine, s.model
    inputs, labels = next(iter(s.loader("train", train=True)))
    table = layer_table(model, inputs)
    total = count_parameters(model)
    expected = expected_initial_loss(meta["task"], meta["num_classes"])
    tolerance = cfg.sanity.tolerance
    if not isinstance(tolerance, (int, float)) or isinstance(tolerance, bool) or tolerance < 0:
        raise UserError(f"sanity.tolerance={tolerance!r} must be a number >= 0")
    tolerance = float(tolerance)
    if meta["task"] == "regression":  # outputs near 0: the loss of predicting 0 (MSE: mean y²), in target units
        expected = engine.loss(torch.zeros(len(labels), 1, device=labels.device), labels).item()
        tolerance *= expected  # so the tolerance is relative
    model.train()
    model.zero_grad(set_to_none=True)
    with autocast(engine.device, engine.precision):
        logits = model(inputs)
    loss = engine.loss(logits, labels)
    loss.backward()
    norms = grad_norms(model)
    checks = {
        "initial_loss_finite": math.isfinite(loss.item()),
        "initial_loss_near_expected": abs(loss.item() - expected) <= tolerance,
        "backward_ok": all(p.grad is not None for p in model.parameters() if p.requires_grad),
        "grad_norms_nonzero": all(v > 0 and math.isfinite(v) for v in norms.values()),
    }
    result = {
        "layers": table,
        "total_params": total,
        # layers initialised from a file (text: the word vectors, with how many vocabulary words were found)
        "pretrained": {name: m.pretrained for name, m in model.named_modules() if getattr(m, "pretrained", None)},
        "batch_shape": list(inputs.shape),
        "output_shape": list(logits.shape),
        "initial_loss": loss.item(),
        "expected_initial_loss": expected,
        "expected_rule": RULES.get(meta["task"], "ln 2 par logit (BCE)"),
        "loss": type(engine.loss_fn).__name__,
        "target_stats": meta.get("target_stats"),
        "tolerance": tolerance,
        "grad_norms": norms,
        "checks": checks,
        "verdict": "PASS" if all(checks.values()) else "FAIL",
    }
    bars = figures.bar_chart(run_dir / "grad_norms.png", {"norme L2": list(norms.values())}, list(norms),
                             "norme L2 du gradient",
                             title="M2 : normes des gradients après une rétropropagation (loss "
                             f"{loss.item():.3f})".replace(".", ","))  # only the number has a point
    result["figures"] = [bars.name]
    checkpoint.write_json(run_dir / "sanity.json", result)
    writer = open_writer(run_dir)
    writer.add_scalar("sanity/initial_loss", loss.item(), 0)
    writer.add_scalar("sanity/expected_initial_loss", expected, 0)
    for name, value in norms.items():
        writer.add_scalar(f"sanity/grad_norm/{name}", value, 0)
    figures.to_tensorboard(writer, "sanity/grad_norms", bars)
    writer.close()
    lines = [f"  {r['layer']:<28} {r['type']:<18} {str(r['output_shape']):<22} {r['params']:>10,}" for r in table]
    log.info("layers\n%s\n  total parameters %s\ninitial loss %.4f, expected %.4f ± %.2f; batch %s -> output %s; "
             "checks %s; verdict %s", "\n".join(lines), f"{total:,}", loss.item(), expected, tolerance,
             result["batch_shape"], result["output_shape"], checks, result["verdict"])
    if result["verdict"] != "PASS":
        failed = ", ".join(k for k, ok in checks.items() if not ok)
        hint = (" If the initial outputs of this model explain the gap (M2 asks you to argue it), widen the check "
                "with ++sanity.tolerance=... (the ++ also works on a command line shared by every preset, as in "
                "make report)") if not checks.get("initial_loss_near_expected", True) else ""
        raise UserError(f"sanity checks failed: {failed} (initial loss {loss.item():.4f}, expected {expected:.4f} "
                        f"± {tolerance:.4g}); see {run_dir / 'sanity.json'}.{hint}")
    return result
