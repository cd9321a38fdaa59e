"""A configurable convolutional classifier: stages of conv blocks, optional residuals, GAP, linear head."""
from __future__ import annotations

import torch
from torch import nn

from csc8607.models.blocks import Inception, SqueezeExcite, check_arguments, check_channels, conv3x3

CONVS = ("standard", "separable", "inception")


class ConvBlock(nn.Module):
    """conv -> BN -> (SE), with an identity (or 1x1-projection) shortcut when `residual`, then ReLU.

    `conv`: standard 3x3 (grouped and/or dilated), depthwise-separable 3x3, or an Inception-like block.
    """

    def __init__(self, in_channels: int, out_channels: int, residual: bool, batch_norm: bool, conv: str = "standard",
                 dilation: int = 1, groups: int = 1, se: int = 0) -> None:
        super().__init__()
        if conv == "inception":
            self.conv: nn.Module = Inception(in_channels, out_channels)
        else:
            self.conv = conv3x3(in_channels, out_channels, dilation=dilation, groups=groups,
                                separable=conv == "separable", bias=not batch_norm)
        self.norm = nn.BatchNorm2d(out_channels) if batch_norm and conv != "inception" else nn.Identity()
        self.se = SqueezeExcite(out_channels, se) if se else nn.Identity()
        self.act = nn.ReLU(inplace=True)
        self.shortcut: nn.Module | None = None
        if residual:
            same = in_channels == out_channels
            self.shortcut = nn.Identity() if same else nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.se(self.norm(self.conv(x)))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return self.act(out)


class ConvNet(nn.Module):
    """Input -> [stage: `depth` ConvBlocks, then 2x2 max-pool]x`stages` -> global average pool -> dropout -> linear.

    Stage i has round(width * width_mult**i) channels. A stage pools only while the feature map is at
    least 2 px on each side, so the same config runs from 1x8x8 to 3x224x224 inputs. `groups` applies to every
    block but the first (whose input is the image's few channels).
    """

    def __init__(
        self,
        input_shape: list[int],
        num_outputs: int,
        width: int = 32,
        depth: int = 2,
        stages: int = 3,
        width_mult: float = 2.0,
        residual: bool = True,
        batch_norm: bool = True,
        dropout: float = 0.0,
        conv: str = "standard",
        dilation: int = 1,
        groups: int = 1,
        se: int = 0,
    ) -> None:
        super().__init__()
        check_arguments("ConvNet", input_shape, {"width": width, "depth": depth, "stages": stages, "dilation": dilation,
                        "groups": groups, "num_outputs": num_outputs}, {"conv": (conv, CONVS)}, dropout)
        in_channels, height, width_px = input_shape
        layers: list[nn.Module] = []
        channels = in_channels
        for stage in range(stages):
            out_channels = max(1, round(width * width_mult**stage))
            for _ in range(depth):
                block_groups = groups if layers else 1
                if block_groups > 1:
                    check_channels(groups, channels, f"the input of a stage-{stage + 1} block")
                    check_channels(groups, out_channels, f"stage {stage + 1}")
                layers.append(ConvBlock(channels, out_channels, residual, batch_norm, conv, dilation, block_groups, se))
                channels = out_channels
            if stage < stages - 1 and min(height, width_px) >= 2:
                layers.append(nn.MaxPool2d(2))
                height, width_px = height // 2, width_px // 2
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(channels, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x)).flatten(1)
        return self.head(self.dropout(x))

