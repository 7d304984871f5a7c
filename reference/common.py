"""Small pieces shared by the reference modules."""

from __future__ import annotations

import torch
from torch import nn


class MaskableDropout(nn.Dropout):
    """nn.Dropout(p); when `mask` (a 0/1 tensor of the input's shape) is set and the module is in
    train mode, the output is x * mask / (1 - p) instead of a fresh draw (to inject the masks the
    other framework drew)."""

    def __init__(self, p: float = 0.5):
        super().__init__(p)
        self.mask = None

    def forward(self, x):
        if self.training and self.mask is not None:
            return x * self.mask.to(x.dtype) / (1.0 - self.p)
        return super().forward(x)


def dropouts(module: nn.Module) -> list[tuple[str, MaskableDropout]]:
    """(qualified name, module) of every MaskableDropout inside `module`, in registration order."""
    return [(n, m) for n, m in module.named_modules() if isinstance(m, MaskableDropout)]


def instance_norm(channels: int, track_running_stats: bool = False) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=track_running_stats)


def norm_layer(kind: str, channels: int, track_running_stats: bool = False) -> nn.Module:
    """'batch' (affine BatchNorm2d) | 'instance' (no affine, as the originals' get_norm_layer)."""
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=True)
    if kind == "instance":
        return instance_norm(channels, track_running_stats)
    raise ValueError(f"norm must be batch|instance, got {kind!r}")


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
