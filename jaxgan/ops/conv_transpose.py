"""PyTorch-semantics transposed convolution (NHWC, kernel (kh, kw, Cin, Cout)): the plain `lax`
form and the XLA-CPU fast paths.

A transposed conv T_K is the adjoint of the strided conv C_K (kernel flipped spatially, channel
axes swapped), so for an output cotangent g: dx = C_K(g) and dK = the kernel VJP of C_K with
cotangent x; XLA CPU computes both fast, unlike the kernel gradient of its lhs-dilated lowering.
Kernel layout: kernel[a, b, i, o] = torch_weight[i, o, k-1-a, k-1-b].
"""

from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
from jax import lax

from jaxgan.ops import dispatch
from jaxgan.ops.kernel_grad import gemm_kernel_grad

NHWC = ("NHWC", "HWIO", "NHWC")
# A conv (or transposed conv) with at most this many pixels (output pixels, input pixels for a
# transposed conv; batch included) per kernel channel on that side runs as one GEMM.
GEMM_MAX_ROWS_PER_CHANNEL = 1
# A strided transposed conv runs by output phases from this many output channels on; below it XLA's
# lhs-dilated form is faster despite its zeros (each phase conv has as few outputs, XLA's slow case).
PHASES_MIN_COUT = 8


def use_matmul(rows: int, kernel_rows: int) -> bool:
    """Whether a conv with `rows` pixels runs as a GEMM against the kernel: when its patch matrix is
    no larger than the kernel (XLA CPU otherwise spends its time copying huge kernels). A symbolic size (jax.export) keeps the conv."""
    return isinstance(rows, int) and rows <= GEMM_MAX_ROWS_PER_CHANNEL * kernel_rows


def adjoint_kernel(kernel: jax.Array) -> jax.Array:
    """(kh, kw, A, B) -> (kh, kw, B, A) flipped spatially: the kernel of the adjoint conv."""
    return jnp.flip(kernel, (0, 1)).swapaxes(2, 3)


def output_size(size: int, kernel_size: int, stride: int, padding: int, output_padding: int) -> int:
    """Output side of a PyTorch ConvTranspose2d."""
    return (size - 1) * stride - 2 * padding + kernel_size + output_padding


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else tuple(int(a) for a in v)


def _lax_pads(kernel_shape, padding, output_padding) -> list[tuple[int, int]]:
    """`lax.conv_transpose`'s (low, high) pads per axis for PyTorch's (padding, output_padding)."""
    return [(k - 1 - p, k - 1 - p + op) for k, p, op in zip(kernel_shape[:2], _pair(padding), _pair(output_padding))]


def conv2d_transpose_lax(x, kernel, strides=(2, 2), padding=(1, 1), output_padding=(0, 0)):
    """Plain `lax.conv_transpose` with PyTorch's (padding, output_padding); autodiff backward."""
    return lax.conv_transpose(x, kernel, _pair(strides), _lax_pads(kernel.shape, padding, output_padding),
                              dimension_numbers=NHWC)


def conv2d_transpose_even_pads(x, kernel, strides=(2, 2), padding=(1, 1), output_padding=(0, 0)):
    """`conv2d_transpose_lax` with each axis padded evenly (by the larger of its two pads) and the
    extra rows cropped: the form TFLite's converter maps correctly (it maps an unevenly padded
    lhs-dilated conv, e.g. k3 s2 p1 op1, to a TRANSPOSE_CONV with other values)."""
    strides, padding, output_padding = _pair(strides), _pair(padding), _pair(output_padding)
    pads = _lax_pads(kernel.shape, padding, output_padding)
    y = lax.conv_transpose(x, kernel, strides, [(max(pad), max(pad)) for pad in pads], dimension_numbers=NHWC)
    (top, left) = (max(pad) - pad[0] for pad in pads)  # the rows / columns the even pads added in front
    ho, wo = (output_size(*args) for args in zip(x.shape[1:3], kernel.shape[:2], strides, padding, output_padding))
    return y[:, top:top + ho, left:left + wo]


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
    """The strided conv C_K whose adjoint is the transposed conv: (B, Ho, Wo, Cout) -> (B, H, W, Cin)."""
    g, pads = _adjoint_conv_operand(g, padding, output_padding)
    return lax.conv_general_dilated(g, adjoint_kernel(kernel), strides, pads, dimension_numbers=NHWC)


def _phase_taps(k: int, s: int, r: int) -> tuple[int, int]:
    """(first kernel index, count) of the taps of output phase r along one axis (stored layout)."""
    count = len(range(r, k, s))
    return k - 1 - r - s * (count - 1), count


def conv_transpose_phases(x, kernel, strides, padding, output_padding):
    """The transposed conv as one stride-1 conv per output phase, interleaved (sub-pixel form).

    Output pixel o (stride s) belongs to phase r = (o + p) mod s, reached only by the taps
    r, r + s, ...: each phase is a stride-1 conv of x with that sub-kernel (full padding), all of
    length Q = H + U - 1 (U = ceil(k / s)); interleaved and cropped to [p, p + output side) they are
    the transposed conv. XLA CPU's lhs-dilated lowering multiplies the inserted zeros (4x the FLOPs
    at stride 2). Needs k >= s on both axes."""
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
                                                 dimension_numbers=NHWC))
        rows.append(jnp.stack(cols, axis=3))  # (B, Qh, Qw, sw, C)
    qh, qw = h + uh - 1, w + uw - 1
    full = jnp.stack(rows, axis=2).reshape(b, qh * sh, qw * sw, cout)  # (B, Qh, sh, Qw, sw, C) interleaved
    ho, wo = output_size(h, kh, sh, ph, oph), output_size(w, kw, sw, pw, opw)
    extra_h, extra_w = max(0, ph + ho - qh * sh), max(0, pw + wo - qw * sw)
    if extra_h or extra_w:  # past the un-cropped output: zeros
        full = jnp.pad(full, ((0, 0), (0, extra_h), (0, extra_w), (0, 0)))
    return full[:, ph:ph + ho, pw:pw + wo]


def use_phases(kernel_shape: Sequence[int], strides: tuple[int, int]) -> bool:
    """Whether a transposed conv's forward runs by output phases (`conv_transpose_phases`)."""
    kh, kw, _, cout = kernel_shape
    return strides != (1, 1) and kh >= strides[0] and kw >= strides[1] and cout >= PHASES_MIN_COUT


def _conv_transpose_forward(x, kernel, strides, padding, output_padding):
    if use_phases(kernel.shape, strides):
        return conv_transpose_phases(x, kernel, strides, padding, output_padding)
    return conv2d_transpose_lax(x, kernel, strides, padding, output_padding)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def conv_transpose_vjp(x, kernel, strides, padding, output_padding):
    """The transposed conv with the adjoint-conv backward (module docstring); forward by phases
    where `use_phases` says so."""
    return _conv_transpose_forward(x, kernel, strides, padding, output_padding)


def _vjp_fwd(x, kernel, strides, padding, output_padding):
    # itself, not the forward: a second derivative of the forward keeps the custom rules
    return conv_transpose_vjp(x, kernel, strides, padding, output_padding), (x, kernel)


def _vjp_bwd(strides, padding, output_padding, residuals, g):
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


conv_transpose_vjp.defvjp(_vjp_fwd, _vjp_bwd)


def conv_transpose_matmul(x, kernel, strides, padding, output_padding):
    """The transposed conv as one GEMM per kernel tap (batched, against the kernel as stored) and a
    scatter of each tap's block onto the output grid by `lax.pad` (interior padding stride - 1,
    edge padding its offset, negative = cropped), summed; autodiff backward."""
    kh, kw, cin, cout = kernel.shape
    b, h, w, _ = x.shape
    (sh, sw), (ph, pw), (oph, opw) = strides, padding, output_padding
    ho, wo = output_size(h, kh, sh, ph, oph), output_size(w, kw, sw, pw, opw)
    taps = kh * kw
    # The barrier keeps XLA from folding the broadcast into one GEMM against a transposed (copied) kernel.
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


def conv2d_transpose_cpu_fast(x, kernel, strides=(2, 2), padding=(1, 1), output_padding=(0, 0)):
    """The XLA-CPU form: a GEMM when the input has few pixels (`use_matmul`), else `conv_transpose_vjp`."""
    strides, padding, output_padding = _pair(strides), _pair(padding), _pair(output_padding)
    b, h, w, _ = x.shape
    if use_matmul(b * h * w, kernel.shape[2]):
        return conv_transpose_matmul(x, kernel, strides, padding, output_padding)
    return conv_transpose_vjp(x, kernel, strides, padding, output_padding)


def conv2d_transpose(x: jax.Array, kernel: jax.Array, strides: int | Sequence[int] = (2, 2),
                     padding: int | Sequence[int] = (1, 1), output_padding: int | Sequence[int] = (0, 0), *,
                     impl: str | None = None) -> jax.Array:
    """PyTorch `ConvTranspose2d` semantics, NHWC, kernel (kh, kw, Cin, Cout): output side
    (H - 1) s - 2p + k + op. Inputs are promoted to a common dtype. `impl`: see `jaxgan.ops.dispatch`."""
    dtype = jnp.result_type(x, kernel)
    x, kernel = x.astype(dtype), kernel.astype(dtype)
    chosen = dispatch.resolve(impl)
    if chosen == "xla":
        return conv2d_transpose_lax(x, kernel, strides, padding, output_padding)
    if chosen == "tflite":
        return conv2d_transpose_even_pads(x, kernel, strides, padding, output_padding)
    return conv2d_transpose_cpu_fast(x, kernel, strides, padding, output_padding)
