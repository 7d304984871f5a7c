"""pix2pix U-Net generator with a skip connection at every level.

Level i (0 = outermost) has width w_i = base_width * min(2**i, 8). Encoder: 4x4 stride-2 convs,
LeakyReLU(0.2) before every conv but the first, a norm after every conv but the first and the
innermost. Decoder: ReLU, x2 up-conv, norm (not on the outermost), dropout 0.5 on the levels
4 <= i <= depth - 2 (pix2pix's use_dropout blocks), then concat with the encoder output of the same
level. Convs carry a bias only where the norm is not batch norm (pix2pix), plus the outermost up-conv.
depth=8, base_width=64, norm='batch', 3->3: 54,413,955 params (pix2pix unet_256).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxgan.nets import layers


class UNet(nn.Module):
    """(B, H, W, in_channels) in [-1, 1] -> (B, H, W, out_channels) float32.

    out_activation 'tanh' gives images in [-1, 1]; 'none' gives logits (1 channel binary, C classes).
    Any H, W: the input is reflect-padded (edge-padded where reflection is impossible) at the bottom /
    right to multiples of 2**depth and the output cropped back. upsample: 'transpose' (pix2pix, 4x4
    stride-2 transposed conv) or 'resize' (nearest x2 + 3x3 conv). learn_residual (DeblurGAN's global
    skip): output = clip(x + tanh(net(x)), -1, 1). dtype: compute dtype.
    """
    in_channels: int = 3
    out_channels: int = 3
    depth: int = 8
    base_width: int = 64
    norm: str = "batch"
    dropout: bool = True
    out_activation: str = "tanh"
    upsample: str = "transpose"
    learn_residual: bool = False
    weight_init: str = "normal"
    dtype: Any = jnp.float32

    def __post_init__(self):
        layers.check_generator(self)
        if self.depth < 1:
            raise ValueError(f"depth must be >= 1, got {self.depth}")
        super().__post_init__()

    def width(self, level: int) -> int:
        return self.base_width * min(2 ** level, 8)

    @property
    def size_multiple(self) -> int:
        """The multiple of the input sides the network pads to (and crops back from) by itself."""
        return 2 ** self.depth

    @nn.compact
    def __call__(self, x, train: bool = False):
        layers.check_image(x, self.in_channels, "UNet")
        h = layers.pad_to_multiple(x, self.size_multiple).astype(self.dtype)
        use_bias = self.norm != "batch"
        common = dict(weight_init=self.weight_init, dtype=self.dtype)

        skips = []
        for level in range(self.depth):
            if level > 0:
                h = nn.leaky_relu(h, 0.2)
            h = layers.conv(self.width(level), 4, 2, 1, use_bias=use_bias, name=f"down_{level}", **common)(h)
            if 0 < level < self.depth - 1:
                h = layers.Norm(self.norm, name=f"down_norm_{level}", **common)(h, train)
            skips.append(h)

        for level in reversed(range(self.depth)):
            if level < self.depth - 1:
                h = jnp.concatenate([skips[level], h], axis=-1)
            h = nn.relu(h)
            outermost = level == 0
            features = self.out_channels if outermost else self.width(level - 1)
            h = layers.UpConv(features, self.upsample, use_bias=use_bias or outermost, name=f"up_{level}",
                              **common)(h)
            if not outermost:
                h = layers.Norm(self.norm, name=f"up_norm_{level}", **common)(h, train)
            if self.dropout and 4 <= level <= self.depth - 2:
                h = nn.Dropout(0.5, deterministic=not train, name=f"dropout_{level}")(h)

        return layers.image_output(h, x, self.out_activation, self.learn_residual)
