"""ResNet: a stem, stages of residual blocks (basic or bottleneck, post- or pre-activation), GAP, linear head."""
from __future__ import annotations

import torch
from torch import nn

from csc8607.models.blocks import SqueezeExcite, check_arguments, check_channels, conv3x3

STEMS = ("auto", "small", "imagenet")


class ResidualBlock(nn.Module):
    """Basic (3x3 -> 3x3) or bottleneck (1x1 -> 3x3 -> 1x1, output 4x wider) residual block.

    Post-activation (He et al. 2015): conv -> BN -> ReLU, the sum followed by ReLU. Pre-activation (He et al.
    2016): BN -> ReLU -> conv, nothing after the sum. The strided (grouped, dilated or separable) 3x3 is shared.
    """

    def __init__(self, in_channels: int, channels: int, stride: int, bottleneck: bool, preact: bool,
                 groups: int, dilation: int, separable: bool, se: int) -> None:
        super().__init__()
        out_channels = channels * 4 if bottleneck else channels

        def middle(cin: int, cout: int, s: int) -> nn.Module:
            return conv3x3(cin, cout, s, dilation, groups, separable)

        if bottleneck:
            convs = [nn.Conv2d(in_channels, channels, 1, bias=False), middle(channels, channels, stride),
                     nn.Conv2d(channels, out_channels, 1, bias=False)]
            widths = [in_channels, channels, channels, out_channels]
        else:
            convs = [middle(in_channels, channels, stride), middle(channels, out_channels, 1)]
            widths = [in_channels, channels, out_channels]
        layers: list[nn.Module] = []
        for i, conv in enumerate(convs):
            if preact:
                layers += [nn.BatchNorm2d(widths[i]), nn.ReLU(), conv]
            else:
                layers += [conv, nn.BatchNorm2d(widths[i + 1])] + ([nn.ReLU(inplace=True)] if i < len(convs) - 1 else [])
        if se:
            layers.append(SqueezeExcite(out_channels, se))
        self.body = nn.Sequential(*layers)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            projection = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)
            self.shortcut = projection if preact else nn.Sequential(projection, nn.BatchNorm2d(out_channels))
        self.act = nn.Identity() if preact else nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


def make_stem(in_channels: int, width: int, kind: str) -> nn.Sequential:
    """small (32-64 px inputs): 3x3 conv, no pooling; imagenet (224 px): 7x7 stride-2 conv and 3x3 max-pool."""
    if kind == "small":
        return nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                             nn.ReLU(inplace=True))
    return nn.Sequential(nn.Conv2d(in_channels, width, 7, 2, padding=3, bias=False), nn.BatchNorm2d(width),
                         nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, padding=1))


class ResNet(nn.Module):
    """Stem -> stages (stage i: `blocks[i]` blocks of width * 2**i channels, stride 2 from the second) -> GAP -> linear.

    `blocks` is one number (the same for `stages` stages) or a list with one number per stage: [2, 2, 2, 2] with
    basic blocks is ResNet-18, [3, 4, 6, 3] with bottlenecks ResNet-50 (width 64, stem imagenet).
    """

    def __init__(self, input_shape: list[int], num_outputs: int, blocks: int | list[int] = 2, stages: int = 4,
                 width: int = 64, bottleneck: bool = False, preact: bool = False, stem: str = "auto",
                 groups: int = 1, dilation: int = 1, separable: bool = False, se: int = 0,
                 dropout: float = 0.0) -> None:
        super().__init__()
        per_stage = [int(blocks)] * int(stages) if isinstance(blocks, int) else [int(b) for b in blocks]
        if not per_stage and isinstance(blocks, int):
            raise ValueError(f"model.stages={stages} must be at least 1")
        if not per_stage:
            raise ValueError("model.blocks=[] lists no stage: give one number of blocks per stage, e.g. [2, 2, 2, 2]")
        check_arguments("ResNet", input_shape, {"blocks": min(per_stage), "width": width, "groups": groups,
                        "dilation": dilation, "num_outputs": num_outputs}, {"stem": (stem, STEMS)}, dropout)
        in_channels, height, width_px = input_shape
        if stem == "auto":
            stem = "imagenet" if min(height, width_px) >= 128 else "small"
        self.stem = make_stem(in_channels, width, stem)
        layers: list[nn.Module] = []
        channels = width
        for i, count in enumerate(per_stage):
            stage_channels = width * 2**i
            if groups > 1:
                check_channels(groups, stage_channels, f"stage {i + 1}")
            for j in range(count):
                layers.append(ResidualBlock(channels, stage_channels, 2 if i > 0 and j == 0 else 1, bottleneck, preact,
                                            groups, dilation, separable, se))
                channels = stage_channels * (4 if bottleneck else 1)
        self.stages = nn.Sequential(*layers)
        self.final = nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU(inplace=True)) if preact else nn.Identity()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(channels, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.final(self.stages(self.stem(x)))).flatten(1)
        return self.head(self.dropout(x))
