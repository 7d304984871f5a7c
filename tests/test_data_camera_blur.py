"""The camera model of the deblurring data (blur.camera_*), the held-out tremor generator and leaves_blur."""

import numpy as np
import pytest

from jaxgan.data import blur, leaves_blur, tremor_blur


def _moments(k):
    r = np.arange(k.shape[0]) - k.shape[0] // 2
    my, mx = (k.sum(1) * r).sum(), (k.sum(0) * r).sum()
    return (k.sum(1) * (r - my) ** 2).sum(), (k.sum(0) * (r - mx) ** 2).sum()


def test_defocus_kernel_is_a_disk_of_its_radius():
    k = blur.defocus_kernel(4.0)
    assert k.sum() == pytest.approx(1.0) and k.shape == (9, 9)
    # a uniform disk of radius r: variance r^2 / 4 per axis (plus 1/12 of a pixel's own width)
    np.testing.assert_allclose(_moments(k), 4.0 ** 2 / 4 + 1 / 12, rtol=0.03)
    assert k[4, 4] == pytest.approx(k[4, 5])  # flat inside


def test_combined_kernels_add_their_variances():
    a, b = blur.camera_shake_kernel(np.random.default_rng(0), 5, 15), blur.defocus_kernel(2.0)
    k = blur.combine_kernels(a, b)
    assert k.sum() == pytest.approx(1.0) and k.shape[0] == a.shape[0] + b.shape[0] - 1
    np.testing.assert_allclose(_moments(k), np.add(_moments(a), _moments(b)), rtol=1e-6)


def test_camera_kernels_are_a_pure_function_of_seed_and_index():
    a, kind = blur.camera_kernel_at(0, 5)
    np.testing.assert_array_equal(a, blur.camera_kernel_at(0, 5)[0])
    kernels = [blur.camera_kernel_at(0, i)[0] for i in range(30)] + [blur.camera_kernel_at(1, 5)[0]]
    for i in range(len(kernels)):
        k = kernels[i]
        assert k.shape[0] % 2 == 1 and k.shape[0] <= 31 and k.min() >= 0 and k.sum() == pytest.approx(1.0)
        for j in range(i):
            assert k.shape != kernels[j].shape or not np.allclose(k, kernels[j])


def test_sensor_noise_has_the_poisson_gaussian_variance():
    image = np.full((200, 200, 3), 0.4)
    out = blur.sensor_noise(np.random.default_rng(1), image, 1e-3, 0.01)
    assert out.std() == pytest.approx(np.sqrt(1e-3 * 0.4 + 0.01 ** 2), rel=0.02)


def test_tremor_kernels_are_normalised_within_extent_and_deterministic():
    for i in range(10):
        k = tremor_blur.kernel_at(0, i)
        assert k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1 and k.sum() == pytest.approx(1.0)
        assert 3 <= blur.kernel_extent(k) <= 27
    np.testing.assert_array_equal(tremor_blur.kernel_at(3, 4), tremor_blur.kernel_at(3, 4))


def test_tremor_degrade_keeps_size_and_blurs():
    sharp = (np.random.default_rng(2).uniform(size=(40, 52, 3)) * 255).astype(np.uint8)
    blurred, kernel = tremor_blur.degrade(0, 1, sharp)
    assert blurred.shape == sharp.shape and blurred.dtype == np.uint8
    assert blurred.std() < 0.8 * sharp.std()


@pytest.fixture(scope="module")
def photos():
    import skimage.data

    photo = (skimage.data.astronaut()[::4, ::4]).copy()  # 128 x 128: small and quick
    return [photo]


def test_leaves_blur_examples_are_pure_and_never_repeat(photos, monkeypatch):
    monkeypatch.setattr(leaves_blur, "CROP_SIZE", 48)
    monkeypatch.setattr(leaves_blur, "MARGIN", 8)
    one = leaves_blur.make_example("train", 3, 0.5, photos, photos)
    two = leaves_blur.make_example("train", 3, 0.5, photos, photos)
    for key in ("sharp", "blurred", "kernel"):
        np.testing.assert_array_equal(one[key], two[key])
    examples = [leaves_blur.make_example("train", i, 0.5, photos, photos) for i in range(8)]
    assert {e["photo"] for e in examples} == {"dead_leaves", "astronaut"}
    for i in range(len(examples)):
        assert examples[i]["sharp"].shape == (48, 48, 3)
        for j in range(i):
            assert not np.array_equal(examples[i]["sharp"], examples[j]["sharp"])


def test_leaves_blur_splits_use_disjoint_photos():
    splits = leaves_blur.SPLIT_PHOTOS
    assert not set(splits["train"]) & set(splits["val"])
    assert not (set(splits["train"]) | set(splits["val"])) & set(splits["test"])
    assert leaves_blur.split_sizes(320) == {"train": 320, "val": 40, "test": 80}
