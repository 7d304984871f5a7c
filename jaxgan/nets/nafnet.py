"""A small NAFNet-style U-Net for fast image restoration on a CPU (Chen et al. 2022, "Simple
Baselines for Image Restoration": simple gates, simplified channel attention, no activations).

Layout, for images (B, H, W, C):
  space-to-depth by `space_to_depth` (f): (B, H/f, W/f, f*f*C), so every conv runs at reduced
  resolution with >= base_width channels (XLA's CPU convs are efficient there);
  3x3 conv -> base_width; encoder levels i = 0..depth-1 of width w_i = base_width * 2**i, each
  `blocks` NAF blocks then a 2x2 stride-2 conv to w_{i+1}; `middle_blocks` NAF blocks at the bottom;
  decoder levels: 1x1 conv to 4 * w_i + depth-to-space(2), add the encoder output of that level,
  `blocks` NAF blocks; 3x3 conv to f*f*C, depth-to-space(f).
  Output = clip(x[..., residual_from:residual_from + out_channels] + that, -1, 1) (a global
  residual: the last conv starts at zero, so the untrained
  net is the identity).

NAF block (channels c): x + beta * [3x3 conv 2c (a full conv instead of NAFNet's 1x1 + depthwise),
simple gate (a * b, c channels), simplified channel attention (h * 1x1conv(spatial mean of h)),
1x1 conv c] (after LayerNorm), then the same with a feed-forward branch [1x1 conv 2c, gate,
1x1 conv c] and gamma. beta and gamma are per-channel and start at zero (every block starts as the
identity). The channel attention pools over the whole image: for a uniform blur it broadcasts
image-level (kernel) information to every pixel.

Optional Wiener candidates (wiener_angles > 0): the luminance of the input deconvolved (FFT Wiener
filter, fixed noise-to-signal ratio) by a bank of straight motion-blur kernels (wiener_angles
orientations x wiener_lengths px) is concatenated to the input, so the net can compare and combine
candidate sharp images instead of synthesising large deconvolution filters. Off by default.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxgan.nets import layers

NAF_NORMS = ("layer", "none")


def space_to_depth(x, factor: int):
    """(B, H, W, C) -> (B, H/f, W/f, f*f*C); channel index (dy * f + dx) * C + c."""
    b, h, w, c = x.shape
    x = x.reshape(b, h // factor, factor, w // factor, factor, c)
    return x.transpose(0, 1, 3, 2, 4, 5).reshape(b, h // factor, w // factor, factor * factor * c)


def depth_to_space(x, factor: int):
    """Inverse of `space_to_depth`: (B, H, W, f*f*C) -> (B, H*f, W*f, C)."""
    b, h, w, c = x.shape
    c_out = c // (factor * factor)
    x = x.reshape(b, h, w, factor, factor, c_out)
    return x.transpose(0, 1, 3, 2, 4, 5).reshape(b, h * factor, w * factor, c_out)


def line_kernels(angles: int, lengths: Sequence[int], size: int) -> np.ndarray:
    """Straight motion-blur kernels: (angles * len(lengths), size, size) float32, each sums to 1.

    Kernel a * len(lengths) + j is a centred segment of length lengths[j] px at angle pi * a / angles,
    drawn by bilinear splatting of 4 * length + 1 points (length 1 gives a delta)."""
    kernels = []
    centre = (size - 1) / 2
    for a in range(angles):
        theta = math.pi * a / angles
        for length in lengths:
            if not 1 <= length <= size:
                raise ValueError(f"wiener_lengths must be in [1, {size}], got {length}")
            k = np.zeros((size, size), np.float64)
            for t in np.linspace(-(length - 1) / 2, (length - 1) / 2, 4 * length + 1):
                y, x = centre + t * math.sin(theta), centre + t * math.cos(theta)
                y0, x0 = int(math.floor(y)), int(math.floor(x))
                fy, fx = y - y0, x - x0
                for dy, dx, w in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)),
                                  (1, 1, fy * fx)):
                    if 0 <= y0 + dy < size and 0 <= x0 + dx < size:
                        k[y0 + dy, x0 + dx] += w
            kernels.append(k / k.sum())
    return np.asarray(kernels, np.float32)


def wiener_deconvolve(y, kernels, noise_to_signal):
    """Wiener deconvolution of every image by every kernel, via the FFT of a reflect-padded image.

    y: (B, H, W, C); kernels: (N, k, k) summing to 1; noise_to_signal: (N,) > 0.
    Returns (B, H, W, N * C), channel n * C + c = image channel c deconvolved by kernel n:
    X = conj(K) Y / (|K|^2 + noise_to_signal)."""
    b, h, w, c = y.shape
    n, k = kernels.shape[:2]
    pad = -(-k // 16) * 16  # >= k, so sizes 64 and 128 pad to FFT-friendly 128 and 192
    padded = jnp.pad(y, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="symmetric")
    ph, pw = h + 2 * pad, w + 2 * pad
    spectrum = jnp.fft.rfft2(padded.astype(jnp.float32), axes=(1, 2))  # (B, ph, pw//2+1, C)
    psf = jnp.zeros((n, ph, pw), jnp.float32).at[:, :k, :k].set(kernels)
    psf = jnp.roll(psf, (-(k // 2), -(k // 2)), axis=(1, 2))  # kernel centre at the origin
    otf = jnp.fft.rfft2(psf, axes=(1, 2))  # (N, ph, pw//2+1)
    filt = jnp.conj(otf) / (jnp.abs(otf) ** 2 + noise_to_signal[:, None, None])
    out = jnp.fft.irfft2(spectrum[:, None] * filt[None, :, :, :, None], s=(ph, pw), axes=(2, 3))
    out = out[:, :, pad:pad + h, pad:pad + w]  # (B, N, H, W, C)
    return out.transpose(0, 2, 3, 1, 4).reshape(b, h, w, n * c)


class NAFBlock(nn.Module):
    """(B, H, W, c) -> (B, H, W, c); the identity at initialisation (beta = gamma = 0)."""
    norm: str = "layer"
    weight_init: str = "default"
    dtype: Any = jnp.float32

    def _norm(self, x, name):
        if self.norm == "none":
            return x
        return nn.LayerNorm(epsilon=1e-6, dtype=self.dtype, param_dtype=jnp.float32, name=name)(x)

    @nn.compact
    def __call__(self, x):
        c = x.shape[-1]
        common = dict(weight_init=self.weight_init, dtype=self.dtype)
        h = layers.conv(2 * c, 3, 1, 1, name="spatial", **common)(self._norm(x, "norm_1"))
        a, b = jnp.split(h, 2, axis=-1)
        h = a * b
        attention = layers.conv(c, 1, name="channel_attention", **common)(jnp.mean(h, (1, 2), keepdims=True))
        h = layers.conv(c, 1, name="project", **common)(h * attention)
        beta = self.param("beta", nn.initializers.zeros, (c,), jnp.float32)
        x = x + h * beta.astype(self.dtype)

        h = layers.conv(2 * c, 1, name="ffn_expand", **common)(self._norm(x, "norm_2"))
        a, b = jnp.split(h, 2, axis=-1)
        h = layers.conv(c, 1, name="ffn_project", **common)(a * b)
        gamma = self.param("gamma", nn.initializers.zeros, (c,), jnp.float32)
        return x + h * gamma.astype(self.dtype)


class NAFNet(nn.Module):
    """(B, H, W, in_channels) in [-1, 1] -> (B, H, W, out_channels) in [-1, 1], float32.

    Any H, W: reflect-padded (edge where impossible) at the bottom / right to multiples of
    space_to_depth * 2**depth, output cropped back. The global residual adds the net to the input
    channels residual_from .. residual_from + out_channels (0 .. 3 for an RGB input; 3 .. 6 to refine
    the prior image of an input with a prior, jaxgan.data.prior); out_activation is accepted for the
    zoo's common interface and must be 'tanh' (the output is an image in [-1, 1]). norm: 'layer'
    (LayerNorm over channels) or 'none'.
    wiener_*: the optional bank of Wiener-deconvolved candidates (module docstring); wiener_size is
    the kernels' side (odd, >= every length), wiener_nsr the filter's noise-to-signal ratio.
    """
    in_channels: int = 3
    out_channels: int = 3
    base_width: int = 32
    depth: int = 3
    blocks: int = 1
    middle_blocks: int = 2
    space_to_depth: int = 2
    norm: str = "layer"
    out_activation: str = "tanh"
    weight_init: str = "default"
    wiener_angles: int = 0
    wiener_lengths: Sequence[int] = (7, 13, 21)
    wiener_size: int = 25
    wiener_nsr: float = 1e-2
    residual_from: int = 0
    dtype: Any = jnp.float32

    def __post_init__(self):
        if (self.residual_from < 0 or self.residual_from + self.out_channels > self.in_channels
                or self.out_activation != "tanh"):
            raise ValueError("NAFNet predicts a residual image: needs input channels residual_from .. "
                             "residual_from + out_channels and out_activation='tanh'; got "
                             f"{self.in_channels} -> {self.out_channels} channels, residual_from="
                             f"{self.residual_from}, {self.out_activation!r}")
        layers.check_choice("norm", self.norm, NAF_NORMS)
        layers.check_choice("weight_init", self.weight_init, layers.INITS)
        for name in ("base_width", "space_to_depth"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.depth < 0 or self.blocks < 0 or self.middle_blocks < 0:
            raise ValueError(f"depth, blocks and middle_blocks must be >= 0; got {self.depth}, "
                             f"{self.blocks}, {self.middle_blocks}")
        super().__post_init__()

    @property
    def size_multiple(self) -> int:
        """The multiple of the input sides the network pads to (and crops back from) by itself."""
        return self.space_to_depth * 2 ** self.depth

    @property
    def exact_pad_multiple(self) -> int:
        """The multiple an image can be padded to beforehand (as the network pads) without changing
        its output: size_multiple, or 1 with Wiener candidates (an FFT of the unpadded image comes first)."""
        return 1 if self.wiener_angles > 0 else self.size_multiple

    @nn.compact
    def __call__(self, x, train: bool = False):
        layers.check_image(x, self.in_channels, "NAFNet")
        height, width = x.shape[1:3]
        f = self.space_to_depth
        common = dict(weight_init=self.weight_init, dtype=self.dtype)
        block = dict(norm=self.norm, **common)
        h = x.astype(jnp.float32)
        if self.wiener_angles > 0:
            h = jnp.concatenate([h, self._wiener_candidates(h)], axis=-1)
        h = space_to_depth(layers.pad_to_multiple(h, self.size_multiple).astype(self.dtype), f)
        h = layers.conv(self.base_width, 3, 1, 1, name="intro", **common)(h)

        skips = []
        for level in range(self.depth):
            for i in range(self.blocks):
                h = NAFBlock(**block, name=f"enc_{level}_{i}")(h)
            skips.append(h)
            h = layers.conv(2 * h.shape[-1], 2, 2, name=f"down_{level}", **common)(h)
        for i in range(self.middle_blocks):
            h = NAFBlock(**block, name=f"middle_{i}")(h)
        for level in reversed(range(self.depth)):
            h = layers.conv(2 * h.shape[-1], 1, use_bias=False, name=f"up_{level}", **common)(h)
            h = depth_to_space(h, 2) + skips[level]
            for i in range(self.blocks):
                h = NAFBlock(**block, name=f"dec_{level}_{i}")(h)

        h = nn.Conv(f * f * self.out_channels, (3, 3), padding=((1, 1), (1, 1)), kernel_init=nn.initializers.zeros,
                    dtype=self.dtype, param_dtype=jnp.float32, name="outro")(h)
        h = depth_to_space(h, f)[:, :height, :width].astype(jnp.float32)
        base = x[..., self.residual_from:self.residual_from + self.out_channels].astype(jnp.float32)
        return jnp.clip(base + h, -1.0, 1.0)

    def _wiener_candidates(self, x):
        """(B, H, W, C) -> (B, H, W, N): the luminance (channel mean) of x deconvolved by N fixed
        straight-line kernels (wiener_angles x wiener_lengths) with noise-to-signal ratio wiener_nsr,
        clipped to [-2, 2]. Constant (no parameters, no gradient): candidate sharp images that the
        net compares and combines, so it does not have to synthesise large deconvolution filters."""
        kernels = line_kernels(self.wiener_angles, tuple(self.wiener_lengths), self.wiener_size)
        nsr = jnp.full((len(kernels),), self.wiener_nsr, jnp.float32)
        luminance = jnp.mean(jax.lax.stop_gradient(x), axis=-1, keepdims=True)
        return jnp.clip(wiener_deconvolve(luminance, jnp.asarray(kernels), nsr), -2.0, 2.0)
