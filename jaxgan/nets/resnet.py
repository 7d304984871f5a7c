"""pix2pix / DeblurGAN ResNet generator (Johnson et al.'s architecture).

reflect-pad 3 + 7x7 conv (base_width) -> norm -> ReLU; two 3x3 stride-2 convs (x2 width each);
`num_blocks` residual blocks x + [reflect-pad 1, 3x3 conv, norm, ReLU, (dropout 0.5), reflect-pad 1,
3x3 conv, norm]; two x2 up-convs (PyTorch ConvTranspose2d(k3, s2, p1, output_padding 1) or nearest
resize + 3x3 conv) with norm + ReLU; reflect-pad 3 + 7x7 conv; tanh. Convs carry a bias unless the
norm is batch norm (the last conv always does). `learn_residual` (DeblurGAN): clip(x + G(x), -1, 1).
9 blocks, base_width 64, instance norm (no affine), 3->3: 11,378,179 params.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxgan.nets import layers


class ResidualBlock(nn.Module):
    """x + F(x), F = two reflect-padded 3x3 convs with norms; (B, H, W, C) -> (B, H, W, C)."""
    norm: str = "instance"
    dropout: bool = False
    use_bias: bool = True
    weight_init: str = "normal"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        channels = x.shape[-1]
        common = dict(weight_init=self.weight_init, dtype=self.dtype)
        h = layers.conv(channels, 3, use_bias=self.use_bias, **common)(layers.reflect_pad(x, 1))
        h = nn.relu(layers.Norm(self.norm, **common)(h, train))
        if self.dropout:
            h = nn.Dropout(0.5, deterministic=not train)(h)
        h = layers.conv(channels, 3, use_bias=self.use_bias, **common)(layers.reflect_pad(h, 1))
        h = layers.Norm(self.norm, **common)(h, train)
        return x + h


class ResNetGenerator(nn.Module):
    """(B, H, W, in_channels) in [-1, 1] -> (B, H, W, out_channels) float32.

    Any H, W: reflect-padded (edge where impossible) to multiples of 4, output cropped back.
    out_activation 'tanh' (images) or 'none' (logits). learn_residual needs tanh and
    out_channels == in_channels; the residual sum is done in float32.
    """
    in_channels: int = 3
    out_channels: int = 3
    base_width: int = 64
    num_blocks: int = 9
    norm: str = "instance"
    dropout: bool = False
    out_activation: str = "tanh"
    learn_residual: bool = False
    upsample: str = "transpose"
    weight_init: str = "normal"
    dtype: Any = jnp.float32

    def __post_init__(self):
        layers.check_generator(self)
        super().__post_init__()

    @property
    def size_multiple(self) -> int:
        """The multiple of the input sides the network pads to (and crops back from) by itself."""
        return 4

    @nn.compact
    def __call__(self, x, train: bool = False):
        layers.check_image(x, self.in_channels, "ResNetGenerator")
        padded = layers.pad_to_multiple(x, self.size_multiple)
        use_bias = self.norm != "batch"
        common = dict(weight_init=self.weight_init, dtype=self.dtype)

        h = layers.conv(self.base_width, 7, use_bias=use_bias, name="stem", **common)(
            layers.reflect_pad(padded.astype(self.dtype), 3))
        h = nn.relu(layers.Norm(self.norm, **common)(h, train))
        for i in range(2):
            h = layers.conv(self.base_width * 2 ** (i + 1), 3, 2, 1, use_bias=use_bias, name=f"down_{i}",
                            **common)(h)
            h = nn.relu(layers.Norm(self.norm, **common)(h, train))
        for i in range(self.num_blocks):
            h = ResidualBlock(self.norm, self.dropout, use_bias, name=f"block_{i}", **common)(h, train)
        for i in range(2):
            h = layers.UpConv(self.base_width * 2 ** (1 - i), self.upsample, kernel_size=3, padding=1,
                              output_padding=1, use_bias=use_bias, name=f"up_{i}", **common)(h)
            h = nn.relu(layers.Norm(self.norm, **common)(h, train))
        h = layers.conv(self.out_channels, 7, name="head", **common)(layers.reflect_pad(h, 3))
        return layers.image_output(h, x, self.out_activation, self.learn_residual)
