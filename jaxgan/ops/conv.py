"""PyTorch-semantics convolution (NHWC, kernel HWIO, square stride, symmetric zero padding): the
plain `lax` form and the XLA-CPU fast paths."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from jaxgan.ops import dispatch
from jaxgan.ops.conv_transpose import NHWC, adjoint_kernel, conv2d_transpose_cpu_fast, use_matmul
from jaxgan.ops.kernel_grad import gemm_kernel_grad


def output_size(size: int, kernel_size: int, stride: int, padding: int) -> int:
    """Output side of a conv with symmetric zero padding."""
    return (size + 2 * padding - kernel_size) // stride + 1


def conv2d_lax(x, kernel, stride: int = 1, padding: int = 0, groups: int = 1):
    """Plain `lax.conv_general_dilated`; autodiff backward."""
    return lax.conv_general_dilated(x, kernel, (stride, stride), ((padding, padding), (padding, padding)),
                                    dimension_numbers=NHWC, feature_group_count=groups)


def conv_patches(x, kernel, stride: int, padding: int):
    """A strided conv as one GEMM over explicit patches, ordered (kh, kw, Cin) so that the kernel is
    used as `kernel.reshape(kh*kw*Cin, Cout)` (free, no transpose); autodiff backward (GEMMs too)."""
    kh, kw, cin, cout = kernel.shape
    b, h, w, _ = x.shape
    xp = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    ho, wo = output_size(h, kh, stride, padding), output_size(w, kw, stride, padding)
    cols = [lax.slice(xp, (0, i, j, 0), (b, i + stride * (ho - 1) + 1, j + stride * (wo - 1) + 1, cin),
                      (1, stride, stride, 1))
            for i in range(kh) for j in range(kw)]
    patches = jnp.concatenate(cols, axis=-1).reshape(b * ho * wo, kh * kw * cin)
    return (patches @ kernel.reshape(kh * kw * cin, cout)).reshape(b, ho, wo, cout)


def _conv_forward(x, kernel, stride, padding):
    """A stride-1 'valid' conv as the zero-padded 'same' conv, cropped: XLA CPU's convolution is
    3-20x faster in that form. Forward only: the plain valid conv's kernel gradient is the faster one."""
    k = kernel.shape[0]
    if stride == 1 and padding == 0 and k > 1:
        p = (k - 1) // 2
        y = conv2d_lax(x, kernel, 1, p)
        return y[:, p:y.shape[1] - p, p:y.shape[2] - p] if p else y
    return conv2d_lax(x, kernel, stride, padding)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv_vjp(x, kernel, stride: int, padding: int):
    """The conv with input gradient `conv2d_transpose_cpu_fast` (adjoint kernel) and GEMM kernel
    gradients where measured faster. The point is the second derivative (a gradient penalty
    differentiates the input gradient by the kernel): through these rules it is an ordinary conv
    kernel gradient, not XLA CPU's ~10-100x slower reversed / dilated kernel convs."""
    return _conv_forward(x, kernel, stride, padding)


def _vjp_fwd(x, kernel, stride, padding):
    # itself, not _conv_forward: a gradient penalty differentiates this rule once more and must
    # get these custom rules there too
    return conv_vjp(x, kernel, stride, padding), (x, kernel)


def _vjp_bwd(stride, padding, residuals, g):
    x, kernel = residuals
    k, size = kernel.shape[0], x.shape[1:3]
    output_padding = tuple(n + 2 * padding - k - (m - 1) * stride for n, m in zip(size, g.shape[1:3]))
    grad_x = conv2d_transpose_cpu_fast(g, adjoint_kernel(kernel), (stride, stride), (padding, padding),
                                       output_padding)
    grad_kernel = gemm_kernel_grad(x, g.astype(x.dtype), k, stride, ((padding, padding),) * 2)
    if grad_kernel is None:
        _, kernel_vjp = jax.vjp(lambda w: conv2d_lax(x, w, stride, padding), kernel)
        (grad_kernel,) = kernel_vjp(g)
    return grad_x.astype(x.dtype), grad_kernel.astype(kernel.dtype)


conv_vjp.defvjp(_vjp_fwd, _vjp_bwd)


def _tap_slice(xp, i: int, j: int, stride: int, out_hw):
    """xp's strided window at tap (i, j): the input pixels that tap multiplies, (B, Ho, Wo, C)."""
    b, _, _, c = xp.shape
    ho, wo = out_hw
    return lax.slice(xp, (0, i, j, 0), (b, i + stride * (ho - 1) + 1, j + stride * (wo - 1) + 1, c),
                     (1, stride, stride, 1))


def depthwise_taps(x, kernel, stride: int, padding: int):
    """A depthwise conv (kernel (k, k, 1, C), one filter per channel) as one multiply-add per tap,
    which XLA fuses into a single loop (its grouped convolution is a slow generic one on CPU)."""
    k = kernel.shape[0]
    h, w = x.shape[1:3]
    out_hw = output_size(h, k, stride, padding), output_size(w, k, stride, padding)
    acc = jnp.promote_types(x.dtype, jnp.float32)  # float32 sums for bfloat16, as the conv's
    xp = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0))).astype(acc)
    kernel = kernel.astype(acc)
    y = None
    for i in range(k):
        for j in range(k):
            term = _tap_slice(xp, i, j, stride, out_hw) * kernel[i, j, 0]
            y = term if y is None else y + term
    return y.astype(x.dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def depthwise_vjp(x, kernel, stride: int, padding: int):
    """`depthwise_taps` whose input gradient is again a tap form (of g dilated by the stride, flipped
    kernel) instead of autodiff's one scatter per tap; kernel gradient one reduction per tap."""
    return depthwise_taps(x, kernel, stride, padding)


def _depthwise_fwd(x, kernel, stride, padding):
    return depthwise_vjp(x, kernel, stride, padding), (x, kernel)  # itself: the rules hold at second order


def _depthwise_bwd(stride, padding, residuals, g):
    x, kernel = residuals
    k = kernel.shape[0]
    (h, w), (ho, wo) = x.shape[1:3], g.shape[1:3]
    q = k - 1 - padding  # the transposed conv's padding; output_padding below restores H, W
    extra_h, extra_w = h + 2 * padding - k - (ho - 1) * stride, w + 2 * padding - k - (wo - 1) * stride
    dilated = lax.pad(g, jnp.zeros((), g.dtype), ((0, 0, 0), (q, q + extra_h, stride - 1),
                                                  (q, q + extra_w, stride - 1), (0, 0, 0)))
    grad_x = depthwise_taps(dilated, jnp.flip(kernel, (0, 1)), 1, 0)
    xp = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    grad_kernel = jnp.stack([jnp.sum(_tap_slice(xp, i, j, stride, (ho, wo)) * g, axis=(0, 1, 2), dtype=jnp.float32)
                             for i in range(k) for j in range(k)]).reshape(kernel.shape)
    return grad_x.astype(x.dtype), grad_kernel.astype(kernel.dtype)


depthwise_vjp.defvjp(_depthwise_fwd, _depthwise_bwd)


def conv2d_cpu_fast(x, kernel, stride: int = 1, padding: int = 0, groups: int = 1):
    """The XLA-CPU form: depthwise convs by taps, few output pixels (`use_matmul`) as a GEMM, else
    `conv_vjp`; other grouped convs plain."""
    if groups != 1 and kernel.shape[2] == 1 and kernel.shape[3] == groups:
        return depthwise_vjp(x, kernel, stride, padding)
    if groups != 1:
        return conv2d_lax(x, kernel, stride, padding, groups)
    k, b, h, w = kernel.shape[0], *x.shape[:3]
    if use_matmul(b * output_size(h, k, stride, padding) * output_size(w, k, stride, padding), kernel.shape[3]):
        return conv_patches(x, kernel, stride, padding)
    return conv_vjp(x, kernel, stride, padding)


def conv2d(x: jax.Array, kernel: jax.Array, stride: int = 1, padding: int = 0, groups: int = 1, *,
           impl: str | None = None) -> jax.Array:
    """PyTorch `Conv2d` semantics: NHWC, kernel (k, k, Cin / groups, Cout), square stride, symmetric
    zero padding. x and kernel share a dtype. `impl`: see `jaxgan.ops.dispatch`."""
    if x.shape[-1] != kernel.shape[2] * groups:
        raise ValueError(f"conv2d: {x.shape[-1]} input channels do not match kernel {kernel.shape} "
                         f"with groups={groups}")
    if dispatch.resolve(impl) in ("xla", "tflite"):
        return conv2d_lax(x, kernel, stride, padding, groups)
    return conv2d_cpu_fast(x, kernel, stride, padding, groups)
