"""jaxgan.blind_deconvolution: Fourier conventions against scipy, adjointness, kernel cleaning, non-blind
deconvolution with the true kernel, blind kernel estimation on a real photo with a known blur."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage, signal

from jaxgan import blind_deconvolution as deconv
from jaxgan.data import blur, photo_blur


def _psnr(a, b):
    return 10 * np.log10(1.0 / np.mean((np.clip(a, 0, 1) - b) ** 2))


@pytest.fixture(scope="module")
def photo():
    """A textured gray crop of scikit-image's astronaut, float64 in [0, 1], 160x160."""
    return photo_blur.skimage_photo("astronaut.png").mean(-1)[40:200, 180:340] / 255.0


def _blurred(sharp, kernel, margin):
    """Blurs with jaxgan.data.blur (reflect padding), then drops `margin` px per side, so every
    kept pixel saw real image content (as photo_blur's crops)."""
    out = blur.blur_image(sharp, kernel)
    return out[margin:-margin, margin:-margin], sharp[margin:-margin, margin:-margin]


def test_otf_convolution_is_scipy_circular_convolution():
    rng = np.random.default_rng(0)
    x = rng.random((12, 10))
    k = rng.random((5, 5))  # asymmetric: catches flips and off-by-one centres
    ours = np.asarray(deconv._fft_conv(jnp.asarray(x, jnp.float32), deconv.psf_to_otf(jnp.asarray(k), x.shape)))
    ref = signal.convolve2d(x, k, mode="same", boundary="wrap")
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    # and the same convention as the data synthesis (true convolution, centre k // 2) in the interior
    np.testing.assert_allclose(ours[2:-2, 2:-2], blur.blur_image(x, k)[2:-2, 2:-2], atol=1e-5)


def test_divergence_is_minus_the_adjoint_of_gradients():
    rng = np.random.default_rng(1)
    u, gx, gy = (jnp.asarray(rng.standard_normal((9, 7)), jnp.float32) for _ in range(3))
    dx, dy = deconv.gradients(u)
    lhs = float(jnp.sum(dx * gx) + jnp.sum(dy * gy))
    rhs = -float(jnp.sum(u * deconv.divergence(gx, gy)))
    assert lhs == pytest.approx(rhs, rel=1e-4)


def test_pyramid_kernel_sizes():
    assert deconv.pyramid_kernel_sizes(31) == [3, 7, 15, 31]
    assert deconv.pyramid_kernel_sizes(7) == [3, 7]
    assert deconv.pyramid_kernel_sizes(5) == [3, 5]
    assert deconv.pyramid_kernel_sizes(3) == [3]


def test_clean_kernel_nonnegative_thresholded_centred_normalised():
    k = np.zeros((9, 9), np.float32)
    k[2, 2:5] = [1.0, 2.0, 1.0]  # off-centre segment
    k[6, 6] = 0.1  # below 0.2 x max: dropped
    k[0, 8] = -3.0  # negative: dropped
    out = np.asarray(deconv.clean_kernel(jnp.asarray(k), 0.2))
    assert out.min() >= 0 and out.sum() == pytest.approx(1.0, abs=1e-6)
    rows, cols = np.mgrid[:9, :9]
    assert (out * rows).sum() == pytest.approx(4.0, abs=1e-4)
    assert (out * cols).sum() == pytest.approx(4.0, abs=1e-4)
    np.testing.assert_allclose(out[4, 3:6], [0.25, 0.5, 0.25], atol=1e-6)  # moved, shape kept
    assert np.count_nonzero(out > 1e-6) == 3
    delta = np.asarray(deconv.clean_kernel(-jnp.ones((5, 5)), 0.2))
    assert delta[2, 2] == 1.0 and delta.sum() == 1.0


def test_edgetaper_keeps_the_middle_and_smooths_the_wrap():
    rng = np.random.default_rng(2)
    x = np.tile(np.linspace(0, 1, 40), (40, 1)) + 0.01 * rng.standard_normal((40, 40))
    out = np.asarray(deconv.edgetaper(jnp.asarray(x, jnp.float32), 7))
    np.testing.assert_allclose(out[8:-8, 8:-8], x[8:-8, 8:-8], atol=1e-6)
    jump = lambda a: np.abs(a[:, 0] - a[:, -1]).mean()  # noqa: E731
    assert jump(out) < 0.2 * jump(x)


def test_l0_latent_with_identity_kernel_and_tiny_weight_is_the_image(photo):
    v = jnp.asarray(photo[:64, :64], jnp.float32)
    otf = deconv.psf_to_otf(jnp.ones((1, 1)), v.shape)
    u = deconv.l0_latent(v, otf, lam=1e-7)
    np.testing.assert_allclose(np.asarray(u), photo[:64, :64], atol=2e-3)


def test_l0_latent_flattens_weak_gradients(photo):
    v = jnp.asarray(photo[:64, :64], jnp.float32)
    otf = deconv.psf_to_otf(jnp.ones((1, 1)), v.shape)

    def flat_fraction(u):
        gx, gy = (np.abs(np.asarray(g)) < 1e-3 for g in deconv.gradients(u))
        return np.mean(gx & gy)

    assert flat_fraction(v) < 0.05
    assert flat_fraction(deconv.l0_latent(v, otf, lam=2e-2, kappa=2.0)) > 0.5  # piecewise flat
    assert flat_fraction(deconv.l0_latent(v, otf, lam=2e-2)) > 0.3  # kappa 3: a coarser beta ladder


def test_deconvolve_with_the_true_kernel_recovers_the_photo(photo):
    kernel = blur.linear_motion_kernel(9, 30)
    y, sharp = _blurred(photo, kernel, 16)
    x = np.asarray(deconv.deconvolve(jnp.asarray(y, jnp.float32), jnp.asarray(kernel), weight=1e-3, iterations=20))
    assert x.shape == y.shape
    assert _psnr(x, sharp) > _psnr(y, sharp) + 6.0
    # colour images: every channel alike
    rgb = np.stack([y, y, y], -1)
    x3 = np.asarray(deconv.deconvolve(jnp.asarray(rgb, jnp.float32), jnp.asarray(kernel), weight=1e-3, iterations=20))
    np.testing.assert_allclose(x3[..., 1], x, atol=2e-3)  # float32 FFT rounding, amplified by the weak prior


def test_estimate_kernel_finds_a_known_camera_shake(photo):
    kernel = blur.camera_shake_kernel(np.random.default_rng(3), 9, 13)
    y, sharp = _blurred(photo, kernel, 16)  # 128x128
    size = 15
    estimate = np.asarray(jax.jit(lambda v: deconv.estimate_kernel(v, size))(jnp.asarray(y, jnp.float32)))
    assert estimate.shape == (size, size)
    assert estimate.min() >= 0 and estimate.sum() == pytest.approx(1.0, abs=1e-5)
    truth = np.zeros((size, size))
    o = (size - kernel.shape[0]) // 2
    truth[o:o + kernel.shape[0], o:o + kernel.shape[0]] = kernel
    # the right shape: much closer to the truth than the identity or a box of the same extent
    err = np.abs(estimate - truth).sum()
    assert err < 0.8 < np.abs(ndimage.uniform_filter(truth, 5) - truth).sum()
    gain = _psnr(np.asarray(deconv.deconvolve(jnp.asarray(y, jnp.float32), jnp.asarray(estimate))), sharp) - _psnr(y, sharp)
    assert gain > 4.0  # measured: +5.3 dB (the true kernel: +6.1)


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="odd"):
        deconv.estimate_kernel(jnp.zeros((64, 64)), 8)
    with pytest.raises(ValueError, match="too small"):
        deconv.estimate_kernel(jnp.zeros((40, 64)), 31)
