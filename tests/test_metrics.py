"""jaxgan.metrics against closed forms and scikit-image, on real photo crops, under jax.jit."""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage
from skimage import data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from jaxgan import metrics


@pytest.fixture(scope="module")
def photos():
    """Real 48x48 RGB crops in [0, 1] (float64): astronaut, its blurred and its noisy versions."""
    sharp = data.astronaut()[90:138, 180:228].astype(np.float64) / 255.0
    blurred = ndimage.gaussian_filter(sharp, sigma=(1.5, 1.5, 0))
    noisy = np.clip(sharp + np.random.default_rng(0).normal(0, 0.08, sharp.shape), 0, 1)
    coffee = data.coffee()[100:148, 200:248].astype(np.float64) / 255.0
    return sharp, blurred, noisy, coffee


# ---- PSNR --------------------------------------------------------------------------------------

def test_psnr_closed_form():
    a = np.full((2, 8, 8, 3), 0.5, np.float32)
    b = a.copy()
    b[0] += 0.1  # MSE 0.01 -> 20 dB
    b[1, ::2] += 0.2  # half the pixels off by 0.2: MSE 0.02 -> 10 log10(50) dB
    got = jax.jit(metrics.psnr)(a, b)
    chex.assert_shape(got, (2,))
    np.testing.assert_allclose(got, [20.0, 10 * math.log10(50.0)], rtol=1e-5)
    got255 = jax.jit(metrics.psnr, static_argnames="data_range")(a * 255, b * 255, data_range=255.0)
    np.testing.assert_allclose(got255, got, rtol=1e-4)
    assert np.isinf(metrics.psnr(a, a)).all()


def test_psnr_matches_skimage(photos):
    sharp, blurred, noisy, _ = photos
    got = jax.jit(metrics.psnr)(np.stack([sharp, sharp]).astype(np.float32),
                                np.stack([blurred, noisy]).astype(np.float32))
    want = [peak_signal_noise_ratio(sharp, x, data_range=1.0) for x in (blurred, noisy)]
    np.testing.assert_allclose(got, want, atol=1e-3)


# ---- SSIM --------------------------------------------------------------------------------------

def test_ssim_matches_skimage(photos):
    sharp, blurred, noisy, coffee = photos
    a = np.stack([sharp, sharp, sharp, blurred])
    b = np.stack([blurred, noisy, coffee, noisy])
    got = jax.jit(metrics.ssim)(a.astype(np.float32), b.astype(np.float32))
    chex.assert_shape(got, (4,))
    want = [structural_similarity(x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                  data_range=1.0, channel_axis=-1) for x, y in zip(a, b)]
    # population statistics: the sample-covariance variant is ~1e-3 off, float32 rounding ~6e-6
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-5)
    assert len(set(np.round(want, 2))) == 4  # four clearly different cases


def test_ssim_identical_is_one_and_small_images_fail(photos):
    sharp = photos[0][None].astype(np.float32)
    np.testing.assert_allclose(jax.jit(metrics.ssim)(sharp, sharp), [1.0], atol=1e-5)
    with pytest.raises(ValueError, match="at least 11x11"):
        metrics.ssim(sharp[:, :8, :8], sharp[:, :8, :8])
    with pytest.raises(ValueError, match="one shape"):
        metrics.ssim(sharp, sharp[:, :20])


# ---- LPIPS -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lpips_vgg():
    return metrics.LPIPS("vgg16")


def test_lpips_zero_for_identical_and_grows_with_blur(lpips_vgg, photos):
    sharp = photos[0] * 2.0 - 1.0  # [-1, 1]
    blurs = [ndimage.gaussian_filter(sharp, sigma=(s, s, 0)) if s else sharp for s in (0.0, 0.7, 1.5, 3.0)]
    a = np.stack([sharp] * 4).astype(np.float32)
    b = np.stack(blurs).astype(np.float32)
    got = np.asarray(lpips_vgg(a, b))
    chex.assert_shape(got, (4,))
    assert abs(got[0]) < 1e-6
    assert all(y > x for x, y in zip(got, got[1:])), got
    np.testing.assert_allclose(lpips_vgg(b, a), got, rtol=1e-4, atol=1e-6)  # symmetric


def test_lpips_function_takes_params_as_argument(lpips_vgg, photos):
    sharp = (photos[0] * 2 - 1)[None].astype(np.float32)
    noisy = (photos[2] * 2 - 1)[None].astype(np.float32)
    params = metrics.load_lpips_params("vgg16")
    np.testing.assert_allclose(metrics.lpips_distance(params, sharp, noisy, net="vgg16"),
                               lpips_vgg(sharp, noisy), rtol=1e-5)
    with pytest.raises(ValueError, match="alexnet"):
        metrics.load_lpips_params("resnet")


# ---- segmentation ------------------------------------------------------------------------------

def test_confusion_matrix_and_scores_by_hand():
    labels = np.array([[[0, 0, 1], [1, 2, 2]]], np.int32)  # (1, 2, 3)
    preds = np.array([[[0, 1, 1], [1, 2, 0]]], np.int32)
    confusion = jax.jit(metrics.confusion_matrix, static_argnums=2)(preds, labels, 3)
    want = np.array([[1, 1, 0],   # true 0: predicted 0 once, 1 once
                     [0, 2, 0],   # true 1: both right
                     [1, 0, 1]])  # true 2: one 0, one 2
    np.testing.assert_array_equal(confusion, want)
    assert confusion.dtype == jnp.int32
    scores = metrics.segmentation_scores(confusion)
    # class 0: TP 1, FP 1, FN 1 -> IoU 1/3, Dice 2/4; class 1: TP 2, FP 1, FN 0 -> 2/3, 4/5;
    # class 2: TP 1, FP 0, FN 1 -> 1/2, 2/3
    np.testing.assert_allclose(scores["iou"], [1 / 3, 2 / 3, 1 / 2])
    np.testing.assert_allclose(scores["mean_iou"], (1 / 3 + 2 / 3 + 1 / 2) / 3)
    np.testing.assert_allclose(scores["dice"], [1 / 2, 4 / 5, 2 / 3])
    np.testing.assert_allclose(scores["mean_dice"], (1 / 2 + 4 / 5 + 2 / 3) / 3)
    np.testing.assert_allclose(scores["pixel_accuracy"], 4 / 6)


def test_confusion_matrix_valid_rows_and_ignored_labels():
    labels = np.array([[[0, 1], [255, 1]], [[1, 1], [1, 1]]], np.int32)  # 255: ignored
    preds = np.array([[[0, 1], [1, 0]], [[0, 0], [0, 0]]], np.int32)
    valid = np.array([True, False])  # second row is eval padding
    confusion = jax.jit(metrics.confusion_matrix, static_argnums=2)(preds, labels, 3, valid)
    np.testing.assert_array_equal(confusion, [[1, 0, 0], [1, 1, 0], [0, 0, 0]])
    scores = metrics.segmentation_scores(confusion)
    # class 2 absent from labels and predictions: nan, and left out of the means
    assert math.isnan(scores["iou"][2]) and math.isnan(scores["dice"][2])
    np.testing.assert_allclose(scores["mean_iou"], (1 / 2 + 1 / 2) / 2)
    np.testing.assert_allclose(scores["mean_dice"], (2 / 3 + 2 / 3) / 2)
    np.testing.assert_allclose(scores["pixel_accuracy"], 2 / 3)
    pixel_valid = np.ones_like(labels, bool)
    pixel_valid[0, 0, 0] = False
    np.testing.assert_array_equal(metrics.confusion_matrix(preds, labels, 3, pixel_valid).sum(), 6)


def test_segmentation_scores_match_random_reference():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, (3, 8, 8))
    preds = np.where(rng.random((3, 8, 8)) < 0.6, labels, rng.integers(0, 4, (3, 8, 8)))
    confusion = np.asarray(metrics.confusion_matrix(jnp.asarray(preds), jnp.asarray(labels), 4))
    scores = metrics.segmentation_scores(confusion)
    for c in range(4):
        inter = np.sum((preds == c) & (labels == c))
        union = np.sum((preds == c) | (labels == c))
        np.testing.assert_allclose(scores["iou"][c], inter / union)
        np.testing.assert_allclose(scores["dice"][c], 2 * inter / (np.sum(preds == c) + np.sum(labels == c)))
    np.testing.assert_allclose(scores["pixel_accuracy"], np.mean(preds == labels))


def test_segmentation_errors():
    with pytest.raises(ValueError, match="one shape"):
        metrics.confusion_matrix(jnp.zeros((1, 2, 2), int), jnp.zeros((1, 2, 3), int), 2)
    with pytest.raises(ValueError, match="valid must have shape"):
        metrics.confusion_matrix(jnp.zeros((2, 2, 2), int), jnp.zeros((2, 2, 2), int), 2, jnp.ones(3, bool))
    with pytest.raises(ValueError, match="square"):
        metrics.segmentation_scores(np.zeros((2, 3)))


@pytest.mark.parametrize("net", ["vgg16", "alexnet"])
def test_lpips_to_reference_equals_pairwise_lpips(net, photos):
    lp = metrics.LPIPS(net)
    reference = np.stack([photos[0], photos[1]]).astype(np.float32) * 2 - 1
    blurred = ndimage.gaussian_filter(reference, sigma=(0, 1.5, 1.5, 0))
    noisy = np.clip(reference + 0.1 * np.random.default_rng(0).standard_normal(reference.shape), -1, 1).astype(np.float32)
    together = lp.to_reference((blurred, noisy, reference), reference)
    for x, d in zip((blurred, noisy), together):
        np.testing.assert_allclose(d, lp(x, reference), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(together[2], [0.0, 0.0], atol=1e-6)
    assert float(together[0][0]) > 0.05  # not trivially zero
