"""Helpers of the reference-parity tests: torch <-> numpy layouts, random statistics, injected dropout."""

from __future__ import annotations

import contextlib

import flax.linen as nn
import numpy as np
import torch


def nchw(x_nhwc: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(np.asarray(x_nhwc).transpose(0, 3, 1, 2)))


def nhwc(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy().transpose(0, 2, 3, 1)


def randomize_norm_stats(module: torch.nn.Module, seed: int = 0) -> None:
    """Non-trivial BatchNorm affine parameters and running statistics (so eval mode is tested)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(1 + 0.2 * torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))


def state_file(module: torch.nn.Module, path, wrap: str = "", prefix: str = "") -> str:
    """Saves module.state_dict() as the originals do (optionally {wrap: ...} and key prefix)."""
    state = {prefix + k: v for k, v in module.state_dict().items()}
    torch.save({wrap: state} if wrap else state, path)
    return str(path)


@contextlib.contextmanager
def injected_dropout(masks: dict):
    """Every flax nn.Dropout at module path P (a '/'-joined string) outputs x * masks[P] / (1 - rate)."""
    def interceptor(next_fun, args, kwargs, context):
        module = context.module
        if isinstance(module, nn.Dropout) and context.method_name == "__call__":
            path = "/".join(module.scope.path)
            return args[0] * masks[path] / (1.0 - module.rate)
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(interceptor):
        yield


def max_errors(a, b) -> tuple[float, float]:
    """(max absolute error, max relative error |a - b| / max(|b|, 1e-3))."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    diff = np.abs(a - b)
    return float(diff.max()), float((diff / np.maximum(np.abs(b), 1e-3)).max())
