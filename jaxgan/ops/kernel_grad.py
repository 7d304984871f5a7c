"""Conv kernel gradients as GEMMs: XLA CPU computes a conv's kernel gradient as one convolution whose
window is the whole output, at about half a GEMM's speed (far worse with a 1-channel side).
Both are equal to the VJP of `lax.conv_general_dilated` with respect to its kernel (float32
summation order); the rules below pick the form measured faster (benchmarks/README.md)."""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from jax import lax

# Per-tap GEMMs unless few output channels meet large input slices (k*k*rows*Cin values).
TAP_GRAD_MIN_COUT = 32
TAP_GRAD_MAX_SLICE_VALUES = 2 ** 24
# Per-row GEMMs: stride 1, k * Cout at most this, Cin at least that (the PatchGAN's 512->1 output conv).
ROW_GRAD_MAX_K_COUT = 16
ROW_GRAD_MIN_CIN = 64


def use_tap_kernel_grad(kernel_size: int, rows: int, cin: int, cout: int) -> bool:
    """Whether the kernel gradient runs as k*k GEMMs (`kernel_grad_taps`); rows = batch x output pixels."""
    return cout >= TAP_GRAD_MIN_COUT or kernel_size * kernel_size * rows * cin <= TAP_GRAD_MAX_SLICE_VALUES


def use_row_kernel_grad(kernel_size: int, stride: int, cin: int, cout: int) -> bool:
    """Whether the kernel gradient runs as k GEMMs, one per kernel row (`kernel_grad_rows`)."""
    return stride == 1 and kernel_size * cout <= ROW_GRAD_MAX_K_COUT and cin >= ROW_GRAD_MIN_CIN


def kernel_grad_taps(x: jax.Array, g: jax.Array, kernel_size: int, stride: int,
                     pads: Sequence[tuple[int, int]]) -> jax.Array:
    """Kernel gradient (k, k, Cin, Cout) of the k x k conv of x (B, H, W, Cin) with square `stride`
    and zero padding `pads` ((low, high) per spatial axis), output gradient g (B, Ho, Wo, Cout):
    per tap (a, b), x's padded strided slice at that offset contracted with g over batch and pixels
    (with Cin >= Cout as g^T @ slice, so that the smaller operand is the transposed one)."""
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


def kernel_grad_rows(x: jax.Array, g: jax.Array, kernel_size: int, pads: Sequence[tuple[int, int]]) -> jax.Array:
    """Kernel gradient (k, k, Cin, Cout) of a stride-1 conv (padding `pads`) as one GEMM per kernel
    row i: the padded input's rows i .. i + Ho - 1 (all Wp = Wo + k - 1 columns, contiguous) against
    the k copies of g shifted by j = 0 .. k - 1 columns into that width, side by side in channels.
    Copies Cout-wide data k times instead of Cin-wide data k * k times (`kernel_grad_taps`)."""
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
    """The kernel gradient in the GEMM form the rules pick (rows, else taps), or None where XLA's
    own form is the faster one."""
    cin, cout = x.shape[-1], g.shape[-1]
    if use_row_kernel_grad(kernel_size, stride, cin, cout):
        return kernel_grad_rows(x, g, kernel_size, pads)
    if use_tap_kernel_grad(kernel_size, g.shape[0] * g.shape[1] * g.shape[2], cin, cout):
        return kernel_grad_taps(x, g, kernel_size, stride, pads)
    return None
