"""Conv kernel gradients as GEMMs: XLA CPU computes a conv's kernel gradient as one convolution whose
window is the whole output, at about half a GEMM's speed (far worse with few channels on a side).
Every form here is equal to the VJP of `lax.conv_general_dilated` with respect to its kernel (float32
summation order); the rules below pick the form measured faster (benchmarks/README.md)."""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from jax import lax

# Per-tap GEMMs unless few output channels meet large input slices (k*k*rows*Cin values).
TAP_GRAD_MIN_COUT = 32
TAP_GRAD_MAX_SLICE_VALUES = 2 ** 24
# Per-row GEMMs: stride 1, k * Cout at most this, Cin at least that (the PatchGAN's 512->1 output conv),
# or wherever the per-tap form applies and the row form copies fewer values (few output channels).
ROW_GRAD_MAX_K_COUT = 16
ROW_GRAD_MIN_CIN = 64
# One GEMM over shifted copies of g: stride 1, k * k * Cout at most this (the FPN's 32->3 output conv).
FLAT_GRAD_MAX_TAPS_COUT = 32


def use_tap_kernel_grad(kernel_size: int, rows: int, cin: int, cout: int) -> bool:
    """Whether the kernel gradient runs as k*k GEMMs (`kernel_grad_taps`); rows = batch x output pixels."""
    return cout >= TAP_GRAD_MIN_COUT or kernel_size * kernel_size * rows * cin <= TAP_GRAD_MAX_SLICE_VALUES


def use_row_kernel_grad(kernel_size: int, stride: int, cin: int, cout: int, rows: int) -> bool:
    """Whether the kernel gradient runs as k GEMMs, one per kernel row (`kernel_grad_rows`): per output
    pixel it copies k * (k * Cout + Cin) values (g shifted k times, k row slices of x), the per-tap
    form k * k * Cin; rows = batch x output pixels."""
    if stride != 1:
        return False
    if kernel_size * cout <= ROW_GRAD_MAX_K_COUT and cin >= ROW_GRAD_MIN_CIN:
        return True
    fewer_copies = kernel_size * cout + cin < kernel_size * cin
    return fewer_copies and use_tap_kernel_grad(kernel_size, rows, cin, cout)


def use_flat_kernel_grad(kernel_size: int, stride: int, cout: int) -> bool:
    """Whether the kernel gradient runs as one GEMM over k * k shifted copies of g (`kernel_grad_flat`)."""
    return stride == 1 and kernel_size * kernel_size * cout <= FLAT_GRAD_MAX_TAPS_COUT


def materialized_transpose(a: jax.Array) -> jax.Array:
    """a.T as an array of its own: XLA would otherwise fold the transpose into the GEMMs that use it,
    and XLA CPU's GEMM with a transposed left operand (contracting its rows) runs ~1.5x slower."""
    return lax.optimization_barrier(a.T)


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
        g_t = materialized_transpose(g.reshape(b * ho * wo, cout))
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
    shifted_t = materialized_transpose(shifted.reshape(b * ho * wp, k * cout))
    per_row = [shifted_t @ lax.slice_in_dim(xp, i, i + ho, axis=1).reshape(b * ho * wp, cin) for i in range(k)]
    return jnp.stack(per_row).reshape(k, k, cout, cin).swapaxes(2, 3)


def kernel_grad_flat(x: jax.Array, g: jax.Array, kernel_size: int, pads: Sequence[tuple[int, int]]) -> jax.Array:
    """Kernel gradient (k, k, Cin, Cout) of a stride-1 conv (padding `pads`) as one GEMM. With the
    padded input flattened per image to Hp * Wp rows and g placed in the top-left Ho x Wo corner of
    that grid, tap (i, j) pairs x's row q with g's row q - (i * Wp + j): the k * k copies of g
    shifted by those offsets, stacked (channels first, so the GEMM's left operand is row-major),
    meet x, which is not copied at all."""
    b, _, _, cin = x.shape
    _, ho, wo, cout = g.shape
    k = kernel_size
    xp = jnp.pad(x, ((0, 0), tuple(pads[0]), tuple(pads[1]), (0, 0)))
    hp, wp = xp.shape[1:3]
    last = (k - 1) * wp + k - 1  # the largest shift
    g_t = jnp.pad(jnp.transpose(g, (3, 0, 1, 2)), ((0, 0), (0, 0), (0, hp - ho), (0, wp - wo)))
    g_t = jnp.pad(g_t.reshape(cout, b, hp * wp), ((0, 0), (0, 0), (last, 0)))
    shifted = jnp.concatenate([lax.slice_in_dim(g_t, last - i * wp - j, last - i * wp - j + hp * wp, axis=2)
                               for i in range(k) for j in range(k)])
    grad = shifted.reshape(k * k * cout, b * hp * wp) @ xp.reshape(b * hp * wp, cin)
    return grad.reshape(k, k, cout, cin).swapaxes(2, 3)


def kernel_grad_form(kernel_size: int, stride: int, cin: int, cout: int, rows: int) -> str:
    """The form the rules pick: 'flat', 'rows', 'taps', or 'xla' where XLA's own form is the faster
    one; rows = batch x output pixels."""
    if use_flat_kernel_grad(kernel_size, stride, cout):
        return "flat"
    if use_row_kernel_grad(kernel_size, stride, cin, cout, rows):
        return "rows"
    return "taps" if use_tap_kernel_grad(kernel_size, rows, cin, cout) else "xla"


def gemm_kernel_grad(x: jax.Array, g: jax.Array, kernel_size: int, stride: int,
                     pads: Sequence[tuple[int, int]]) -> jax.Array | None:
    """The kernel gradient in the GEMM form `kernel_grad_form` picks, or None for XLA's own form."""
    form = kernel_grad_form(kernel_size, stride, x.shape[-1], g.shape[-1], g.shape[0] * g.shape[1] * g.shape[2])
    if form == "flat":
        return kernel_grad_flat(x, g, kernel_size, pads)
    if form == "rows":
        return kernel_grad_rows(x, g, kernel_size, pads)
    if form == "taps":
        return kernel_grad_taps(x, g, kernel_size, stride, pads)
    return None
