"""jaxgan.ops: every implementation ('xla', 'cpu_fast', 'tflite') against plain lax (values, input and
kernel gradients, the gradient penalty's second derivatives) for the zoo's conv shapes; the fast paths one by
one (the transposed conv against a numpy scatter of PyTorch's ConvTranspose2d, the GEMM forms against
XLA's kernel VJP); the dispatch; a whole train step under 'xla' and 'cpu_fast'."""

import functools

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import ops
from jaxgan.nets.layers import Conv, ConvTranspose
from jaxgan.ops import kernel_grad as kernel_grad_mod
from jaxgan.ops.conv import conv_patches, conv_vjp as conv_fast
from jaxgan.ops.conv_transpose import (PHASES_MIN_COUT, conv_transpose_matmul, conv_transpose_phases,
                                       use_matmul, use_phases)
from jaxgan.ops.kernel_grad import (kernel_grad_flat, kernel_grad_rows, kernel_grad_taps, use_flat_kernel_grad,
                                    use_row_kernel_grad, use_tap_kernel_grad)

conv_transpose = ops.conv2d_transpose_cpu_fast
conv_transpose_reference = ops.conv2d_transpose_lax

# (kernel, stride, padding, output_padding): pix2pix U-Net up-conv and the ResNet up-conv (both x2).
CASES = {"k4s2p1": (4, 2, 1, 0), "k3s2p1op1": (3, 2, 1, 1)}
CHANNELS = [(1, 1), (3, 5), (8, 4)]


def torch_conv_transpose_numpy(x, kernel, k, s, p, op):
    """PyTorch ConvTranspose2d by scattering, with torch_weight[i, o, a, b] = kernel[k-1-a, k-1-b, i, o]."""
    torch_w = np.flip(kernel, (0, 1))
    b, h, w, _ = x.shape
    full = np.zeros((b, (h - 1) * s + k + op, (w - 1) * s + k + op, kernel.shape[-1]))
    for i in range(h):
        for j in range(w):
            full[:, i * s:i * s + k, j * s:j * s + k] += np.einsum("bc,xyco->bxyo", x[:, i, j], torch_w)
    out_h, out_w = (h - 1) * s - 2 * p + k + op, (w - 1) * s - 2 * p + k + op
    return full[:, p:p + out_h, p:p + out_w]


def _inputs(case, cin, cout, dtype=jnp.float32, shape=(2, 5, 7)):
    k, s, p, op = CASES[case]
    kx, kk, kg = jax.random.split(jax.random.key(cin * 10 + cout), 3)
    x = jax.random.normal(kx, (*shape, cin)).astype(dtype)
    kernel = jax.random.normal(kk, (k, k, cin, cout)).astype(dtype)
    g = jax.random.normal(kg, (shape[0], 2 * shape[1], 2 * shape[2], cout)).astype(dtype)
    return x, kernel, g, (s, s), (p, p), (op, op)


def _value_and_grads(op, x, kernel, g, strides, padding, output_padding):
    def loss(x, kernel):
        y = op(x, kernel, strides, padding, output_padding)
        return jnp.sum(y.astype(jnp.float32) * g.astype(jnp.float32)), y

    (_, y), grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))(x, kernel)
    return y, grads


@pytest.mark.parametrize("case", list(CASES))
def test_matches_pytorch_semantics(case):
    x, kernel, _, strides, padding, output_padding = _inputs(case, 3, 2)
    y = jax.jit(conv_transpose, static_argnums=(2, 3, 4))(x, kernel, strides, padding, output_padding)
    expected = torch_conv_transpose_numpy(np.asarray(x, np.float64), np.asarray(kernel, np.float64),
                                          *CASES[case])
    chex.assert_shape(y, (2, 10, 14, 2))  # both cases double the size
    np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("cin,cout", CHANNELS)
def test_value_and_gradients_equal_reference(case, cin, cout):
    args = _inputs(case, cin, cout)
    y_fast, (dx_fast, dk_fast) = _value_and_grads(conv_transpose, *args)
    y_ref, (dx_ref, dk_ref) = _value_and_grads(conv_transpose_reference, *args)
    chex.assert_trees_all_close(y_fast, y_ref, rtol=1e-5, atol=1e-5)
    chex.assert_trees_all_close(dx_fast, dx_ref, rtol=1e-5, atol=1e-4)
    chex.assert_trees_all_close(dk_fast, dk_ref, rtol=1e-5, atol=1e-4)
    assert float(jnp.abs(dk_ref).max()) > 1.0  # the comparison is not between zeros


@pytest.mark.parametrize("case", list(CASES))
def test_bfloat16_gradients_close_to_float32(case):
    args32 = _inputs(case, 3, 5)
    args16 = _inputs(case, 3, 5, dtype=jnp.bfloat16)
    y16, (dx16, dk16) = _value_and_grads(conv_transpose, *args16)
    y_ref16, (dx_ref16, dk_ref16) = _value_and_grads(conv_transpose_reference, *args16)
    _, (dx32, dk32) = _value_and_grads(conv_transpose_reference, *args32)
    chex.assert_type([y16, dx16, dk16], jnp.bfloat16)
    for fast, ref16, ref32 in [(dx16, dx_ref16, dx32), (dk16, dk_ref16, dk32)]:
        scale = float(jnp.abs(ref32).max())
        # bfloat16 inputs are a rounding of the float32 ones: compare at bfloat16 precision (~1e-2).
        np.testing.assert_allclose(np.asarray(fast, np.float32), np.asarray(ref16, np.float32),
                                   atol=0.02 * scale)
        np.testing.assert_allclose(np.asarray(fast, np.float32), np.asarray(ref32), atol=0.03 * scale)


@pytest.mark.parametrize("case", list(CASES))
def test_module_cpu_fast_and_xla_gradients_agree(case):
    k, s, p, op = CASES[case]
    x = jax.random.uniform(jax.random.key(0), (3, 4, 6, 4), minval=-1, maxval=1)
    module = ConvTranspose(6, k, s, p, op)
    params = module.init(jax.random.key(1), x)
    chex.assert_shape(params["params"]["kernel"], (k, k, 4, 6))

    def grads(impl):
        with ops.conv_impl(impl):
            return jax.jit(jax.grad(lambda v: jnp.sum(jnp.sin(module.apply(v, x)))))(params)

    chex.assert_trees_all_close(grads("cpu_fast"), grads("xla"), rtol=1e-5, atol=1e-5)
    chex.assert_shape(module.apply(params, x), (3, 8, 12, 6))


# (kernel, stride, padding, output_padding, input H x W): the zoo's two up-convs, no padding, a
# 2x2 kernel, stride 3, and k4 s2 p0 op1, whose last output row lies past the phases' length.
PHASE_CASES = [(4, 2, 1, 0, (5, 7)), (3, 2, 1, 1, (6, 5)), (3, 2, 0, 0, (4, 4)), (2, 2, 0, 0, (3, 4)),
               (5, 3, 2, 1, (4, 6)), (4, 2, 0, 1, (3, 5)), (4, 2, 2, 0, (6, 6))]


@pytest.mark.parametrize("k,s,p,op,hw", PHASE_CASES)
def test_phase_transposed_conv_equals_reference(k, s, p, op, hw):
    """One stride-1 conv per output phase, interleaved = lax.conv_transpose (PyTorch semantics)."""
    x = jax.random.normal(jax.random.key(k * 10 + p), (2, *hw, 3))
    kernel = jax.random.normal(jax.random.key(op), (k, k, 3, 4))
    args = (x, kernel, (s, s), (p, p), (op, op))
    y, ref = jax.jit(conv_transpose_phases, static_argnums=(2, 3, 4))(*args), conv_transpose_reference(*args)
    chex.assert_equal_shape((y, ref))
    chex.assert_trees_all_close(y, ref, rtol=1e-5, atol=1e-5)
    assert float(jnp.abs(ref).max()) > 1.0


@pytest.mark.parametrize("cout,phases", [(PHASES_MIN_COUT, True), (PHASES_MIN_COUT - 1, False), (3, False)])
def test_strided_conv_transpose_lhs_dilation_only_for_few_outputs(cout, phases):
    """conv_transpose's strided forward (and the strided conv's input gradient, which is one) runs by
    phases, without the lhs-dilated convolution XLA CPU computes at 4x the FLOPs, from
    PHASES_MIN_COUT output channels on; with fewer (the RGB output of a U-Net, a discriminator's
    input gradient) the lhs-dilated form, whose phase convs would have as few outputs."""
    x, kernel, g, strides, padding, output_padding = _inputs("k4s2p1", 3, cout)
    assert use_phases(kernel.shape, strides) is phases
    forward = jax.make_jaxpr(conv_transpose, static_argnums=(2, 3, 4))(x, kernel, strides, padding, output_padding)
    assert ("lhs_dilation=(2, 2)" not in str(forward)) is phases
    reference = jax.make_jaxpr(conv_transpose_reference, static_argnums=(2, 3, 4))(x, kernel, strides, padding,
                                                                                output_padding)
    assert "lhs_dilation=(2, 2)" in str(reference)  # the check sees the form it rules out
    input_grad = jax.make_jaxpr(jax.grad(lambda x: jnp.sum(conv_fast(x, kernel.swapaxes(2, 3), 2, 1))))(g)
    assert "conv_general_dilated" in str(input_grad)
    assert ("lhs_dilation=(2, 2)" not in str(input_grad)) is phases
    assert not use_phases(kernel.shape, (1, 1))


@pytest.mark.parametrize("k,p,op", [(3, 1, 1), (4, 1, 0), (3, 2, 0), (5, 1, 1)])
def test_tflite_form_pads_every_transposed_conv_evenly(k, p, op):
    """The 'tflite' impl's transposed conv is one lhs-dilated conv with even pads, the larger of lax's
    (k-1-p, k-1-p+op), cropped back: lax's values (TFLite's converter gets uneven pads wrong)."""
    x = jax.random.normal(jax.random.key(k), (1, 5, 6, 4))
    kernel = jax.random.normal(jax.random.key(p), (k, k, 4, 3))
    ours = functools.partial(ops.conv2d_transpose, strides=2, padding=p, output_padding=op, impl="tflite")
    jaxpr = str(jax.make_jaxpr(ours)(x, kernel))
    even = max(k - 1 - p, k - 1 - p + op)
    assert jaxpr.count("conv_general_dilated") == 1 and f"padding=(({even}, {even}), ({even}, {even}))" in jaxpr
    expected = ops.conv2d_transpose_lax(x, kernel, 2, p, op)
    np.testing.assert_allclose(ours(x, kernel), expected, rtol=1e-5, atol=1e-5)
    assert expected.shape[1:3] == ((5 - 1) * 2 - 2 * p + k + op, (6 - 1) * 2 - 2 * p + k + op)


@pytest.mark.parametrize("k,pads,hw,cin,cout", [(4, ((1, 1), (1, 1)), (7, 6), 64, 1), (3, ((0, 2), (1, 0)), (8, 9), 5, 3),
                                                (1, ((0, 0), (0, 0)), (4, 5), 3, 2)])
def test_kernel_grad_rows_equals_the_conv_kernel_vjp(k, pads, hw, cin, cout):
    """One GEMM per kernel row against W-shifted copies of g = XLA's kernel VJP of a stride-1 conv."""
    x = jax.random.normal(jax.random.key(k), (2, *hw, cin))
    g, expected = _lax_kernel_vjp(x, k, 1, pads, cout, jax.random.key(k + 1))
    chex.assert_trees_all_close(jax.jit(kernel_grad_rows, static_argnums=(2, 3))(x, g, k, pads), expected,
                                rtol=1e-5, atol=1e-4)
    assert float(jnp.abs(expected).max()) > 1.0


def test_row_kernel_grad_rule_and_conv_fast_through_it(monkeypatch):
    """Rows for the PatchGAN's stride-1 512->1 output conv and where they copy fewer values than the
    taps (the FPN's 256->64 and 64->32 smoothing convs); conv_fast's kernel gradient through the row
    form equals lax's (the rule forced on for a small conv)."""
    assert use_row_kernel_grad(4, 1, 512, 1, 31 * 31)
    assert not use_row_kernel_grad(4, 2, 512, 1, 15 * 15)  # strided
    assert use_row_kernel_grad(3, 1, 256, 64, 64 * 64)
    assert use_row_kernel_grad(3, 1, 64, 32, 128 * 128)
    assert not use_row_kernel_grad(7, 1, 64, 3, 256 * 256)  # the ResNet's output conv: XLA's form is faster
    assert not use_row_kernel_grad(3, 1, 256, 256, 64 * 64)  # the per-tap form copies less
    assert not use_row_kernel_grad(4, 1, 256, 512, 31 * 31)
    monkeypatch.setattr(kernel_grad_mod, "use_row_kernel_grad", lambda *args: True)
    monkeypatch.setattr(kernel_grad_mod, "use_flat_kernel_grad", lambda *args: False)
    _assert_conv_fast_grads_equal_lax(stride=1, padding=1, cout=2)


@pytest.mark.parametrize("k,pads,hw,cin,cout", [(4, ((1, 1), (1, 1)), (7, 6), 64, 1), (3, ((0, 2), (1, 0)), (8, 9), 5, 3),
                                                (1, ((0, 0), (0, 0)), (4, 5), 3, 2), (7, ((0, 0), (0, 0)), (9, 8), 4, 3)])
def test_kernel_grad_flat_equals_the_conv_kernel_vjp(k, pads, hw, cin, cout):
    """One GEMM over k*k shifted copies of g = XLA's kernel VJP of a stride-1 conv (batch 2: the
    shifts must not cross from one image into the next)."""
    x = jax.random.normal(jax.random.key(k + 7), (2, *hw, cin))
    g, expected = _lax_kernel_vjp(x, k, 1, pads, cout, jax.random.key(k + 8))
    chex.assert_trees_all_close(jax.jit(kernel_grad_flat, static_argnums=(2, 3))(x, g, k, pads), expected,
                                rtol=1e-5, atol=1e-4)
    assert float(jnp.abs(expected).max()) > 1.0


def test_flat_kernel_grad_rule_and_conv_fast_through_it(monkeypatch):
    """Flat for stride-1 convs with few output values per pixel and tap (the FPN's 32->3 output conv,
    the PatchGAN's 512->1 one), never strided; conv_fast's gradients through it equal lax's."""
    assert use_flat_kernel_grad(3, 1, 3)
    assert use_flat_kernel_grad(4, 1, 1)
    assert not use_flat_kernel_grad(4, 2, 1)
    assert not use_flat_kernel_grad(7, 1, 3)  # the ResNet's output conv: 147 shifted channels
    assert not use_flat_kernel_grad(3, 1, 64)
    monkeypatch.setattr(kernel_grad_mod, "use_flat_kernel_grad", lambda *args: True)
    _assert_conv_fast_grads_equal_lax(stride=1, padding=1, cout=2)


# ----------------------------------------------------------------------------- GEMM paths (few pixels)
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("shape", [(1, 1, 1), (2, 2, 3), (1, 4, 4)])
def test_matmul_transposed_conv_equals_reference(case, shape):
    args = _inputs(case, 6, 5, shape=shape)
    y_mm, (dx_mm, dk_mm) = _value_and_grads(conv_transpose_matmul, *args)
    y_ref, (dx_ref, dk_ref) = _value_and_grads(conv_transpose_reference, *args)
    chex.assert_trees_all_close(y_mm, y_ref, rtol=1e-5, atol=1e-5)
    chex.assert_trees_all_close(dx_mm, dx_ref, rtol=1e-5, atol=1e-4)
    chex.assert_trees_all_close(dk_mm, dk_ref, rtol=1e-5, atol=1e-4)
    assert float(jnp.abs(dk_ref).max()) > 1.0


def test_conv_transpose_dispatches_small_inputs_to_the_gemm():
    """Few input pixels (B*H*W <= Cin) take the GEMM path, many the custom-VJP conv: both equal the reference."""
    for shape, cin in [((1, 2, 2), 16), ((2, 5, 7), 3)]:
        assert use_matmul(shape[0] * shape[1] * shape[2], cin) == (cin == 16)
        args = _inputs("k4s2p1", cin, 4, shape=shape)
        y, (dx, dk) = _value_and_grads(conv_transpose, *args)
        y_ref, (dx_ref, dk_ref) = _value_and_grads(conv_transpose_reference, *args)
        chex.assert_trees_all_close((y, dx, dk), (y_ref, dx_ref, dk_ref), rtol=1e-5, atol=1e-4)


def _lax_conv(x, kernel, stride, padding, groups=1):
    return jax.lax.conv_general_dilated(x, kernel, (stride, stride), ((padding, padding),) * 2,
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=groups)


def _lax_kernel_vjp(x, k, stride, pads, cout, key):
    """(g, XLA's kernel VJP for cotangent g) of the k x k conv of x with `stride` and `pads`; g ~ N(0, 1)."""
    def conv(w):
        return jax.lax.conv_general_dilated(x, w, (stride, stride), pads, dimension_numbers=("NHWC", "HWIO", "NHWC"))

    y, vjp = jax.vjp(conv, jnp.zeros((k, k, x.shape[-1], cout)))
    g = jax.random.normal(key, y.shape)
    return g, vjp(g)[0]


def _assert_conv_fast_grads_equal_lax(stride, padding, cout):
    """conv_fast's input and kernel gradients (4x4 kernel, 4 input channels) equal lax autodiff's."""
    x = jax.random.normal(jax.random.key(1), (2, 7, 6, 4))
    kernel = jax.random.normal(jax.random.key(2), (4, 4, 4, cout))
    g = jax.random.normal(jax.random.key(3), _lax_conv(x, kernel, stride, padding).shape)

    def grads(op):
        return jax.jit(jax.grad(lambda x, w: jnp.sum(op(x, w, stride, padding) * g), argnums=(0, 1)))(x, kernel)

    chex.assert_trees_all_close(grads(conv_fast), grads(_lax_conv), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("k,s,p,hw", [(4, 2, 1, (2, 2)), (4, 2, 1, (5, 7)), (3, 1, 1, (3, 4)), (1, 1, 0, (2, 3)),
                                      (7, 1, 3, (4, 4)), (3, 2, 0, (7, 5))])
def test_conv_patches_equals_lax_conv(k, s, p, hw):
    kx, kk, kg = jax.random.split(jax.random.key(k * 10 + s), 3)
    x = jax.random.normal(kx, (2, *hw, 5))
    kernel = jax.random.normal(kk, (k, k, 5, 3))
    y_ref = _lax_conv(x, kernel, s, p)
    g = jax.random.normal(kg, y_ref.shape)

    def value_and_grads(op):
        return jax.jit(jax.value_and_grad(lambda x, w: jnp.sum(op(x, w, s, p) * g), argnums=(0, 1)))(x, kernel)

    chex.assert_trees_all_close(value_and_grads(conv_patches), value_and_grads(_lax_conv), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("hw,groups", [((2, 2), 1), ((16, 16), 1), ((4, 4), 2)])
def test_conv_module_matches_flax_conv(hw, groups):
    """Conv has nn.Conv's parameters and values on both paths (GEMM for 2x2 -> 1x1 out, conv for 16x16)."""
    x = jax.random.normal(jax.random.key(0), (1, *hw, 8))
    ours = Conv(16, 4, 2, 1, groups=groups)
    flax_conv = nn.Conv(16, (4, 4), strides=2, padding=((1, 1), (1, 1)), feature_group_count=groups)
    params = ours.init(jax.random.key(1), x)
    params["params"]["bias"] = jax.random.normal(jax.random.key(2), (16,))
    chex.assert_trees_all_equal_shapes(params, flax_conv.init(jax.random.key(1), x))
    chex.assert_trees_all_close(ours.apply(params, x), flax_conv.apply(params, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("k,s,p,hw", [(4, 2, 1, (9, 12)), (4, 1, 1, (7, 6)), (3, 1, 1, (5, 8)), (7, 1, 3, (6, 6)),
                                      (3, 1, 0, (6, 9)), (4, 1, 0, (7, 7)), (7, 1, 0, (9, 8)),
                                      (3, 2, 1, (8, 7)), (1, 1, 0, (4, 5))])
def test_conv_fast_first_and_second_derivatives_equal_lax(k, s, p, hw):
    """conv_fast: values, gradients and the gradient-penalty double backward (d/dW and d/dx of
    ||d<g, conv(x, W)>/dx||^2) equal plain lax.conv autodiff."""
    kx, kk, kg = jax.random.split(jax.random.key(k * 100 + s * 10 + p), 3)
    x = jax.random.normal(kx, (2, *hw, 4))
    kernel = jax.random.normal(kk, (k, k, 4, 3))
    g = jax.random.normal(kg, _lax_conv(x, kernel, s, p).shape)

    def penalty_grads(op):
        def penalty(x, w):
            input_grad = jax.grad(lambda x: jnp.sum(jnp.tanh(op(x, w, s, p)) * g))(x)
            return jnp.sum(input_grad ** 2)
        return jax.jit(jax.value_and_grad(penalty, argnums=(0, 1)))(x, kernel)

    def first(op):
        return jax.jit(jax.value_and_grad(lambda x, w: jnp.sum(op(x, w, s, p) * g), argnums=(0, 1)))(x, kernel)

    chex.assert_trees_all_close(first(conv_fast), first(_lax_conv), rtol=1e-5, atol=1e-4)
    fast, ref = penalty_grads(conv_fast), penalty_grads(_lax_conv)
    chex.assert_trees_all_close(fast, ref, rtol=1e-4, atol=1e-3)
    assert float(jnp.abs(ref[1][1]).max()) > 1.0


@pytest.mark.parametrize("k,s,pads,hw", [(4, 1, ((1, 1), (1, 1)), (7, 6)), (3, 2, ((1, 0), (1, 0)), (8, 9)),
                                         (4, 2, ((1, 1), (1, 1)), (9, 12)), (7, 1, ((0, 0), (0, 0)), (9, 8))])
@pytest.mark.parametrize("cin,cout", [(5, 6), (6, 2)])
def test_kernel_grad_taps_equals_the_conv_kernel_vjp(k, s, pads, hw, cin, cout):
    """One GEMM per tap = XLA's kernel VJP of lax.conv_general_dilated, asymmetric padding included
    (both orders of the per-tap product: Cin < Cout and Cin >= Cout)."""
    kx, _, kg = jax.random.split(jax.random.key(k * 10 + s), 3)
    x = jax.random.normal(kx, (2, *hw, cin))
    g, expected = _lax_kernel_vjp(x, k, s, pads, cout, kg)
    chex.assert_trees_all_close(kernel_grad_taps(x, g, k, s, pads), expected, rtol=1e-5, atol=1e-4)
    assert float(jnp.abs(expected).max()) > 1.0


def test_tap_kernel_grad_rule():
    """Per-tap kernel gradients for wide outputs or small slices; XLA's form for few output channels
    over a large input (the ResNet's 7x7 64->3 output conv at 256x256), where k*k input slices cost more."""
    assert use_tap_kernel_grad(4, 31 * 31, 256, 512)
    assert use_tap_kernel_grad(4, 30 * 30, 512, 1)
    assert not use_tap_kernel_grad(7, 256 * 256, 64, 3)
    assert use_tap_kernel_grad(7, 256 * 256, 3, 64)


@pytest.mark.parametrize("taps", [True, False])
def test_both_kernel_gradient_forms_equal_reference(taps, monkeypatch):
    """conv_fast and conv_transpose with the per-tap kernel gradient and with XLA's (the rule forced)."""
    monkeypatch.setattr(kernel_grad_mod, "use_tap_kernel_grad", lambda *args: taps)
    _assert_conv_fast_grads_equal_lax(stride=2, padding=1, cout=3)
    for case in CASES:
        args = _inputs(case, 3, 5)
        _, (dx, dk) = _value_and_grads(conv_transpose, *args)
        _, (dx_ref, dk_ref) = _value_and_grads(conv_transpose_reference, *args)
        chex.assert_trees_all_close((dx, dk), (dx_ref, dk_ref), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("case", list(CASES))
def test_conv_transpose_second_derivatives_equal_reference(case):
    """A gradient penalty through a transposed conv (d/dx and d/dW of ||d<g, T_W(x)>/dx||^2)
    equals lax.conv_transpose autodiff: the custom rules hold at second order too."""
    x, kernel, g, strides, padding, output_padding = _inputs(case, 3, 4)

    def penalty_grads(op):
        def penalty(x, w):
            input_grad = jax.grad(lambda x: jnp.sum(jnp.tanh(op(x, w, strides, padding, output_padding)) * g))(x)
            return jnp.sum(input_grad ** 2)
        return jax.jit(jax.value_and_grad(penalty, argnums=(0, 1)))(x, kernel)

    fast, ref = penalty_grads(conv_transpose), penalty_grads(conv_transpose_reference)
    chex.assert_trees_all_close(fast, ref, rtol=1e-4, atol=1e-3)
    assert float(jnp.abs(ref[1][1]).max()) > 1.0


# ----------------------------------------------------------------------------- every impl vs plain lax
# The zoo's conv shapes, narrowed: (kernel, stride, padding, groups, Cin, Cout, input H x W), batch 2.
ZOO_CONVS = {
    "unet_down": (4, 2, 1, 1, 3, 4, (8, 8)),
    "unet_inner_gemm": (4, 2, 1, 1, 8, 16, (2, 2)),  # 2 output pixels <= 16 channels: the GEMM form
    "patchgan_stride1": (4, 1, 1, 1, 4, 8, (6, 6)),
    "patchgan_output": (4, 1, 1, 1, 64, 1, (5, 5)),  # flat kernel gradient
    "resnet_stem_valid": (7, 1, 0, 1, 3, 4, (10, 10)),  # after reflect padding: 'valid'
    "resnet_block_valid": (3, 1, 0, 1, 4, 4, (6, 6)),
    "resnet_down": (3, 2, 1, 1, 4, 8, (8, 8)),
    "pointwise": (1, 1, 0, 1, 4, 6, (4, 4)),
    "fpn_3x3": (3, 1, 1, 1, 4, 4, (6, 6)),
    "fpn_smooth": (3, 1, 1, 1, 8, 4, (6, 6)),  # per-row kernel gradient
    "fpn_output": (3, 1, 1, 1, 4, 3, (6, 6)),  # flat kernel gradient
    "depthwise": (3, 1, 1, 6, 6, 6, (6, 6)),
    "depthwise_stride2": (3, 2, 1, 6, 6, 6, (8, 8)),
    "nafnet_down": (2, 2, 0, 1, 4, 8, (6, 6)),
}
# (kernel, stride, padding, output_padding, Cin, Cout, input H x W)
ZOO_TRANSPOSED = {
    "unet_up": (4, 2, 1, 0, 4, 3, (4, 5)),  # RGB output: the lhs-dilated form
    "unet_up_wide": (4, 2, 1, 0, 4, 8, (4, 5)),  # by phases
    "unet_inner_gemm": (4, 2, 1, 0, 8, 4, (1, 1)),  # 2 input pixels <= 8 channels: the GEMM form
    "resnet_up": (3, 2, 1, 1, 4, 8, (5, 4)),
    "resnet_up_rgb": (3, 2, 1, 1, 4, 3, (5, 4)),  # uneven lax pads (1, 2): the 'tflite' form pads (2, 2), crops
}


def _orders_of_derivatives(op, x, kernel, key):
    """(value, d/dx and d/dW of <g, op>, d/dx and d/dW of the gradient penalty ||d<g, tanh op>/dx||^2)."""
    g = jax.random.normal(key, jax.eval_shape(op, x, kernel).shape)

    def first(x, w):
        return jnp.sum(op(x, w) * g)

    def penalty(x, w):
        return jnp.sum(jax.grad(lambda x: jnp.sum(jnp.tanh(op(x, w)) * g))(x) ** 2)

    @jax.jit
    def run(x, w):
        return op(x, w), jax.grad(first, (0, 1))(x, w), jax.grad(penalty, (0, 1))(x, w)

    return run(x, kernel)


def _assert_close_scaled(actual, expected, rtol=1e-4):
    """Each leaf within rtol of its largest reference entry, and that entry not zero."""
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        scale = float(jnp.abs(e).max())
        assert scale > 1e-3
        np.testing.assert_allclose(np.asarray(a), np.asarray(e), rtol=rtol, atol=rtol * scale)


@pytest.mark.parametrize("impl", ["xla", "cpu_fast", "tflite"])
@pytest.mark.parametrize("case", list(ZOO_CONVS))
def test_conv2d_every_impl_equals_lax_to_second_order(case, impl):
    k, s, p, groups, cin, cout, hw = ZOO_CONVS[case]
    kx, kk, kg = jax.random.split(jax.random.key(len(case)), 3)
    x = jax.random.normal(kx, (2, *hw, cin))
    kernel = jax.random.normal(kk, (k, k, cin // groups, cout))
    ours = _orders_of_derivatives(lambda x, w: ops.conv2d(x, w, s, p, groups, impl=impl), x, kernel, kg)
    ref = _orders_of_derivatives(lambda x, w: jax.lax.conv_general_dilated(
        x, w, (s, s), ((p, p), (p, p)), dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=groups),
        x, kernel, kg)
    _assert_close_scaled(ours, ref)


@pytest.mark.parametrize("impl", ["xla", "cpu_fast", "tflite"])
@pytest.mark.parametrize("case", list(ZOO_TRANSPOSED))
def test_conv2d_transpose_every_impl_equals_lax_to_second_order(case, impl):
    k, s, p, op, cin, cout, hw = ZOO_TRANSPOSED[case]
    kx, kk, kg = jax.random.split(jax.random.key(len(case)), 3)
    x = jax.random.normal(kx, (2, *hw, cin))
    kernel = jax.random.normal(kk, (k, k, cin, cout))
    ours = _orders_of_derivatives(lambda x, w: ops.conv2d_transpose(x, w, s, p, op, impl=impl), x, kernel, kg)
    ref = _orders_of_derivatives(lambda x, w: jax.lax.conv_transpose(
        x, w, (s, s), [(k - 1 - p, k - 1 - p + op)] * 2, dimension_numbers=("NHWC", "HWIO", "NHWC")), x, kernel, kg)
    _assert_close_scaled(ours, ref)


@pytest.mark.parametrize("impl", ["xla", "cpu_fast", "tflite"])
@pytest.mark.parametrize("hw", [(6, 8), (7, 5)])
def test_max_pool_every_impl_equals_flax_max_pool(impl, hw):
    """Values (odd sides: last row / column dropped) and, on tie-free input, the gradient."""
    x = jax.random.permutation(jax.random.key(0), jnp.arange(2 * hw[0] * hw[1] * 3, dtype=jnp.float32))
    x = x.reshape(2, *hw, 3)  # distinct values: no ties
    flax_pool = lambda x: nn.max_pool(x, (2, 2), strides=(2, 2))  # noqa: E731
    ours = lambda x: ops.max_pool_2x2(x, impl=impl)  # noqa: E731
    np.testing.assert_array_equal(ours(x), flax_pool(x))
    g = jax.random.normal(jax.random.key(1), flax_pool(x).shape)
    grad = lambda pool: jax.grad(lambda x: jnp.sum(pool(x) * g))(x)  # noqa: E731
    np.testing.assert_array_equal(grad(ours), grad(flax_pool))
    assert int(jnp.sum(grad(ours) != 0)) == g.size  # one entry per window


# ----------------------------------------------------------------------------- dispatch
@pytest.mark.parametrize("backend,expected", [("cpu", "cpu_fast"), ("gpu", "xla"), ("tpu", "xla")])
def test_auto_picks_by_backend(backend, expected, monkeypatch):
    monkeypatch.delenv(ops.ENV_VAR, raising=False)
    monkeypatch.setattr(jax, "default_backend", lambda: backend)
    assert ops.resolve() == ops.resolve("auto") == expected
    with ops.conv_impl("auto"):
        assert ops.resolve() == expected
    assert ops.on_cpu() == (backend == "cpu")


def test_env_var_refines_auto_and_explicit_choices_win(monkeypatch):
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    monkeypatch.setenv(ops.ENV_VAR, "cpu_fast")
    assert ops.resolve() == "cpu_fast"
    with ops.conv_impl("xla"):
        assert ops.resolve() == "xla"
        with ops.conv_impl("cpu_fast"):
            assert ops.resolve() == "cpu_fast"
        assert ops.resolve() == "xla"
    assert ops.resolve("xla") == "xla"
    monkeypatch.setenv(ops.ENV_VAR, "fast")
    with pytest.raises(ValueError, match="JAXGAN_CONV_IMPL must be one of"):
        ops.resolve()
    with pytest.raises(ValueError, match="conv_impl must be one of"):
        ops.conv_impl("gpu").__enter__()


@pytest.mark.parametrize("backend", ["gpu", "tpu"])
def test_gpu_and_tpu_trace_plain_lax(backend, monkeypatch):
    """With the backend reported as GPU / TPU, a net's forward and backward hold no custom VJP, no
    GEMM form and the transposed conv is lax's lhs-dilated conv; on CPU the rewrites are there (the
    lhs-dilated form only where a transposed conv has RGB outputs, `use_phases`)."""
    monkeypatch.delenv(ops.ENV_VAR, raising=False)
    from jaxgan.nets import make_generator

    g = make_generator("unet", depth=3, base_width=8)
    x = jnp.zeros((1, 16, 16, 3))
    variables = g.init(jax.random.key(0), x)

    def traced():
        loss = lambda v: jnp.sum(g.apply(v, x))  # noqa: E731
        return jax.make_jaxpr(jax.grad(loss))(variables)

    monkeypatch.setattr(jax, "default_backend", lambda: "cpu")
    cpu = str(traced())  # the printed jaxpr includes every sub-jaxpr (custom VJP rules, loops)
    monkeypatch.setattr(jax, "default_backend", lambda: backend)
    plain = str(traced())
    # lhs-dilated on CPU: the RGB up-conv and the RGB down-conv's input gradient (3 outputs each)
    assert "custom_vjp" in cpu and cpu.count("lhs_dilation=(2, 2)") == 2
    assert "custom_vjp" not in plain and "dot_general" not in plain
    assert "lhs_dilation=(2, 2)" in plain  # lax's transposed conv and strided input gradients


# ----------------------------------------------------------------------------- a whole train step
@pytest.mark.parametrize("generator,options", [("unet", dict(depth=2))])
def test_train_step_xla_equals_cpu_fast(generator, options, monkeypatch):
    """One fused WGAN-GP train step (2 critic updates, gradient penalty through every D conv) with
    train.conv_impl 'xla' and 'cpu_fast': the same metrics and updates within float32 tolerance.
    Plain SGD instead of Adam, whose first step (~lr x sign(grad)) would amplify rounding noise in
    gradients that are zero in exact arithmetic (a bias before an instance norm)."""
    import optax
    from train_helpers import fixed_batch, make_modules, tiny_config

    from jaxgan.train import state as state_lib
    from jaxgan.train import steps

    monkeypatch.delenv(ops.ENV_VAR, raising=False)
    config = tiny_config("deblur", adversarial="wgan", gradient_penalty="wgan_gp", n_critic=2)
    config.generator.name = generator
    with config.generator.unlocked():
        config.generator.options = dict(in_channels=3, out_channels=3, base_width=4, norm="instance", **options)
    g, d = make_modules(config)
    batch = fixed_batch(config)
    state = state_lib.create_state(config, g, d, batch, jax.random.key(0))
    sgd = optax.sgd(1e-3)
    state = state.replace(g=state.g.replace(tx=sgd, opt_state=sgd.init(state.g.params)),
                          d=state.d.replace(tx=sgd, opt_state=sgd.init(state.d.params)))
    results = {}
    for impl in ("xla", "cpu_fast"):
        config.train.conv_impl = impl
        new, metrics = jax.jit(steps.make_step_fns(config).train_step)(state, batch, {})
        updates = jax.tree.map(lambda a, b: (a - b) / 1e-3, (new.g.params, new.d.params),
                               (state.g.params, state.d.params))
        results[impl] = metrics, updates
    (m_xla, u_xla), (m_fast, u_fast) = results["xla"], results["cpu_fast"]
    assert float(m_xla["d_penalty"]) > 0
    chex.assert_trees_all_close(m_fast, m_xla, rtol=1e-4, atol=1e-5)
    for net_fast, net_xla in zip(u_fast, u_xla):  # G's updates, then D's (two critic steps)
        scale = max(float(jnp.abs(leaf).max()) for leaf in jax.tree.leaves(net_xla))
        assert scale > 1e-3
        chex.assert_trees_all_close(net_fast, net_xla, rtol=1e-4, atol=1e-4 * scale)


@pytest.mark.parametrize("backend,unrolled", [("cpu", True), ("gpu", False)])
def test_critic_loop_unrolled_on_cpu_only(backend, unrolled, monkeypatch):
    """n_critic > 1: the critic updates after the first (a scan of length n_critic - 1) are unrolled
    on the CPU backend, a rolled loop elsewhere."""
    from train_helpers import fixed_batch, make_modules, tiny_config

    from jaxgan.train import state as state_lib
    from jaxgan.train import steps

    config = tiny_config("deblur", adversarial="wgan", n_critic=3)
    g, d = make_modules(config)
    batch = fixed_batch(config)
    state = jax.eval_shape(lambda: state_lib.create_state(config, g, d, batch, jax.random.key(0)))
    monkeypatch.setattr(jax, "default_backend", lambda: backend)
    jaxpr = jax.make_jaxpr(steps.make_step_fns(config).train_step)(state, batch, {})
    (critic_loop,) = [e for e in jaxpr.jaxpr.eqns if e.primitive.name == "scan" and e.params["length"] == 2]
    assert critic_loop.params["unroll"] == (2 if unrolled else 1)


def test_bad_conv_impl_in_config_is_a_clear_error():
    from train_helpers import tiny_config

    from jaxgan.train import steps

    config = tiny_config("deblur")
    config.train.conv_impl = "cudnn"
    with pytest.raises(ValueError, match="train.conv_impl must be one of"):
        steps.make_step_fns(config)
