"""Building blocks shared by the conv models: their argument checks, the 3x3 convolution in its course variants
(grouped, dilated, depthwise-separable), squeeze-and-excitation, and an Inception-like block of parallel branches."""
from __future__ import annotations

import torch
from torch import nn


INPUTS = {3: "images (channels, height, width)", 2: "series (channels, length)"}  # input dims -> what they are


def check_arguments(model: str, input_shape: list[int], positive: dict[str, int], choices: dict[str, tuple],
                    dropout: float, dims: int = 3) -> None:
    """Refuse, naming the config key, a size below 1, a choice not offered, a dropout outside [0, 1), and inputs
    of another number of dimensions than the model's convolutions take (INPUTS)."""
    for name, value in positive.items():
        if int(value) < 1:
            raise ValueError(f"model.{name}={value} must be at least 1")
    for name, (value, allowed) in choices.items():
        if value not in allowed:
            raise ValueError(f"model.{name}={value} must be one of {', '.join(allowed)}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"model.dropout={dropout} must be in [0, 1)")
    if len(input_shape) != dims:
        raise ValueError(f"model {model} takes {INPUTS[dims]}, not inputs of shape {list(input_shape)}")


def check_channels(groups: int, channels: int, what: str) -> None:
    """Grouped convolutions split the channels into `groups` equal parts: refuse widths they do not divide."""
    if groups < 1 or channels % groups:
        raise ValueError(f"model.groups={groups} does not divide the {channels} channels of {what}")


def conv3x3(in_channels: int, out_channels: int, stride: int = 1, dilation: int = 1, groups: int = 1,
            separable: bool = False, bias: bool = False) -> nn.Module:
    """A 3x3 convolution that keeps the size (at stride 1): plain, grouped, dilated, or depthwise-separable
    (a per-channel 3x3 followed by a 1x1 that mixes channels, ~8x fewer weights)."""
    if separable:
        return nn.Sequential(
            nn.Conv2d(in_channels, in_channels, 3, stride, padding=dilation, dilation=dilation, groups=in_channels,
                      bias=False),
            nn.Conv2d(in_channels, out_channels, 1, bias=bias))
    return nn.Conv2d(in_channels, out_channels, 3, stride, padding=dilation, dilation=dilation, groups=groups,
                     bias=bias)


class SqueezeExcite(nn.Module):
    """Channel attention: global average pool -> bottleneck MLP -> sigmoid gate multiplying each channel."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True),
                                  nn.Conv2d(hidden, channels, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


def branch(*layers: nn.Module, channels: int) -> nn.Sequential:
    return nn.Sequential(*layers, nn.BatchNorm2d(channels), nn.ReLU(inplace=True))


class Inception(nn.Module):
    """Parallel 1x1, 3x3, 5x5 and max-pool->1x1 branches concatenated (each a quarter of `out_channels`)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        if out_channels < 4:
            raise ValueError(f"an Inception block needs at least 4 output channels (one per branch), not {out_channels}")
        quarter = out_channels // 4
        first = out_channels - 3 * quarter  # the 1x1 branch takes the remainder
        self.branches = nn.ModuleList([
            branch(nn.Conv2d(in_channels, first, 1, bias=False), channels=first),
            branch(nn.Conv2d(in_channels, quarter, 3, padding=1, bias=False), channels=quarter),
            branch(nn.Conv2d(in_channels, quarter, 5, padding=2, bias=False), channels=quarter),
            branch(nn.MaxPool2d(3, 1, padding=1), nn.Conv2d(in_channels, quarter, 1, bias=False), channels=quarter),
        ])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([b(x) for b in self.branches], dim=1)
