"""Library models: any torchvision classifier (`model=torchvision model.name=resnet18`) or timm model
(`model=timm model.name=...`), with the data's input channels and number of outputs, no weights by default.

Pretrained weights come from a local file (`model.weights=/path/to/file`, works offline) or are downloaded by the
library (`model.weights=DEFAULT` for torchvision, `model.pretrained=true` for timm); a download that fails
(offline) names the local-file option.
"""
from __future__ import annotations

import difflib
from pathlib import Path

import torch
from torch import nn


def unknown(kind: str, name: str, known: list[str]) -> ValueError:
    close = difflib.get_close_matches(name, known, n=3)
    hint = f"did you mean {', '.join(close)}?" if close else f"e.g. {', '.join(known[:5])}"
    return ValueError(f"model.name={name} is not a {kind} model ({hint})")


def local_file(weights: str) -> Path | None:
    """`weights` as a local file path, or None when it is a library weights name (DEFAULT, IMAGENET1K_V1)."""
    path = Path(weights).expanduser()
    if path.suffix or "/" in weights:
        if not path.is_file():
            raise ValueError(f"model.weights={weights}: no such file")
        return path
    return None


def replace_first_conv(net: nn.Module, in_channels: int, small_input: bool) -> None:
    """Give the first convolution `in_channels` inputs (pretrained filters averaged over the old channels); for
    small inputs make it a stride-1 3x3 and drop the max-pool that follows (ResNet-like `conv1` + `maxpool`)."""
    name, conv = next((n, m) for n, m in net.named_modules() if isinstance(m, nn.Conv2d))
    kernel, stride, padding = (3, 1, 1) if small_input else (conv.kernel_size, conv.stride, conv.padding)
    if conv.in_channels == in_channels and not small_input:
        return
    new = nn.Conv2d(in_channels, conv.out_channels, kernel, stride, padding, bias=conv.bias is not None)
    if not small_input and not conv.weight.is_meta:
        with torch.no_grad():
            new.weight.copy_(conv.weight.mean(1, keepdim=True).expand_as(new.weight))
    parent = net.get_submodule(name.rpartition(".")[0]) if "." in name else net
    setattr(parent, name.rpartition(".")[2], new)
    if small_input and isinstance(getattr(net, "maxpool", None), nn.MaxPool2d):
        net.maxpool = nn.Identity()


def replace_head(net: nn.Module, num_outputs: int) -> None:
    """The last linear layer gets `num_outputs` outputs (pretrained weights were loaded with 1000)."""
    name, head = [(n, m) for n, m in net.named_modules() if isinstance(m, nn.Linear)][-1]
    if head.out_features != num_outputs:
        parent = net.get_submodule(name.rpartition(".")[0]) if "." in name else net
        setattr(parent, name.rpartition(".")[2], nn.Linear(head.in_features, num_outputs))


def torchvision_model(input_shape: list[int], num_outputs: int, name: str = "resnet18", weights: str | None = None,
                      small_input: bool | str = "auto") -> nn.Module:
    """A torchvision classifier; `small_input` (auto: inputs under 128 px) swaps a ResNet's 7x7/2 stem + max-pool
    for a 3x3/1 conv, as CIFAR ResNets do."""
    import torchvision

    known = torchvision.models.list_models(module=torchvision.models)
    if name not in known:
        raise unknown("torchvision", name, known)
    in_channels, height, width = input_shape
    small = min(height, width) < 128 if small_input == "auto" else bool(small_input)
    if weights is None:
        net = torchvision.models.get_model(name, weights=None, num_classes=num_outputs)
    else:
        path = local_file(str(weights))
        try:
            net = torchvision.models.get_model(name, weights=None if path else str(weights))
        except (OSError, RuntimeError) as err:  # urllib's URLError is an OSError
            raise ValueError(f"model.weights={weights}: cannot download the {name} weights ({err}); offline, give a "
                             f"local copy: model.weights=/path/to/{name}.pth") from None
        if path:
            net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        replace_head(net, num_outputs)
    replace_first_conv(net, in_channels, small and (small_input != "auto" or hasattr(net, "maxpool")))
    return net


def fixed_input_size(name: str) -> tuple[int, int] | None:
    """(height, width) a timm model is made for when it takes no other size (ViT, Swin, ...: its pretrained
    config's fixed_input_size); None when it takes any size (CNNs)."""
    from timm.models import get_pretrained_cfg

    made_for = get_pretrained_cfg(name)
    return tuple(made_for.input_size[1:]) if made_for is not None and made_for.fixed_input_size else None


def timm_model(input_shape: list[int], num_outputs: int, name: str = "resnet18", pretrained: bool = False,
               weights: str | None = None, drop_rate: float = 0.0) -> nn.Module:
    """A timm model (`pip install timm`); `weights=/path/to/file` loads a local copy (implies pretrained).
    A model made for one image size is built for the data's (timm's img_size; pretrained position embeddings
    are resampled to it)."""
    try:
        import timm
    except ImportError:
        raise ValueError("model=timm needs the timm package: pip install timm") from None
    known = timm.list_models()
    if name not in known:
        raise unknown("timm", name, known)
    overlay = None
    if weights is not None:
        overlay, pretrained = {"file": str(local_file(str(weights)) or weights)}, True
    made_for, size = fixed_input_size(name), tuple(input_shape[1:])
    resize = {"img_size": list(size)} if made_for and len(size) == 2 and size != made_for else {}
    try:
        return timm.create_model(name, pretrained=pretrained, pretrained_cfg_overlay=overlay,
                                 num_classes=num_outputs, in_chans=input_shape[0], drop_rate=drop_rate, **resize)
    except TypeError as err:
        if not resize or "img_size" not in str(err):
            raise
        raise ValueError(f"model.name={name} takes {made_for[0]}x{made_for[1]} images only (it cannot be built for "
                         f"another size) and the data's are {size[0]}x{size[1]}: set data.image_size="
                         f"[{made_for[0]}, {made_for[1]}] or choose another model") from None
    except (OSError, RuntimeError) as err:  # huggingface_hub's offline/HTTP errors are OSErrors
        if not pretrained:
            raise
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(f"model.pretrained=true: cannot get the {name} weights ({first}); offline, give a local "
                         f"copy: model.weights=/path/to/{name}.safetensors") from None
