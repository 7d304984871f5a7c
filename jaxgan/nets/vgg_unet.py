"""U-Net whose encoder is ImageNet VGG16 (TernausNet's design: Iglovikov & Shvets, arXiv 1801.05746).

Encoder: VGG16's convolutions up to conv4_3 (jaxgan.nets.vgg.VGG16Features, params under 'encoder/',
loaded by `variants.transfer_from='vgg16'` with `transfer_rename=('encoder/=',)`); the input in [-1, 1]
is ImageNet-normalised first. Skips are the rectified conv1_2, conv2_2, conv3_3, conv4_3 activations
(strides 1, 2, 4, 8). With `train_encoder=False` the encoder's outputs pass through stop_gradient: its
weights stay as loaded and XLA drops the encoder's backward pass (the step costs a forward pass of it).
Then `extra_levels` trainable 3x3 stride-2 conv levels (so the innermost level sees the whole scene),
and a decoder of nearest x2 + 3x3 conv, concat with the skip, 3x3 conv, each conv followed by the norm
and ReLU; a 1x1 conv gives the output (logits, or tanh images).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgan.nets import layers
from jaxgan.nets.vgg import VGG16Features, imagenet_normalize

SKIP_LAYERS = ("conv1_2", "conv2_2", "conv3_3", "conv4_3")  # VGG16 block ends: strides 1, 2, 4, 8


class VGGUNet(nn.Module):
    """(B, H, W, 3) in [-1, 1] -> (B, H, W, out_channels) float32; any H, W (reflect-padded at the
    bottom / right to a multiple of 2**(3 + extra_levels), cropped back)."""
    in_channels: int = 3
    out_channels: int = 1
    extra_levels: int = 3
    base_width: int = 32  # decoder width at full resolution, doubled per level up to 8x
    train_encoder: bool = False
    norm: str = "batch"
    out_activation: str = "none"
    learn_residual: bool = False
    weight_init: str = "normal"
    dtype: Any = jnp.float32

    def __post_init__(self):
        layers.check_generator(self, upsample=False)
        if self.in_channels != 3:
            raise ValueError(f"VGGUNet: the VGG16 encoder takes RGB images, in_channels must be 3, got "
                             f"{self.in_channels}")
        if self.extra_levels < 0:
            raise ValueError(f"extra_levels must be >= 0, got {self.extra_levels}")
        super().__post_init__()

    @property
    def size_multiple(self) -> int:
        return 2 ** (3 + self.extra_levels)

    def width(self, level: int) -> int:
        return self.base_width * min(2 ** level, 8)

    @nn.compact
    def __call__(self, x, train: bool = False):
        layers.check_image(x, self.in_channels, "VGGUNet")
        padded = layers.pad_to_multiple(x, self.size_multiple)
        features = VGG16Features(layers=SKIP_LAYERS, after_relu=True, dtype=self.dtype,
                                 name="encoder")(imagenet_normalize(padded))
        skips = [features[name] for name in SKIP_LAYERS]
        if not self.train_encoder:
            skips = [jax.lax.stop_gradient(s) for s in skips]
        common = dict(weight_init=self.weight_init, dtype=self.dtype)
        use_bias = self.norm != "batch"

        def conv_norm_relu(h, features, stride, name):
            h = layers.conv(features, 3, stride, 1, use_bias=use_bias, name=name, **common)(h)
            return nn.relu(layers.Norm(self.norm, name=f"{name}_norm", **common)(h, train))

        h = skips[-1]
        for level in range(4, 4 + self.extra_levels):  # trainable levels below the encoder
            h = conv_norm_relu(h, self.width(level), 2, f"down_{level}")
            skips.append(h)
        h = skips.pop()
        for level in reversed(range(len(skips))):
            h = conv_norm_relu(layers.upsample_nearest(h), self.width(level), 1, f"up_{level}")
            h = conv_norm_relu(jnp.concatenate([skips[level].astype(h.dtype), h], -1), self.width(level), 1,
                               f"fuse_{level}")
        h = layers.conv(self.out_channels, 1, 1, 0, name="out", **common)(h)
        return layers.image_output(h, x, self.out_activation, self.learn_residual)
