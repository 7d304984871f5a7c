"""DeblurGAN-v2's corruption (jaxgan.data.deblurganv2_aug.corrupt) fires as the original's does.

VITA-Group/DeblurGANv2 at adb9e7d: aug.py:80-93 get_corrupt_function wraps the config's eight
corruptions (config.yaml:14-28; cutout's prob 0.5, the others the default .5 of aug.py:85) in
albu.OneOf(augs) with OneOf's default p 0.5; dataset.py:112-113 calls it on every blurred crop.
albumentations' OneOf (0.3 / 0.4, 2019) draws random() < p, then picks one transform with weights
p_i / sum(p) (all 1/8 here) and applies it forced (p set to 1 / force_apply=True): any corruption
fires with probability 1/2, cutout with 1/2 x 1/8 = 1/16 (1/32 with an extra gate of its own p).
"""

import numpy as np

from jaxgan.data import deblurganv2_aug
from jaxgan.data.tf_cpu import tf

N = 800


def test_corruption_fires_half_the_time_and_cutout_one_sixteenth():
    ones = tf.ones([16, 16, 3])
    noise = tf.constant(np.random.default_rng(0).uniform(0.2, 0.8, (16, 16, 3)).astype(np.float32))
    corrupt = tf.function(deblurganv2_aug.corrupt)  # one graph for all seeds: a call costs microseconds

    def fired(image, seed, how):
        out = corrupt(image, seed)
        return tf.reduce_any(tf.equal(out, 0.0)) if how == "cut" else tf.reduce_any(tf.not_equal(out, image))

    seeds = [tf.constant([i, 7], tf.int64) for i in range(N)]
    # on a white image only cutout writes zeros (the other seven keep every value above 0.5)
    cut = sum(bool(fired(ones, s, "cut")) for s in seeds)
    changed = sum(bool(fired(noise, s, "changed")) for s in seeds)
    # binomial: 1/16 of 800 = 50 +- 6.8 (1/32: 25), 1/2 of 800 = 400 +- 14; bounds at about 3 sigma
    assert 32 <= cut <= 70, cut
    assert 355 <= changed <= 445, changed


def test_median_blur_is_the_window_median_with_the_edge_replicated():
    """The median-blur corruption (config.yaml:23, aug.py:64 albu.MedianBlur: cv2.medianBlur with an
    odd window of 3, 5 or 7, the median of the k x k neighbourhood) against scipy's median filter,
    the edge pixels repeated beyond the border (cv2.medianBlur's BORDER_REPLICATE; scipy's 'nearest').
    Bit for bit, on continuous values, on values with many ties, at a non-square size, and where the
    7 x 7 window at (3, 3) holds its 25 smallest values in a 5 x 5 corner (the median their largest)."""
    from scipy import ndimage

    rng = np.random.default_rng(3)
    corner = rng.uniform(0.5, 1.0, (9, 9, 3))
    corner[:5, :5] -= 0.5
    images = [rng.uniform(0.0, 1.0, (13, 11, 3)), rng.integers(0, 4, (9, 14, 3)) / 3.0, corner]
    for image in (x.astype(np.float32) for x in images):
        for k in (3, 5, 7):
            got = deblurganv2_aug._median(tf.constant(image), k).numpy()
            want = ndimage.median_filter(image, size=(k, k, 1), mode="nearest")
            assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), (k, np.abs(got - want).max())


def test_remap_is_bilinear_interpolation_at_fractional_points():
    """remap (the geometric transforms' sampling: cv2.warpAffine / cv2.remap with INTER_LINEAR in
    albumentations) at points inside a uint8 frame: the bilinear formula on the frame read as
    [0, 1], each pixel's four neighbours weighted by (1 - fx)(1 - fy), fx (1 - fy), (1 - fx) fy, fx fy."""
    rng = np.random.default_rng(5)
    frame = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    x = rng.uniform(0.0, 6.0, (4, 6)).astype(np.float32)
    y = rng.uniform(0.0, 4.0, (4, 6)).astype(np.float32)
    got = deblurganv2_aug.remap(tf.constant(frame), tf.constant(x), tf.constant(y)).numpy()
    f = frame.astype(np.float64) / 255.0
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    want = ((1 - fx) * (1 - fy) * f[y0, x0] + fx * (1 - fy) * f[y0, x0 + 1]
            + (1 - fx) * fy * f[y0 + 1, x0] + fx * fy * f[y0 + 1, x0 + 1])
    np.testing.assert_allclose(got, want, atol=1e-6)


def _reflect_101(p: np.ndarray, n: int) -> np.ndarray:
    """OpenCV's borderInterpolate for BORDER_REFLECT_101 (modules/core/src/copy.cpp: an index p
    outside [0, n) becomes -p, or n - 1 - (p - n) - 1, until it is inside), elementwise."""
    p = p.copy()
    while ((p < 0) | (p >= n)).any():
        p = np.where(p < 0, -p, np.where(p >= n, 2 * n - 2 - p, p))
    return p


def test_remap_reflects_outside_the_frame_as_cv2_border_reflect_101():
    """albumentations' ShiftScaleRotate, OpticalDistortion and ElasticTransform warp with
    border_mode cv2.BORDER_REFLECT_101 by default (what DeblurGAN-v2's aug.py:9-13 leaves them at):
    cv2.remap takes each bilinear tap's integer index, reflects it into the frame that way and weights
    it by the coordinate's fraction. Points up to two frame widths outside, on every side."""
    rng = np.random.default_rng(6)
    frame = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    x = rng.uniform(-14.0, 20.0, (9, 11)).astype(np.float32)
    y = rng.uniform(-10.0, 14.0, (9, 11)).astype(np.float32)
    got = deblurganv2_aug.remap(tf.constant(frame), tf.constant(x), tf.constant(y)).numpy()
    f = frame.astype(np.float64) / 255.0
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    c0, c1, r0, r1 = _reflect_101(x0, 7), _reflect_101(x0 + 1, 7), _reflect_101(y0, 5), _reflect_101(y0 + 1, 5)
    want = ((1 - fx) * (1 - fy) * f[r0, c0] + fx * (1 - fy) * f[r0, c1]
            + (1 - fx) * fy * f[r1, c0] + fx * fy * f[r1, c1])
    np.testing.assert_allclose(got, want, atol=1e-5)
