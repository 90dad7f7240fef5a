"""Small building blocks shared by the seg2vid networks: conv blocks with a choice of normalisation.

BatchNorm is an option, not the default: the method trains with a handful of clips per batch
(2 per GPU at the authors' resolution on 2 CPU cores), where batch statistics are noise.
GroupNorm does not depend on the batch at all.
"""

from __future__ import annotations

from typing import Literal

import torch.nn as nn

Norm = Literal["group", "instance", "batch", "none"]
NORMS: tuple[str, ...] = ("group", "instance", "batch", "none")


def _groups(channels: int) -> int:
    # 8 groups where possible (GroupNorm's paper found 32 best at ImageNet widths; ours are small)
    for g in (8, 4, 2):
        if channels % g == 0:
            return g
    return 1


def norm2d(kind: Norm, channels: int) -> nn.Module:
    """A 2-D normalisation layer for ``channels`` feature maps."""
    if kind == "group":
        return nn.GroupNorm(_groups(channels), channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown normalisation {kind!r}; choose one of {NORMS}")


def norm3d(kind: Norm, channels: int) -> nn.Module:
    """A 3-D (B, C, T, H, W) normalisation layer; statistics span time as well as space."""
    if kind == "group":
        return nn.GroupNorm(_groups(channels), channels)
    if kind == "instance":
        return nn.InstanceNorm3d(channels, affine=True)
    if kind == "batch":
        return nn.BatchNorm3d(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown normalisation {kind!r}; choose one of {NORMS}")


def conv2d_block(c_in: int, c_out: int, stride: int = 1, norm: Norm = "group") -> nn.Sequential:
    """3x3 convolution -> normalisation -> LeakyReLU(0.2); ``stride=2`` halves H and W."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=norm == "none"),
        norm2d(norm, c_out),
        nn.LeakyReLU(0.2, inplace=True),
    )
