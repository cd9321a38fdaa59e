"""Build the model of a run from its config and the data's meta, refusing clearly what cannot work.

The contract of a model (ours, a library's, or the student's own): its constructor receives `input_shape`,
`num_outputs` and any other meta key it names as a parameter (`num_classes`, `task`, ...) that its config
node does not set, plus the keys of that node; `forward` maps a batch (batch, *input_shape) to (batch, num_outputs). Before any weight is
allocated, the model is built on PyTorch's meta device and run on a meta batch: this checks the shapes and
estimates the memory a training step needs, so an oversized config is refused instead of being killed.
"""
from __future__ import annotations

import inspect
import os
from typing import Any, Callable

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from csc8607.config import build
from csc8607.errors import UserError

NOT_ARGUMENTS = ("axes", "space")  # model-config keys read by the sweeps and the report, not by the constructor
BYTES_PER_PARAMETER = 16  # fp32 weight + gradient + two optimizer moments (Adam); SGD with momentum needs less


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (report M1)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def constructor_node(node: DictConfig) -> DictConfig:
    """The model node less the keys that describe it for the sweeps (`axes`, `space`)."""
    return OmegaConf.masked_copy(node, [k for k in node if k not in NOT_ARGUMENTS])  # type: ignore[arg-type]


def locate(target: str) -> Callable[..., Any]:
    """The class or function named by `_target_`; if it cannot be imported, the full reason and how to fix it."""
    import sys

    from hydra._internal.utils import _locate

    if os.getcwd() not in sys.path:  # a student's module next to where the command runs (python adds only the script's)
        sys.path.append(os.getcwd())
    try:
        return _locate(target)
    except Exception as err:  # noqa: BLE001 - any import failure of the user's module is reported whole
        cause = err.__cause__ or err
        reason = " ".join(f"{type(cause).__name__}: {cause}".split())
        module = target.rpartition(".")[0] or target
        raise UserError(f"cannot import model._target_={target} ({reason}); the module {module} must be importable "
                        f"from where you run the command ({os.getcwd()}): put it there, `pip install` it, or add its "
                        f"folder to PYTHONPATH (PYTHONPATH=path/to/folder python train.py ...)") from None


def meta_arguments(factory: Callable[..., Any], meta: dict[str, Any], node: DictConfig) -> dict[str, Any]:
    """The meta keys the constructor names as parameters (input_shape, num_outputs, num_classes, task, ...),
    except those its config sets (a library model's `name` is the model's, not the dataset's)."""
    try:
        names = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        names = {"input_shape": None, "num_outputs": None}  # type: ignore[assignment]
    return {k: meta[k] for k in names if k in meta and k not in node}


def example_batch(meta: dict[str, Any], batch_size: int, device: str | torch.device) -> torch.Tensor:
    """A batch of zeros shaped like the data's (its dtype from meta["input_dtype"], float32 by default)."""
    dtype = getattr(torch, str(meta.get("input_dtype", "float32")))
    return torch.zeros(batch_size, *meta["input_shape"], dtype=dtype, device=device)


def check_output(out: Any, batch: torch.Tensor, meta: dict[str, Any], target: str) -> None:
    expected = (batch.shape[0], meta["num_outputs"])
    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    if shape != expected:
        raise UserError(f"model {target} maps inputs of shape {tuple(batch.shape)} to {shape}, not to {expected} "
                        f"(batch, num_outputs={meta['num_outputs']}): its output layer must have num_outputs units")


def run_forward(model: nn.Module, batch: torch.Tensor, meta: dict[str, Any], target: str) -> list[int]:
    """Run `batch` through `model` (eval mode, no grad), check the output's shape; the number of elements each
    leaf module outputs (what training keeps for the backward pass)."""
    sizes: list[int] = []

    def hook(_mod: nn.Module, _inp: Any, out: Any) -> None:
        tensors = [out] if isinstance(out, torch.Tensor) else [t for t in out if isinstance(t, torch.Tensor)] \
            if isinstance(out, (tuple, list)) else []
        sizes.extend(t.numel() for t in tensors)

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    was_training = model.training
    try:
        with torch.no_grad():
            out = model.eval()(batch)
    except Exception as err:  # noqa: BLE001 - the model's own complaint about the input is the message
        raise UserError(f"model {target} rejects inputs of shape {tuple(batch.shape)} (meta input_shape "
                        f"{tuple(meta['input_shape'])}): {' '.join(f'{type(err).__name__}: {err}'.split())}") from None
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    check_output(out, batch, meta, target)
    return sizes


def gigabytes(n: float) -> str:
    return f"{n / 2**30:.1f} GB"


def check_fits(node: DictConfig, kwargs: dict[str, Any], meta: dict[str, Any], batch_size: int,
               device: torch.device, target: str) -> bool:
    """Build the model on the meta device (no memory), check its shapes on a meta batch and refuse it when its
    weights, gradients, optimizer state and activations exceed the memory available on `device`.
    Returns whether the shapes were checked and passed (False: the model failed on meta tensors, or could not be
    built there; the real model is then checked on a real batch)."""
    from csc8607.runtime import available_memory

    try:
        with torch.device("meta"):
            model = build(node, "model", **kwargs)
    except UserError as err:
        if "overflow" in str(err):  # a tensor with more than 2**63 bytes
            raise UserError(f"model {target} is far too large to build ({str(err).partition(': ')[2]}): make it "
                            f"smaller (model.* keys)") from None
        return False  # the real build reports the same error (or the model cannot be built on meta)
    params = count_parameters(model)
    checked, activations = True, 0
    try:
        activations = sum(run_forward(model, example_batch(meta, batch_size, "meta"), meta, target)) * 4
    except UserError:  # decided on real tensors after the build: some operations cannot run on meta tensors
        checked = False
    needed = params * BYTES_PER_PARAMETER + activations
    available = available_memory(device)
    if available is not None and needed > available:
        raise UserError(f"model {target} needs about {gigabytes(needed)} to train ({params:,} parameters x "
                        f"{BYTES_PER_PARAMETER} bytes + {gigabytes(activations)} of activations for a batch of "
                        f"{batch_size}) but {device} has {gigabytes(available)} available: make it smaller "
                        f"(model.* keys) or lower trainer.batch_size")
    return checked


# the built-in models each input type's meta fits (class names), and the option to suggest when another fails
FITTING = {"image": (("ConvNet", "ResNet"), "model=cnn (or resnet, timm, torchvision)"),
           "audio": (("ConvNet", "ResNet"), "model=cnn (a log-mel spectrogram is a 1-channel image)"),
           "series": (("ConvNet1d",), "model=cnn1d"),
           "text": (("TextCNN", "TextRNN"), "model=text_cnn or model=text_rnn")}


def build_model(node: DictConfig, meta: dict[str, Any], batch_size: int, device: torch.device) -> nn.Module:
    """The model for `meta`'s data, checked (shapes, memory) before its weights are allocated. A model that
    cannot take this input type (the default image `cnn` on series) is refused naming the option that can."""
    node = constructor_node(node)
    target = str(node.get("_target_"))
    kwargs = meta_arguments(locate(target), meta, node)
    try:
        checked = check_fits(node, kwargs, meta, batch_size, device, target)
        model = build(node, "model", **kwargs)
        if not checked:
            run_forward(model, example_batch(meta, 2, "cpu"), meta, target)
    except UserError as err:
        fitting, option = FITTING.get(str(meta.get("modality")), ((), ""))
        about_inputs = "cannot build" in str(err) or "rejects" in str(err)  # not a memory or import refusal
        if option and target.rsplit(".", 1)[-1] not in fitting and about_inputs:
            raise UserError(f"{err}; for {meta['modality']} inputs {tuple(meta['input_shape'])} use {option}") from None
        raise
    return model
