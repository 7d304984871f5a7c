"""Building blocks shared by every network of the zoo (NHWC, float32 params, `dtype` compute).

Contents
--------
- `conv` / `Conv`: PyTorch-style conv (symmetric zero padding, the zoo's init; nn.Conv's parameters);
  `conv_fast` (custom VJP for fast second derivatives) and `conv_patches` (small-spatial GEMM) under it.
- `conv_transpose` / `ConvTranspose`: PyTorch-semantics transposed convolution with a fast backward.
- `Norm`: 'batch' | 'instance' | 'none', configured like pix2pix (momentum 0.1 in PyTorch terms,
  eps 1e-5, instance norm without affine parameters).
- `upsample_nearest` / `UpConv`: decoder upsampling by transposed conv or nearest resize + 3x3 conv.
- `pad_to_multiple`, `reflect_pad`, `check_image`, `check_choice`, `count_params`.

Why a custom transposed convolution (issue 8)
---------------------------------------------
XLA's CPU lowering of the *kernel* gradient of a stride-2 transposed conv (an lhs-dilated conv) is
pathologically slow. A transposed conv T is the adjoint of an ordinary strided conv C_K (same kernel,
flipped spatially, channel axes swapped), so for an output cotangent g:
  d<g, T_K(x)>/dx = C_K(g)                 (the input gradient is the strided conv),
  d<g, T_K(x)>/dK = d<C_K(g), x>/dK         (the kernel VJP of that strided conv, cotangent x),
and XLA computes the kernel gradient of a strided conv fast. `conv_transpose` is a `jax.custom_vjp`
using exactly these two rules; its forward is `lax.conv_transpose`. Measured with
`JAX_PLATFORMS=cpu python benchmarks/conv_transpose_speed.py` (XLA CPU, 2 cores shared with other
jobs, jax 0.10.2, best of 5): kernel gradient of a 512->256 channel 4x4 stride-2 up-conv at 32x32,
batch 1: lax.conv_transpose autodiff 5863-6761 ms, custom VJP 70-114 ms, ratio 59-84x (two runs);
values agree to 2.6e-4 on entries up to 194 (float32 summation order).

Small-spatial convolutions as GEMMs (issue 8)
---------------------------------------------
In the inner levels of a U-Net at batch 1 the activations are tiny (1x1 .. 16x16) and the kernels
huge (4x4x1024x512 = 32 MB). XLA CPU then spends its time not in the convolutions but in copying
the kernels: a layout transpose or spatial reversal of the whole kernel per use, forward and
backward (a profile of the pix2pix U-Net's forward+backward: ~500 ms of such copies out of ~600).
When the patch matrix is no larger than the kernel (`use_matmul`), `Conv` and `conv_transpose` run
as GEMMs against the kernel as stored (`conv_patches`, `conv_transpose_matmul`), whose gradients are
GEMMs too. Same values and gradients (tests/test_conv_transpose.py, tests/test_nets.py); measured
with `python -m benchmarks.profile_parts --setups pix2pix --torch` (benchmarks/README.md).

Kernel gradients one GEMM per tap (issue 8)
-------------------------------------------
XLA CPU computes a conv's kernel gradient as one convolution whose window is the whole output
(e.g. 31x31 over a 34x34 input for the PatchGAN's 4x4 256->512 stride-1 layer), at about half the
speed of a GEMM, and far worse when a side has 1 channel (the PatchGAN's 512->1 output conv: 31 ms
for 8k weights). `kernel_grad_taps` computes it as k*k GEMMs instead: for tap (a, b) the input's
strided slice at that offset, contracted with the output gradient over batch and pixels. Measured
here (2 cores, float32, ms, XLA's kernel gradient -> per tap): PatchGAN 4x4 256->512 at 32x32
84 -> 42, 512->1 at 31x31 38 -> 6, U-Net up-conv 1024->256 at 16x16 76 -> 31, 512->128 at 32x32
53 -> 19, ResNet 3x3 stride-2 128->256 at 128x128 62 -> 36. The slices cost k*k reads of the input,
so a conv with few output channels over a large input keeps XLA's form (`use_tap_kernel_grad`;
the ResNet's 7x7 64->3 output conv: 50 ms in XLA's form, 794 per tap). Both `conv_fast` and
`conv_transpose` (whose kernel gradient is the strided adjoint conv's) use it, through
`gemm_kernel_grad`, which picks the form. A stride-1 conv with very few output channels over many
input channels (the PatchGAN's 512->1 output conv) uses `kernel_grad_rows` instead: one GEMM per
kernel row against column-shifted copies of the (narrow) output gradient (`use_row_kernel_grad`; 2-4 ms instead of 4-40 ms per tap).

Strided transposed convs by output phases (issue 8)
---------------------------------------------------
XLA CPU lowers a stride-2 transposed conv (forward, and so every strided conv's input gradient) as
an lhs-dilated convolution that multiplies the inserted zeros too (4x the FLOPs) on its generic
path. `conv_transpose_phases` computes it as one stride-1 conv per output phase with the strided
sub-kernel, interleaved (same values): the ResNet's 128->64 up-conv forward at 256x256 59 -> 24 ms,
the PatchGAN's 64->128 stride-2 layer backward at batch 2 93 -> 67 ms; DeblurGAN's step 8.67 ->
7.95 s with the VGG pool change below (side by side, 2026-12-01).
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax


Dtype = Any
NORMS = ("batch", "instance", "none")
INITS = ("normal", "default")
UPSAMPLES = ("transpose", "resize")
OUT_ACTIVATIONS = ("tanh", "none")
_NHWC = ("NHWC", "HWIO", "NHWC")


# ----------------------------------------------------------------------------- validation
def check_choice(what: str, value: Any, choices: Sequence[Any]) -> None:
    """Raise ValueError unless `value` is one of `choices`."""
    if value not in choices:
        raise ValueError(f"{what} must be one of {list(choices)}, got {value!r}")


def check_image(x: jax.Array, channels: int, who: str) -> None:
    """Raise ValueError unless `x` is an NHWC batch with `channels` channels."""
    if x.ndim != 4 or x.shape[-1] != channels:
        raise ValueError(
            f"{who} expects an NHWC batch of shape (B, H, W, {channels}); got shape {tuple(x.shape)}")


# ----------------------------------------------------------------------------- initializers
def kernel_init(init: str) -> Callable:
    """'normal': N(0, 0.02) as pix2pix / DeblurGAN; 'default': flax's lecun_normal."""
    check_choice("weight_init", init, INITS)
    return nn.initializers.normal(0.02) if init == "normal" else nn.initializers.lecun_normal()


def scale_init(init: str) -> Callable:
    """Norm-layer scale: N(1, 0.02) as pix2pix ('normal') or ones ('default')."""
    check_choice("weight_init", init, INITS)
    if init == "default":
        return nn.initializers.ones

    def normal_around_one(key, shape, dtype=jnp.float32):
        return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)

    return normal_around_one


# ----------------------------------------------------------------------------- convolutions
def conv_output_size(size: int, kernel_size: int, stride: int, padding: int) -> int:
    """Output side of a conv with symmetric zero padding."""
    return (size + 2 * padding - kernel_size) // stride + 1


def adjoint_kernel(kernel: jax.Array) -> jax.Array:
    """(kh, kw, A, B) -> (kh, kw, B, A) flipped spatially: the kernel of the adjoint conv (a strided
    conv and the transposed conv with this kernel are each other's adjoints)."""
    return jnp.flip(kernel, (0, 1)).swapaxes(2, 3)


def use_matmul(rows: int, kernel_rows: int) -> bool:
    """Whether a conv with `rows` output pixels (batch x height x width; input pixels for a transposed
    conv) should run as one GEMM against the kernel instead of as an XLA convolution: when the patch
    matrix is no larger than the kernel (rows <= the kernel's channel count on that side). See the
    module docstring, "Small-spatial convolutions as GEMMs". A symbolic size (jax.export) keeps the conv."""
    return isinstance(rows, int) and rows <= kernel_rows


def use_tap_kernel_grad(kernel_size: int, rows: int, cin: int, cout: int) -> bool:
    """Whether a conv's kernel gradient should run as k*k GEMMs (`kernel_grad_taps`): unless it has
    few output channels (< 32) and the taps' input slices (k*k*rows*cin values; rows = batch x
    output pixels) exceed 2**24. See the module docstring."""
    return cout >= 32 or kernel_size * kernel_size * rows * cin <= 2 ** 24


def kernel_grad_taps(x: jax.Array, g: jax.Array, kernel_size: int, stride: int,
                     pads: Sequence[tuple[int, int]]) -> jax.Array:
    """The kernel gradient (k, k, Cin, Cout) of the conv of x (B, H, W, Cin) with a k x k window,
    square `stride` and zero padding `pads` ((low, high) per spatial axis) whose output gradient
    is g (B, Ho, Wo, Cout): for each tap (a, b), x's padded strided slice at offset (a, b)
    contracted with g over batch and pixels (with Cin >= Cout as g^T @ slice, so that the smaller
    operand is the transposed one). Equal to the VJP of `lax.conv_general_dilated` with respect to
    its kernel (float32 summation order)."""
    b, _, _, cin = x.shape
    _, ho, wo, cout = g.shape
    xp = jnp.pad(x, ((0, 0), tuple(pads[0]), tuple(pads[1]), (0, 0)))
    taps = [lax.slice(xp, (0, i, j, 0), (b, i + stride * (ho - 1) + 1, j + stride * (wo - 1) + 1, cin),
                      (1, stride, stride, 1)).reshape(b * ho * wo, cin)
            for i in range(kernel_size) for j in range(kernel_size)]
    if cin >= cout:  # transpose g once, not every (larger) slice: (Cout, P) @ (P, Cin) per tap
        g_t = g.reshape(b * ho * wo, cout).T
        return jnp.stack([g_t @ tap for tap in taps]).reshape(kernel_size, kernel_size, cout, cin).swapaxes(2, 3)
    g = g.reshape(b * ho * wo, cout)
    return jnp.stack([tap.T @ g for tap in taps]).reshape(kernel_size, kernel_size, cin, cout)


def use_row_kernel_grad(kernel_size: int, stride: int, cin: int, cout: int) -> bool:
    """Whether a conv's kernel gradient should run as k GEMMs, one per kernel row
    (`kernel_grad_rows`): stride 1, very few output channels (k * Cout <= 16) over many input
    channels (>= 64), e.g. the PatchGAN's 4x4 512->1 output conv (2 ms instead of 4-40 per tap)."""
    return stride == 1 and kernel_size * cout <= 16 and cin >= 64


def kernel_grad_rows(x: jax.Array, g: jax.Array, kernel_size: int, pads: Sequence[tuple[int, int]]) -> jax.Array:
    """The kernel gradient (k, k, Cin, Cout) of a stride-1 conv of x (B, H, W, Cin), zero padding
    `pads`, output gradient g (B, Ho, Wo, Cout), as one GEMM per kernel row i: the padded input's
    rows i .. i + Ho - 1 (all Wp = Wo + k - 1 columns: a contiguous block) against the k copies of g
    shifted by j = 0 .. k - 1 columns into that width (zeros elsewhere), side by side in channels.
    Copies Cout-wide data k times instead of Cin-wide data k * k times (`kernel_grad_taps`).
    Equal to the VJP of `lax.conv_general_dilated` with respect to its kernel (float32 summation order)."""
    b, _, _, cin = x.shape
    _, ho, wo, cout = g.shape
    k = kernel_size
    xp = jnp.pad(x, ((0, 0), tuple(pads[0]), tuple(pads[1]), (0, 0)))
    wp = xp.shape[2]  # wo + k - 1
    shifted = jnp.concatenate([jnp.pad(g, ((0, 0), (0, 0), (j, wp - wo - j), (0, 0))) for j in range(k)], axis=-1)
    shifted_t = shifted.reshape(b * ho * wp, k * cout).T
    per_row = [shifted_t @ lax.slice_in_dim(xp, i, i + ho, axis=1).reshape(b * ho * wp, cin) for i in range(k)]
    return jnp.stack(per_row).reshape(k, k, cout, cin).swapaxes(2, 3)


def gemm_kernel_grad(x: jax.Array, g: jax.Array, kernel_size: int, stride: int,
                     pads: Sequence[tuple[int, int]]) -> jax.Array | None:
    """The kernel gradient of the conv of x (padding `pads`) with output gradient g in the GEMM form
    the rules pick (`kernel_grad_rows`, else `kernel_grad_taps`), or None where XLA's own form is
    the faster one. Used by both `conv_fast` and `conv_transpose` (its strided adjoint conv's)."""
    cin, cout = x.shape[-1], g.shape[-1]
    if use_row_kernel_grad(kernel_size, stride, cin, cout):
        return kernel_grad_rows(x, g, kernel_size, pads)
    if use_tap_kernel_grad(kernel_size, g.shape[0] * g.shape[1] * g.shape[2], cin, cout):
        return kernel_grad_taps(x, g, kernel_size, stride, pads)
    return None


def conv_patches(x: jax.Array, kernel: jax.Array, stride: int, padding: int) -> jax.Array:
    """A strided conv (NHWC, kernel HWIO, symmetric zero padding) as one GEMM over explicit patches.

    The patches are ordered (kh, kw, Cin), so the kernel is used as `kernel.reshape(kh*kw*Cin, Cout)`
    (free, no transpose); autodiff of the slices / concatenation / dot gives the gradients.
    Same values as `lax.conv_general_dilated` within float32 summation-order tolerance."""
    kh, kw, cin, cout = kernel.shape
    b, h, w, _ = x.shape
    xp = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    ho, wo = conv_output_size(h, kh, stride, padding), conv_output_size(w, kw, stride, padding)
    cols = [lax.slice(xp, (0, i, j, 0), (b, i + stride * (ho - 1) + 1, j + stride * (wo - 1) + 1, cin),
                      (1, stride, stride, 1))
            for i in range(kh) for j in range(kw)]
    patches = jnp.concatenate(cols, axis=-1).reshape(b * ho * wo, kh * kw * cin)
    return (patches @ kernel.reshape(kh * kw * cin, cout)).reshape(b, ho, wo, cout)


def _conv_reference(x, kernel, stride, padding):
    return lax.conv_general_dilated(x, kernel, (stride, stride), ((padding, padding), (padding, padding)),
                                    dimension_numbers=_NHWC)


def _conv_forward(x, kernel, stride, padding):
    """`_conv_reference`'s values; a stride-1 'valid' conv is computed as the zero-padded 'same' conv,
    cropped: XLA CPU's (YNNPACK) convolution is 3-20x faster in that form (ResNet's reflect-padded 3x3
    256-channel convs at 64x64: 88 -> 26 ms; its 7x7 64->3 output conv: 288 -> 15 ms). Only for the
    forward: the kernel gradient of the plain valid conv is the faster one (56 vs 96 ms for 7x7 3->64)."""
    k = kernel.shape[0]
    if stride == 1 and padding == 0 and k > 1:
        p = (k - 1) // 2
        y = _conv_reference(x, kernel, 1, p)
        return y[:, p:y.shape[1] - p, p:y.shape[2] - p] if p else y
    return _conv_reference(x, kernel, stride, padding)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv_fast(x: jax.Array, kernel: jax.Array, stride: int, padding: int) -> jax.Array:
    """`lax.conv_general_dilated` (NHWC, HWIO, square stride / symmetric padding) whose input gradient
    is the transposed conv `conv_transpose` (kernel flipped spatially, channel axes swapped) and whose
    kernel gradient is XLA's own. Values and first gradients equal the plain conv's; the point is the
    second derivative (a gradient penalty differentiates the input gradient with respect to the
    kernel): through `conv_transpose`'s rules it is an ordinary conv kernel gradient, where XLA CPU's
    autodiff of the input gradient yields reversed / dilated kernel convs ~10-100x slower (issue 8).
    The forward is `_conv_forward` (valid convs as cropped same convs)."""
    return _conv_forward(x, kernel, stride, padding)


def _conv_fast_fwd(x, kernel, stride, padding):
    # conv_fast itself, not _conv_forward: a gradient penalty differentiates this rule once more
    # (the outer derivative of the forward pass), and must get these custom rules there too, not
    # XLA's autodiff of the plain conv (its window-sized kernel-gradient convs).
    return conv_fast(x, kernel, stride, padding), (x, kernel)


def _conv_fast_bwd(stride, padding, residuals, g):
    x, kernel = residuals
    k, size = kernel.shape[0], x.shape[1:3]
    output_padding = tuple(n + 2 * padding - k - (m - 1) * stride for n, m in zip(size, g.shape[1:3]))
    grad_x = conv_transpose(g, adjoint_kernel(kernel), (stride, stride), (padding, padding), output_padding)
    grad_kernel = gemm_kernel_grad(x, g.astype(x.dtype), k, stride, ((padding, padding),) * 2)
    if grad_kernel is None:
        _, kernel_vjp = jax.vjp(lambda w: _conv_reference(x, w, stride, padding), kernel)
        (grad_kernel,) = kernel_vjp(g)
    return grad_x.astype(x.dtype), grad_kernel.astype(kernel.dtype)


conv_fast.defvjp(_conv_fast_fwd, _conv_fast_bwd)


class Conv(nn.Module):
    """PyTorch-style conv: square kernel, symmetric zero padding, float32 params, `dtype` compute.

    The same parameters as flax's `nn.Conv` (`kernel` (k, k, Cin/groups, features), `bias`), so
    checkpoints are interchangeable; convs with few output pixels (`use_matmul`) run as a GEMM
    (`conv_patches`), the others as `conv_fast` (grouped convs: plain `lax.conv_general_dilated`)."""
    features: int
    kernel_size: int
    stride: int = 1
    padding: int = 0
    use_bias: bool = True
    groups: int = 1
    weight_init: str = "normal"
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        k, s, p = self.kernel_size, self.stride, self.padding
        cin = x.shape[-1]
        if cin % self.groups:
            raise ValueError(f"Conv: {cin} input channels are not divisible by groups={self.groups}")
        kernel = self.param("kernel", kernel_init(self.weight_init), (k, k, cin // self.groups, self.features),
                            jnp.float32)
        x, kernel = x.astype(self.dtype), kernel.astype(self.dtype)
        b, h, w, _ = x.shape
        rows = b * conv_output_size(h, k, s, p) * conv_output_size(w, k, s, p)
        if self.groups == 1 and use_matmul(rows, self.features):
            y = conv_patches(x, kernel, s, p)
        elif self.groups == 1:
            y = conv_fast(x, kernel, s, p)
        else:
            y = lax.conv_general_dilated(x, kernel, (s, s), ((p, p), (p, p)), dimension_numbers=_NHWC,
                                         feature_group_count=self.groups)
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32).astype(self.dtype)
        return y


def conv(features: int, kernel_size: int, stride: int = 1, padding: int = 0, *, use_bias: bool = True,
         weight_init: str = "normal", dtype: Dtype = jnp.float32, groups: int = 1, name: str | None = None):
    """A `Conv` (PyTorch semantics: square kernel, symmetric zero padding, float32 params)."""
    return Conv(features, kernel_size, stride, padding, use_bias=use_bias, groups=groups,
                weight_init=weight_init, dtype=dtype, name=name)


def _transposed_padding(kernel_size, padding, output_padding):
    """Padding of the lhs-dilated conv that a PyTorch ConvTranspose2d(k, s, p, op) is."""
    return [(k - 1 - p, k - 1 - p + op) for k, p, op in zip(kernel_size, padding, output_padding)]


def conv_transpose_reference(x, kernel, strides, padding, output_padding):
    """Plain `lax.conv_transpose` with PyTorch's (padding, output_padding); autodiff backward.

    x: (B, H, W, Cin); kernel: (kh, kw, Cin, Cout). Output side (H - 1) * s - 2p + k + op.
    """
    pads = _transposed_padding(kernel.shape[:2], padding, output_padding)
    return lax.conv_transpose(x, kernel, strides, pads, dimension_numbers=_NHWC)


def _adjoint_conv_operand(g, padding, output_padding):
    """(g cropped, zero pads) of the strided conv C_K whose adjoint is the transposed conv."""
    pads = []
    for axis, (p, op) in enumerate(zip(padding, output_padding)):
        high = p - op
        if high < 0:  # crop instead of a negative pad: those rows never reach the input
            g = lax.slice_in_dim(g, 0, g.shape[1 + axis] + high, axis=1 + axis)
            high = 0
        pads.append((p, high))
    return g, pads


def _adjoint_strided_conv(g, kernel, strides, padding, output_padding):
    """The ordinary strided conv C_K whose adjoint is the transposed conv: (B, Ho, Wo, Cout) -> (B, H, W, Cin)."""
    g, pads = _adjoint_conv_operand(g, padding, output_padding)
    return lax.conv_general_dilated(g, adjoint_kernel(kernel), strides, pads, dimension_numbers=_NHWC)


def _phase_taps(k: int, s: int, r: int) -> tuple[int, int]:
    """(first kernel index, count) of the taps of output phase r of a stride-s transposed conv along
    one axis, in the stored (flipped) kernel layout; they are every s-th index from the first."""
    count = len(range(r, k, s))
    return k - 1 - r - s * (count - 1), count


def conv_transpose_phases(x, kernel, strides, padding, output_padding):
    """The transposed conv as one stride-1 conv per output phase, interleaved (sub-pixel form).

    Output pixel o along an axis with stride s belongs to phase r = (o + p) mod s, and only the
    kernel taps t = r, r + s, ... reach it, so each of the s_h * s_w phases is an ordinary stride-1
    conv of x with that strided sub-kernel (full padding: U_r - 1 low, U - 1 high, U = ceil(k / s)),
    all phases of one length Q = H + U - 1; interleaved they are the un-cropped transposed conv of
    length Q * s, cropped to [p, p + output side). Same values as `conv_transpose_reference`
    (float32 summation order), at a quarter of the FLOPs of XLA CPU's lhs-dilated lowering of it for
    stride 2 (which multiplies the zeros it inserts) and on XLA's fast stride-1 conv path (issue 8).
    Needs k >= s on both axes (every phase has a tap)."""
    kh, kw, _, cout = kernel.shape
    b, h, w, _ = x.shape
    (sh, sw), (ph, pw), (oph, opw) = strides, padding, output_padding
    uh, uw = -(-kh // sh), -(-kw // sw)
    rows = []
    for rh in range(sh):
        start_h, count_h = _phase_taps(kh, sh, rh)
        cols = []
        for rw in range(sw):
            start_w, count_w = _phase_taps(kw, sw, rw)
            sub = lax.slice(kernel, (start_h, start_w, 0, 0), (start_h + sh * (count_h - 1) + 1,
                            start_w + sw * (count_w - 1) + 1) + kernel.shape[2:], (sh, sw, 1, 1))
            cols.append(lax.conv_general_dilated(x, sub, (1, 1), ((count_h - 1, uh - 1), (count_w - 1, uw - 1)),
                                                 dimension_numbers=_NHWC))
        rows.append(jnp.stack(cols, axis=3))  # (B, Qh, Qw, sw, C)
    qh, qw = h + uh - 1, w + uw - 1
    full = jnp.stack(rows, axis=2).reshape(b, qh * sh, qw * sw, cout)  # (B, Qh, sh, Qw, sw, C) interleaved
    ho, wo = (h - 1) * sh - 2 * ph + kh + oph, (w - 1) * sw - 2 * pw + kw + opw
    extra_h, extra_w = max(0, ph + ho - qh * sh), max(0, pw + wo - qw * sw)
    if extra_h or extra_w:  # past the un-cropped output: zeros
        full = jnp.pad(full, ((0, 0), (0, extra_h), (0, extra_w), (0, 0)))
    return full[:, ph:ph + ho, pw:pw + wo]


def _conv_transpose_forward(x, kernel, strides, padding, output_padding):
    """`conv_transpose_reference`'s values: by output phases when strided (`conv_transpose_phases`)."""
    kh, kw = kernel.shape[:2]
    if strides != (1, 1) and kh >= strides[0] and kw >= strides[1]:
        return conv_transpose_phases(x, kernel, strides, padding, output_padding)
    return conv_transpose_reference(x, kernel, strides, padding, output_padding)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _conv_transpose_fast(x, kernel, strides, padding, output_padding):
    return _conv_transpose_forward(x, kernel, strides, padding, output_padding)


def _fast_fwd(x, kernel, strides, padding, output_padding):
    # itself, not the reference: a second derivative of the forward keeps the custom rules
    return _conv_transpose_fast(x, kernel, strides, padding, output_padding), (x, kernel)


def _fast_bwd(strides, padding, output_padding, residuals, g):
    x, kernel = residuals
    adjoint = functools.partial(_adjoint_strided_conv, strides=strides, padding=padding,
                                output_padding=output_padding)
    grad_x = adjoint(g, kernel)
    adjoint_grad = None  # the kernel gradient of C_K's kernel adjoint_kernel(K), cotangent x
    if kernel.shape[0] == kernel.shape[1] and strides[0] == strides[1]:
        cropped, pads = _adjoint_conv_operand(g, padding, output_padding)
        adjoint_grad = gemm_kernel_grad(cropped, x.astype(g.dtype), kernel.shape[0], strides[0], pads)
    if adjoint_grad is not None:
        grad_kernel = adjoint_kernel(adjoint_grad)  # mapped back to K's layout
    else:
        _, kernel_vjp = jax.vjp(lambda k: adjoint(g, k), kernel)
        (grad_kernel,) = kernel_vjp(x.astype(g.dtype))
    return grad_x.astype(x.dtype), grad_kernel.astype(kernel.dtype)


_conv_transpose_fast.defvjp(_fast_fwd, _fast_bwd)


def conv_transpose_matmul(x, kernel, strides, padding, output_padding):
    """The transposed conv as one GEMM per kernel tap and a scatter of the taps onto the output.

    z[t] = x @ kernel[t] for every tap t = (a, c) (one dot batched over the taps, against the kernel as
    stored: no transpose), then each tap's (B, H, W, Cout) block is placed on the output grid by `lax.pad`
    (interior padding = stride - 1, edge padding = its offset, negative = cropped) and summed.
    Same values and gradients as `conv_transpose_reference` (float32 tolerance); autodiff backward."""
    kh, kw, cin, cout = kernel.shape
    b, h, w, _ = x.shape
    (sh, sw), (ph, pw), (oph, opw) = strides, padding, output_padding
    ho, wo = (h - 1) * sh - 2 * ph + kh + oph, (w - 1) * sw - 2 * pw + kw + opw
    taps = kh * kw
    # A batched GEMM over the taps, x broadcast per tap. The barrier keeps XLA from folding the
    # broadcast into one GEMM against a transposed (copied) kernel.
    x_per_tap = lax.optimization_barrier(jnp.broadcast_to(x.reshape(1, b * h * w, cin), (taps, b * h * w, cin)))
    z = lax.dot_general(x_per_tap, kernel.reshape(taps, cin, cout), (((2,), (1,)), ((0,), (0,))))
    z = z.reshape(kh, kw, b, h, w, cout)
    zero = jnp.zeros((), z.dtype)
    span_h, span_w = sh * (h - 1) + 1, sw * (w - 1) + 1
    y = jnp.zeros((b, ho, wo, cout), z.dtype)
    for a in range(kh):
        for c in range(kw):
            low_h, low_w = kh - 1 - a - ph, kw - 1 - c - pw  # output row of input row 0 for this tap
            y = y + lax.pad(z[a, c], zero, ((0, 0, 0), (low_h, ho - low_h - span_h, sh - 1),
                                            (low_w, wo - low_w - span_w, sw - 1), (0, 0, 0)))
    return y


def conv_transpose(x: jax.Array, kernel: jax.Array, strides: Sequence[int] = (2, 2),
                   padding: Sequence[int] = (1, 1), output_padding: Sequence[int] = (0, 0)) -> jax.Array:
    """PyTorch-semantics transposed conv (NHWC, kernel (kh, kw, Cin, Cout)) with the fast backward:
    `conv_transpose_matmul` when the input has few pixels (`use_matmul`), else `lax.conv_transpose`
    with the custom-VJP backward above.

    Same values and gradients as `conv_transpose_reference` (float tolerance). Inputs are promoted
    to a common dtype first. k4 s2 p1 and k3 s2 p1 op1 both double the spatial size.
    """
    dtype = jnp.result_type(x, kernel)
    b, h, w, _ = x.shape
    if use_matmul(b * h * w, kernel.shape[2]):
        return conv_transpose_matmul(x.astype(dtype), kernel.astype(dtype), tuple(strides), tuple(padding),
                                     tuple(output_padding))
    return _conv_transpose_fast(x.astype(dtype), kernel.astype(dtype), tuple(strides), tuple(padding),
                                tuple(output_padding))


class ConvTranspose(nn.Module):
    """PyTorch `ConvTranspose2d(k, s, p, output_padding)` as a flax module; kernel (k, k, Cin, features).

    (B, H, W, Cin) -> (B, (H-1)s - 2p + k + op, ..., features). `fast_backward=False` uses plain
    `lax.conv_transpose` autodiff (slow kernel gradient on XLA CPU; kept for comparison).
    Kernel layout: kernel[a, b, i, o] = torch_weight[i, o, k-1-a, k-1-b] (spatially flipped, as
    flax's nn.ConvTranspose with transpose_kernel=False).
    """
    features: int
    kernel_size: int = 4
    strides: int = 2
    padding: int = 1
    output_padding: int = 0
    use_bias: bool = True
    weight_init: str = "normal"
    dtype: Dtype = jnp.float32
    fast_backward: bool = True

    @nn.compact
    def __call__(self, x):
        k = self.kernel_size
        kernel = self.param("kernel", kernel_init(self.weight_init), (k, k, x.shape[-1], self.features), jnp.float32)
        op = conv_transpose if self.fast_backward else conv_transpose_reference
        y = op(x.astype(self.dtype), kernel.astype(self.dtype), (self.strides,) * 2, (self.padding,) * 2,
               (self.output_padding,) * 2)
        if self.use_bias:
            bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
            y = y + bias.astype(self.dtype)
        return y


# ----------------------------------------------------------------------------- norms, upsampling
class Norm(nn.Module):
    """'batch' (running stats in `batch_stats`, flax momentum 0.9 = PyTorch 0.1, eps 1e-5),
    'instance' (per-sample per-channel, no affine, eps 1e-5) or 'none' (identity)."""
    kind: str = "batch"
    weight_init: str = "normal"
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        check_choice("norm", self.kind, NORMS)
        if self.kind == "batch":
            return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                                scale_init=scale_init(self.weight_init), dtype=self.dtype,
                                param_dtype=jnp.float32)(x)
        if self.kind == "instance":
            return nn.InstanceNorm(epsilon=1e-5, use_bias=False, use_scale=False, dtype=self.dtype)(x)
        return x


def upsample_nearest(x: jax.Array, factor: int = 2) -> jax.Array:
    """Nearest-neighbour upsampling of an NHWC batch by an integer factor."""
    return jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)


class UpConv(nn.Module):
    """Decoder x2 upsampling: 'transpose' = ConvTranspose(k, 2, p, op); 'resize' = nearest x2 + 3x3 conv
    (no checkerboard artifacts). (B, H, W, C) -> (B, 2H, 2W, features)."""
    features: int
    mode: str = "transpose"
    kernel_size: int = 4
    padding: int = 1
    output_padding: int = 0
    use_bias: bool = True
    weight_init: str = "normal"
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        check_choice("upsample", self.mode, UPSAMPLES)
        if self.mode == "transpose":
            return ConvTranspose(self.features, self.kernel_size, 2, self.padding, self.output_padding,
                                 self.use_bias, self.weight_init, self.dtype)(x)
        return conv(self.features, 3, 1, 1, use_bias=self.use_bias, weight_init=self.weight_init,
                    dtype=self.dtype)(upsample_nearest(x))


# ----------------------------------------------------------------------------- padding, counting
def reflect_pad(x: jax.Array, pad: int) -> jax.Array:
    """Reflection padding of H and W by `pad` (PyTorch ReflectionPad2d)."""
    return jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")


def pad_to_multiple(x: jax.Array, multiple: int) -> jax.Array:
    """Pad H and W at the bottom / right up to multiples of `multiple`: reflect where the side is
    long enough (pad < side), edge padding otherwise. Crop back with `x[:, :h, :w]`."""
    widths = [(0, 0)]
    for side in x.shape[1:3]:
        widths.append((0, -side % multiple))
    widths.append((0, 0))
    if widths[1][1] == 0 and widths[2][1] == 0:
        return x
    reflect_ok = all(w[1] < side for w, side in zip(widths[1:3], x.shape[1:3]))
    return jnp.pad(x, widths, mode="reflect" if reflect_ok else "edge")


def count_params(module: nn.Module, input_shape: Sequence[int]) -> int:
    """Number of trainable parameters (the `params` collection), computed with `jax.eval_shape`."""
    def init():
        key = jax.random.key(0)
        return module.init({"params": key, "dropout": key}, jnp.zeros(input_shape, jnp.float32))

    shapes = jax.eval_shape(init)["params"]
    return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(shapes))
