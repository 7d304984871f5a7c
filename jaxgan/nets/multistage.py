"""Multi-stage (coarse-to-fine) generator: num_stages zoo generators chained over resolutions.

Stage k (0 .. S-1) works at 1 / 2**(S-1-k) of the input size (the last at full size). Stage 0 maps
the downsampled input to a first output; stage k > 0 sees concat(input at its size, stage k-1's
output upsampled (bilinear) to that size, as an image in [-1, 1]: a tanh output as it is, logits as
2 * sigmoid / softmax - 1) and refines it residually:
    tanh (images): out_k = clip(up(out_{k-1}) + G_k(...), -1, 1)    (G_k with a tanh output)
    none (logits): out_k = up(out_{k-1}) + G_k(...)                  (G_k raw logits)
`__call__` returns the last stage's output (B, H, W, out_channels), so evaluation and prediction
treat it like any generator; `stages(x, train)` returns every stage's output, coarsest first, each
at its own resolution (deep supervision: jaxgan.train.steps puts a loss on every stage).

Options: stage (a zoo generator name, e.g. 'unet'), stage_options (its options, without
in_channels / out_channels / out_activation / dtype, which the multi-stage generator sets), plus
in_channels, out_channels, out_activation, num_stages, dtype. A `learn_residual` stage option
applies to stage 0 only (later stages are residual on the previous output already).
"""

from __future__ import annotations

from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgan.nets import layers, registry
from jaxgan.nets.outputs import probabilities_image

_SET_BY_MULTISTAGE = ("in_channels", "out_channels", "out_activation", "dtype")


def resize_to(x: jax.Array, height: int, width: int) -> jax.Array:
    """Bilinear resize of (B, h, w, C) to (B, height, width, C) (antialiased when shrinking)."""
    if x.shape[1:3] == (height, width):
        return x
    return jax.image.resize(x, (x.shape[0], height, width, x.shape[-1]), "linear", antialias=True)


def stage_size(height: int, width: int, stage: int, num_stages: int) -> tuple[int, int]:
    """(h, w) stage `stage` works at: the input size / 2**(num_stages - 1 - stage), rounded up."""
    factor = 2 ** (num_stages - 1 - stage)
    return -(-height // factor), -(-width // factor)


class MultiStageGenerator(nn.Module):
    """(B, H, W, in_channels) -> (B, H, W, out_channels); see the module docstring."""
    in_channels: int = 3
    out_channels: int = 3
    out_activation: str = "tanh"
    num_stages: int = 2
    stage: str = "unet"
    stage_options: Any = None
    dtype: Any = jnp.float32

    def __post_init__(self):
        layers.check_choice("out_activation", self.out_activation, layers.OUT_ACTIVATIONS)
        if self.num_stages < 1:
            raise ValueError(f"num_stages must be >= 1, got {self.num_stages}")
        if self.stage not in registry.STAGE_GENERATORS:
            raise ValueError(f"unknown stage generator {self.stage!r}; valid names: "
                             f"{sorted(registry.STAGE_GENERATORS)}")
        options = dict(self.stage_options or {})
        clash = sorted(set(options) & set(_SET_BY_MULTISTAGE))
        if clash:
            raise ValueError(f"stage_options must not set {clash}: the multi-stage generator sets them")
        object.__setattr__(self, "stage_options", flax.core.FrozenDict(options))
        super().__post_init__()

    def setup(self):
        common = dict(self.stage_options, out_channels=self.out_channels,
                      out_activation=self.out_activation, dtype=self.dtype)
        refine = dict(common, in_channels=self.in_channels + self.out_channels)
        if "learn_residual" in refine:  # refining stages are residual already (on the previous output)
            refine["learn_residual"] = False
        first = dict(common, in_channels=self.in_channels)
        self.nets = [registry.make("generator", registry.STAGE_GENERATORS, self.stage, first if k == 0 else refine)
                     for k in range(self.num_stages)]

    def _as_image(self, out: jax.Array) -> jax.Array:
        if self.out_activation == "tanh":
            return out
        return probabilities_image(out)

    def stages(self, x, train: bool = False) -> list:
        """Every stage's float32 output, coarsest first: stage k is (B, h_k, w_k, out_channels)."""
        layers.check_image(x, self.in_channels, "MultiStageGenerator")
        height, width = x.shape[1:3]
        outputs = []
        for k, net in enumerate(self.nets):
            h, w = stage_size(height, width, k, self.num_stages)
            x_k = resize_to(x.astype(jnp.float32), h, w)
            if k == 0:
                out = net(x_k, train=train).astype(jnp.float32)
            else:
                previous = resize_to(outputs[-1], h, w)
                refined = net(jnp.concatenate([x_k, self._as_image(previous)], -1), train=train)
                out = previous + refined.astype(jnp.float32)
                if self.out_activation == "tanh":
                    out = jnp.clip(out, -1.0, 1.0)
            outputs.append(out)
        return outputs

    def __call__(self, x, train: bool = False):
        return self.stages(x, train)[-1]
