"""Discriminators; all return logits (no sigmoid), float32, NHWC.

- `PatchGAN`: pix2pix N-layer PatchGAN. num_layers 4x4 stride-2 convs (width base_width * min(2**n, 8)),
  one 4x4 stride-1 conv, a 4x4 stride-1 conv to 1 channel; padding 1, LeakyReLU(0.2), norm on all
  but the first and last conv, bias where the norm is not batch norm (and on the first and last conv).
  3 layers, width 64, batch norm, 6 input channels: 2,768,705 params, 70x70 receptive field,
  30x30 output on 256x256. `padding` 2 is DeblurGAN's and DeblurGAN-v2's critic (their
  NLayerDiscriminator: padw = ceil((kw - 1) / 2) = 2; pix2pix's is 1): 35x35 output on 256x256.
- `PixelGAN`: 1x1 PatchGAN (pix2pix 'pixel'): (B, H, W, 1).
- `MultiScaleDiscriminator`: pix2pixHD: num_scales PatchGANs (separate weights) on the input and on
  copies average-pooled (3x3, stride 2, padding 1, padding not counted) once, twice, ...; a list.
- `DoubleScaleDiscriminator`: DeblurGAN-v2 'double_gan': a PatchGAN with patch_layers (3) and a
  "full" PatchGAN with full_layers (5: receptive field covers a 256 crop) on the same image; a list
  [patch_logits, full_logits]. DeblurGAN-v2 averages the two losses; jaxgan.losses means over leaves.
- `FCDiscriminator`: Hung et al.'s fully convolutional D (AdvSemiSeg): five 4x4 stride-2 convs with
  bias (padding 1) of widths base_width x (1, 2, 4, 8), then 1, LeakyReLU(0.2) between, no norm;
  (B, H, W, C) class probabilities -> logits (B, H // 32, W // 32, 1).
Conditioning is the caller's job: pass concat([condition, image], -1) and in_channels = the sum.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxgan.nets import layers


def _check_common(module) -> None:
    layers.check_choice("norm", module.norm, layers.NORMS)
    layers.check_choice("weight_init", module.weight_init, layers.INITS)


class PatchGAN(nn.Module):
    """(B, H, W, in_channels) -> logits (B, h, w, 1); h = H / 2**num_layers - 2 for H divisible by it."""
    in_channels: int = 3
    base_width: int = 64
    num_layers: int = 3
    norm: str = "batch"
    weight_init: str = "normal"
    dtype: Any = jnp.float32
    padding: int = 1  # of every 4x4 conv (1 pix2pix, 2 DeblurGAN / DeblurGAN-v2)

    def __post_init__(self):
        _check_common(self)
        if self.num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {self.num_layers}")
        if self.padding < 1:
            raise ValueError(f"padding must be >= 1, got {self.padding}")
        super().__post_init__()

    @nn.compact
    def __call__(self, x, train: bool = False):
        layers.check_image(x, self.in_channels, "PatchGAN")
        min_side = 3 * 2 ** self.num_layers  # the output side is floor(side / 2**num_layers) - 2
        if min(x.shape[1:3]) < min_side:
            raise ValueError(f"PatchGAN with num_layers={self.num_layers} needs H, W >= {min_side}; "
                             f"got shape {tuple(x.shape)}")
        common = dict(weight_init=self.weight_init, dtype=self.dtype)
        use_bias = self.norm != "batch"
        p = self.padding
        h = nn.leaky_relu(layers.conv(self.base_width, 4, 2, p, **common)(x.astype(self.dtype)), 0.2)
        for n in range(1, self.num_layers + 1):
            stride = 2 if n < self.num_layers else 1
            h = layers.conv(self.base_width * min(2 ** n, 8), 4, stride, p, use_bias=use_bias, **common)(h)
            h = nn.leaky_relu(layers.Norm(self.norm, **common)(h, train), 0.2)
        return layers.conv(1, 4, 1, p, **common)(h).astype(jnp.float32)


class PixelGAN(nn.Module):
    """1x1-conv discriminator: (B, H, W, in_channels) -> logits (B, H, W, 1)."""
    in_channels: int = 3
    base_width: int = 64
    norm: str = "batch"
    weight_init: str = "normal"
    dtype: Any = jnp.float32

    def __post_init__(self):
        _check_common(self)
        super().__post_init__()

    @nn.compact
    def __call__(self, x, train: bool = False):
        layers.check_image(x, self.in_channels, "PixelGAN")
        common = dict(weight_init=self.weight_init, dtype=self.dtype)
        use_bias = self.norm != "batch"
        h = nn.leaky_relu(layers.conv(self.base_width, 1, **common)(x.astype(self.dtype)), 0.2)
        h = layers.conv(2 * self.base_width, 1, use_bias=use_bias, **common)(h)
        h = nn.leaky_relu(layers.Norm(self.norm, **common)(h, train), 0.2)
        return layers.conv(1, 1, use_bias=use_bias, **common)(h).astype(jnp.float32)


def downsample_avg(x):
    """pix2pixHD's 3x3 stride-2 average pool (padding 1, padded zeros not counted): H -> ceil(H / 2)."""
    return nn.avg_pool(x, (3, 3), (2, 2), padding=((1, 1), (1, 1)), count_include_pad=False)


class MultiScaleDiscriminator(nn.Module):
    """[D_0(x), D_1(pool(x)), ..., D_{num_scales-1}(pool^(num_scales-1)(x))], each (B, h_i, w_i, 1)."""
    in_channels: int = 3
    base_width: int = 64
    num_layers: int = 3
    num_scales: int = 2
    norm: str = "batch"
    weight_init: str = "normal"
    dtype: Any = jnp.float32

    def __post_init__(self):
        _check_common(self)
        if self.num_scales < 1:
            raise ValueError(f"num_scales must be >= 1, got {self.num_scales}")
        super().__post_init__()

    @nn.compact
    def __call__(self, x, train: bool = False):
        layers.check_image(x, self.in_channels, "MultiScaleDiscriminator")
        outputs = []
        for scale in range(self.num_scales):
            if scale > 0:
                x = downsample_avg(x)
            outputs.append(PatchGAN(self.in_channels, self.base_width, self.num_layers, self.norm,
                                    self.weight_init, self.dtype, name=f"scale_{scale}")(x, train))
        return outputs


class DoubleScaleDiscriminator(nn.Module):
    """DeblurGAN-v2: [PatchGAN(patch_layers)(x), PatchGAN(full_layers)(x)]; default instance norm."""
    in_channels: int = 3
    base_width: int = 64
    patch_layers: int = 3
    full_layers: int = 5
    norm: str = "instance"
    weight_init: str = "normal"
    dtype: Any = jnp.float32
    padding: int = 1  # of both PatchGANs' convs (2 in DeblurGAN-v2)

    def __post_init__(self):
        _check_common(self)
        super().__post_init__()

    @nn.compact
    def __call__(self, x, train: bool = False):
        layers.check_image(x, self.in_channels, "DoubleScaleDiscriminator")
        common = dict(in_channels=self.in_channels, base_width=self.base_width, norm=self.norm,
                      weight_init=self.weight_init, dtype=self.dtype, padding=self.padding)
        return [PatchGAN(num_layers=self.patch_layers, name="patch", **common)(x, train),
                PatchGAN(num_layers=self.full_layers, name="full", **common)(x, train)]


class FCDiscriminator(nn.Module):
    """Hung et al.'s D (hfslyc/AdvSemiSeg model/discriminator.py:5-34): conv1..conv4 (4x4, stride 2,
    padding 1, bias; widths base_width x 1, 2, 4, 8) each followed by LeakyReLU(0.2), then the
    classifier conv to 1 channel (4x4, stride 2, padding 1); no norm. Module names follow the
    original's attributes. weight_init 'torch': PyTorch's default conv init, as the original (train.py
    builds FCDiscriminator and never re-initialises it; no init in model/discriminator.py).
    (B, H, W, in_channels) -> logits (B, H // 32, W // 32, 1) (each conv halves a side, rounding down)."""
    in_channels: int = 2
    base_width: int = 64
    weight_init: str = "torch"
    dtype: Any = jnp.float32

    def __post_init__(self):
        layers.check_choice("weight_init", self.weight_init, layers.INITS)
        super().__post_init__()

    @nn.compact
    def __call__(self, x, train: bool = False):
        del train  # no norm, no dropout
        layers.check_image(x, self.in_channels, "FCDiscriminator")
        if min(x.shape[1:3]) < 32:  # five stride-2 convs: a side below 32 leaves nothing
            raise ValueError(f"FCDiscriminator needs H, W >= 32; got shape {tuple(x.shape)}")
        common = dict(weight_init=self.weight_init, dtype=self.dtype)
        h = x.astype(self.dtype)
        for n, mult in enumerate((1, 2, 4, 8), start=1):
            h = nn.leaky_relu(layers.conv(self.base_width * mult, 4, 2, 1, name=f"conv{n}", **common)(h), 0.2)
        return layers.conv(1, 4, 2, 1, name="classifier", **common)(h).astype(jnp.float32)
