"""Blur synthesis: kernel properties, determinism, extent, and convolution against closed forms."""

import numpy as np
import pytest
from scipy import signal

from jaxgan.data import blur


@pytest.mark.parametrize("extent", [(5, 25), (3, 11), (11, 41)])
def test_camera_shake_kernels_are_normalised_and_within_extent(extent):
    rng = np.random.default_rng(0)
    for _ in range(40):
        k = blur.camera_shake_kernel(rng, *extent)
        assert k.min() >= 0
        np.testing.assert_allclose(k.sum(), 1.0, atol=1e-12)
        assert k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1
        assert extent[0] <= blur.kernel_extent(k) <= extent[1]


def test_kernels_are_centred_on_their_centroid():
    k = blur.camera_shake_kernel(np.random.default_rng(3))
    r = np.arange(k.shape[0]) - k.shape[0] // 2
    np.testing.assert_allclose([(k.sum(1) * r).sum(), (k.sum(0) * r).sum()], [0, 0], atol=1e-9)


def test_kernels_are_deterministic_per_seed():
    a = blur.camera_shake_kernel(np.random.default_rng(7))
    b = blur.camera_shake_kernel(np.random.default_rng(7))
    c = blur.camera_shake_kernel(np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c)


def test_trajectory_has_constant_step_length_and_exposures_are_prefixes():
    path = blur.camera_shake_trajectory(np.random.default_rng(1), num_steps=500, max_length=60.0)
    np.testing.assert_allclose(np.abs(np.diff(path)), 60.0 / 499, rtol=1e-9)
    w = blur.exposure_weights(2000, 1 / 100)
    assert w.sum() == pytest.approx(20.0) and w[:20].min() == 1 and w[20:].max() == 0


def test_splat_preserves_mass_and_centroid():
    pts = np.array([3.25 + 4.5j, 6.0 + 2.75j])
    grid = blur.splat(pts, np.array([1.0, 3.0]), 10)
    assert grid.sum() == pytest.approx(4.0)
    rows, cols = np.mgrid[0:10, 0:10]
    assert (grid * cols).sum() / 4 == pytest.approx((3.25 + 3 * 6.0) / 4)
    assert (grid * rows).sum() / 4 == pytest.approx((4.5 + 3 * 2.75) / 4)


@pytest.mark.parametrize("kind", ["camera_shake", "linear", "gaussian"])
def test_blurring_a_constant_image_leaves_it_constant(kind):
    k = blur.random_kernel(np.random.default_rng(2), kind)
    image = np.full((37, 50, 3), 0.3)
    np.testing.assert_allclose(blur.blur_image(image, k), 0.3, atol=1e-9)


def test_blur_image_equals_direct_convolution_inside_and_keeps_mean():
    rng = np.random.default_rng(4)
    image = rng.uniform(size=(40, 40))
    k = blur.camera_shake_kernel(rng, 5, 11)
    out = blur.blur_image(image, k)
    assert out.shape == image.shape
    direct = signal.convolve2d(image, k, mode="valid")
    p = k.shape[0] // 2
    np.testing.assert_allclose(out[p:-p, p:-p], direct, atol=1e-10)
    assert abs(out.mean() - image.mean()) < 0.01


def test_gaussian_and_linear_kernels():
    g = blur.gaussian_kernel(2.0)
    assert g.shape == (13, 13) and g.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(g, g.T)
    line = blur.linear_motion_kernel(9, 0.0)  # horizontal: one row of support
    rows = np.nonzero(line.any(1))[0]
    assert len(rows) <= 2 and blur.kernel_extent(line) in (9, 10, 11)


def test_synthesize_blur_with_noise_and_jpeg():
    rng = np.random.default_rng(5)
    sharp = (rng.uniform(size=(48, 48, 3)) * 255).astype(np.uint8)
    blurred, kernel = blur.synthesize_blur(rng, sharp, "mild", noise_std=0.02, jpeg_quality=80)
    assert blurred.shape == sharp.shape and blurred.dtype == np.uint8
    assert kernel.dtype == np.float32 and kernel.sum() == pytest.approx(1.0, abs=1e-5)
    assert blurred.astype(float).std() < sharp.astype(float).std()  # blur removes variance
    with pytest.raises(ValueError, match="valid: mild"):
        blur.synthesize_blur(rng, sharp, "extreme")
