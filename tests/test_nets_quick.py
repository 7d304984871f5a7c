"""jaxgan.nets.nafnet (the quick-deblurring generator): pixel (un)shuffle layout, identity at
initialisation, exact parameter count, any input size, the image-level channel attention, the
Wiener-deconvolution candidates (line kernels, closed forms, deblurring a known blur), options."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.nets import count_params
from scipy.signal import fftconvolve

from jaxgan.nets.nafnet import NAFBlock, NAFNet, depth_to_space, line_kernels, space_to_depth, wiener_deconvolve

KEY = jax.random.key(0)
TINY = dict(base_width=4, depth=2, blocks=1, middle_blocks=1, space_to_depth=2)


def random_images(shape, seed=0):
    return jnp.asarray(np.random.default_rng(seed).uniform(-1, 1, shape), jnp.float32)


def randomised(variables, scale=0.3, seed=1):
    """The same tree with every leaf ~ N(0, scale) (beta, gamma and the last conv become non-zero)."""
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda a: jnp.asarray(scale * rng.standard_normal(a.shape), a.dtype), variables)


def test_space_to_depth_layout_and_inverse():
    x = random_images((2, 6, 4, 3))
    y = space_to_depth(x, 2)
    assert y.shape == (2, 3, 2, 12)
    for dy in range(2):
        for dx in range(2):
            chex.assert_trees_all_equal(y[..., (dy * 2 + dx) * 3:(dy * 2 + dx + 1) * 3], x[:, dy::2, dx::2])
    chex.assert_trees_all_equal(depth_to_space(y, 2), x)


@pytest.mark.parametrize("options", [TINY, dict(TINY, norm="none", space_to_depth=1, depth=1),
                                     dict(TINY, wiener_angles=2, wiener_lengths=(3, 5), wiener_size=7)])
def test_untrained_net_is_the_identity_at_any_size(options):
    g = NAFNet(**options)
    x = random_images((2, 37, 45, 3))
    variables = g.init(KEY, x)
    out = jax.jit(lambda v, x: g.apply(v, x))(variables, x)
    chex.assert_trees_all_equal(out, x)


def test_trained_like_net_keeps_shape_and_range_and_changes_the_image():
    g = NAFNet(**TINY)
    x = random_images((1, 19, 30, 3))
    variables = randomised(g.init(KEY, x))
    out = jax.jit(lambda v, x: g.apply(v, x))(variables, x)
    chex.assert_shape(out, x.shape)
    chex.assert_tree_all_finite(out)
    assert float(jnp.max(jnp.abs(out))) <= 1.0
    assert float(jnp.mean(jnp.abs(out - x))) > 1e-3


def test_parameter_count_matches_closed_form():
    # one NAF block of c channels: 3x3 conv c->2c (18c^2 + 2c), attention and projection 1x1 c->c
    # (2 (c^2 + c)), feed-forward 1x1 c->2c and 2c->c... (2c^2 + 2c) + (c^2 + c), beta and gamma (2c),
    # two LayerNorms (4c): 23 c^2 + 13 c.
    c = 8
    g = NAFNet(base_width=c, depth=0, middle_blocks=1, space_to_depth=1)
    block = 23 * c * c + 13 * c
    intro, outro = 9 * 3 * c + c, 9 * c * 3 + 3
    assert count_params(g, (1, 8, 8, 3)) == intro + block + outro
    assert count_params(NAFBlock(norm="none"), (1, 4, 4, c)) == block - 4 * c


def test_channel_attention_carries_image_level_information_everywhere():
    # depth 0, one block, no space-to-depth: the convs alone reach 3 px; only the spatial mean of the
    # attention lets a change in one corner reach the opposite corner.
    g = NAFNet(base_width=4, depth=0, middle_blocks=1, space_to_depth=1)
    x = random_images((1, 16, 16, 3))
    variables = randomised(g.init(KEY, x), scale=0.5)
    apply = jax.jit(lambda v, x: g.apply(v, x))
    moved = x.at[0, 0, 0].set(-x[0, 0, 0])
    delta = jnp.abs(apply(variables, moved) - apply(variables, x))
    assert float(jnp.max(delta[0, 8:, 8:])) > 1e-6
    no_attention = jax.tree_util.tree_map_with_path(
        lambda p, a: jnp.zeros_like(a) if "channel_attention" in jax.tree_util.keystr(p) and "bias" in
        jax.tree_util.keystr(p) else a, variables)
    no_attention["params"]["middle_0"]["channel_attention"]["kernel"] = jnp.zeros_like(
        variables["params"]["middle_0"]["channel_attention"]["kernel"])
    delta = jnp.abs(apply(no_attention, moved) - apply(no_attention, x))
    assert float(jnp.max(delta[0, 8:, 8:])) == 0.0


def test_bad_options_raise_value_error_naming_them():
    with pytest.raises(ValueError, match="out_channels"):
        NAFNet(out_channels=4)  # more than the input channels it adds to
    with pytest.raises(ValueError, match="norm"):
        NAFNet(norm="batch")
    with pytest.raises(ValueError, match="space_to_depth"):
        NAFNet(space_to_depth=0)
    with pytest.raises(ValueError, match="NAFNet expects"):
        g = NAFNet(**TINY)
        g.init(KEY, jnp.zeros((1, 8, 8, 4)))


def test_line_kernels_are_centred_normalised_segments():
    k = line_kernels(4, (1, 5, 9), 9)
    assert k.shape == (12, 9, 9)
    np.testing.assert_allclose(k.sum((1, 2)), 1.0, rtol=1e-6)
    np.testing.assert_allclose(k, k[:, ::-1, ::-1], atol=1e-6)  # centred: point-symmetric
    delta = np.zeros((9, 9), np.float32)
    delta[4, 4] = 1.0
    np.testing.assert_allclose(k[0], delta, atol=1e-6)  # length 1 is a delta
    assert np.all(k[2][4] > 0.05) and np.all(np.delete(k[2], 4, axis=0) < 1e-6)  # angle 0, length 9: middle row
    assert np.all(k[8][:, 4] > 0.05) and np.all(np.delete(k[8], 4, axis=1) < 1e-6)  # 90 degrees: middle column
    with pytest.raises(ValueError, match="wiener_lengths"):
        line_kernels(2, (11,), 9)


def test_wiener_deconvolution_closed_forms():
    y = random_images((2, 20, 24, 3))
    kernels = jnp.asarray(line_kernels(3, (1, 7), 9))
    nsr = jnp.full((6,), 0.25)
    out = wiener_deconvolve(y, kernels, nsr)
    chex.assert_shape(out, (2, 20, 24, 18))
    # delta kernel: X = Y / (1 + nsr)
    np.testing.assert_allclose(out[..., :3], y / 1.25, atol=1e-5)
    # any kernel summing to 1 keeps a constant image constant, scaled by 1 / (1 + nsr)
    flat = wiener_deconvolve(jnp.full((1, 16, 16, 1), 0.6), kernels, nsr)
    np.testing.assert_allclose(flat, 0.6 / 1.25, atol=1e-5)


def test_wiener_deconvolution_with_the_true_kernel_undoes_a_blur():
    rng = np.random.default_rng(0)
    sharp = fftconvolve(rng.uniform(-1, 1, (80, 80)), np.ones((3, 3)) / 9, mode="same")
    kernels = line_kernels(4, (9,), 15)  # angles 0, 45, 90, 135 degrees
    pad = 30
    blurred = fftconvolve(np.pad(sharp, pad, mode="symmetric"), kernels[1], mode="same")[pad:-pad, pad:-pad]
    out = wiener_deconvolve(jnp.asarray(blurred, jnp.float32)[None, ..., None], jnp.asarray(kernels),
                            jnp.full((4,), 0.03))
    inner = (slice(10, -10), slice(10, -10))
    errors = [float(np.abs(np.asarray(out[0, ..., i])[inner] - sharp[inner]).mean()) for i in range(4)]
    blurred_error = float(np.abs(blurred[inner] - sharp[inner]).mean())
    assert errors[1] < 0.9 * min(blurred_error, *errors[:1], *errors[2:]), (errors, blurred_error)


def test_residual_from_refines_the_prior_channels():
    g = NAFNet(in_channels=6, out_channels=3, residual_from=3, **TINY)
    x = random_images((2, 20, 24, 6))
    variables = g.init(KEY, x)
    chex.assert_trees_all_equal(g.apply(variables, x), x[..., 3:])  # identity on the prior at init
    out = g.apply(randomised(variables), x)
    chex.assert_shape(out, (2, 20, 24, 3))
    with pytest.raises(ValueError, match="residual_from"):
        NAFNet(in_channels=6, out_channels=3, residual_from=4, **TINY).init(KEY, x)


def test_refiner_overfits_one_fixed_batch():
    """deblur_quick's refiner (NAFNet on [blurred, deconvolved], residual on the deconvolution), trained
    on L1 alone on one fixed batch of two real-photo crops: the L1 must fall >= 5x within 150 Adam
    steps. A net whose correction cannot grow (gradient blocked by the zero-initialised blocks and last
    conv, a saturating clip, a residual on the wrong channels) stays near its starting L1."""
    import optax

    from jaxgan import blind_deconvolution as deconv
    from jaxgan.data import photo_blur

    rng = np.random.default_rng(0)
    photo = photo_blur.skimage_photo("astronaut.png")
    inputs, targets = [], []
    for _ in range(2):
        sharp, blurred, kernel = photo_blur.blurred_crop(rng, photo, "realistic", 64)
        b = jnp.asarray(blurred, jnp.float32) / 255.0
        d = jnp.clip(deconv.deconvolve(b, jnp.asarray(kernel), weight=1e-2, iterations=10), 0.0, 1.0)
        inputs.append(np.concatenate([b, d], -1) * 2.0 - 1.0)
        targets.append(sharp / 127.5 - 1.0)
    x, y = jnp.asarray(np.stack(inputs), jnp.float32), jnp.asarray(np.stack(targets), jnp.float32)
    net = NAFNet(in_channels=6, out_channels=3, residual_from=3, base_width=32, depth=3, blocks=1,
                 middle_blocks=2, space_to_depth=4, norm="layer")
    params = net.init(KEY, x)["params"]
    tx = optax.adam(1e-3)

    def l1(p):
        return jnp.mean(jnp.abs(net.apply({"params": p}, x) - y))

    @jax.jit
    def step(p, opt):
        loss, grads = jax.value_and_grad(l1)(p)
        updates, opt = tx.update(grads, opt, p)
        return optax.apply_updates(p, updates), opt, loss

    start = float(l1(params))
    opt = tx.init(params)
    for _ in range(150):
        params, opt, _ = step(params, opt)
    end = float(l1(params))
    assert start > 0.03  # the deconvolution alone is far from the sharp crops
    assert end < start / 5, (start, end)
