"""Built-in tfds datasets generated locally: declared shapes, disjoint splits, blur consistency."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxgan.config import base_config
from jaxgan.data import blur, photo_blur, shapes_seg
from jaxgan.data.builtin import split_sizes
from jaxgan.data.prepare import prepare_builtin


@pytest.fixture(scope="module")
def tiny_config(builtin_data_dir):
    c = base_config()
    c.data.data_dir = builtin_data_dir
    c.data.num_train_examples = 12  # test split: max(8, 12 // 4) = 8
    return c


def _examples(builder, split):
    return list(tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)))


def test_split_sizes():
    assert split_sizes(0, 400) == {"train": 400, "test": 100}
    assert split_sizes(12, 400) == {"train": 12, "test": 8}


def test_photo_blur_shapes_disjoint_photos_and_consistent_blur(tiny_config):
    builder = prepare_builtin("photo_blur", tiny_config)
    assert builder.info.features["sharp"].shape == (256, 256, 3)
    assert builder.info.features["blurred"].shape == (256, 256, 3)
    train, test = _examples(builder, "train"), _examples(builder, "test")
    assert (len(train), len(test)) == (12, 8)
    train_photos = {e["photo"].decode() for e in train}
    test_photos = {e["photo"].decode() for e in test}
    assert train_photos.isdisjoint(test_photos)
    assert test_photos <= {p.split(".")[0] for p in photo_blur.TEST_PHOTOS}
    for e in train[:3] + test[:3]:
        k = e["kernel"]
        assert e["sharp"].dtype == e["blurred"].dtype == np.uint8
        assert k.min() >= 0 and k.sum() == pytest.approx(1.0, abs=1e-5)
        assert 5 <= blur.kernel_extent(k) <= 25  # 'realistic' preset
        # Away from the crop border, blurred = sharp convolved with the stored kernel (up to rounding).
        expected = blur.blur_image(e["sharp"].astype(np.float64) / 255, k.astype(np.float64)) * 255
        r = k.shape[0] // 2
        inner = (slice(r, 256 - r), slice(r, 256 - r))
        assert np.abs(expected[inner] - e["blurred"][inner]).max() <= 1.01


def test_photo_blur_is_reproducible(tiny_config, tmp_path):
    c = tiny_config.copy_and_resolve_references()
    c.data.data_dir = str(tmp_path)
    a = _examples(prepare_builtin("photo_blur", tiny_config), "test")
    b = _examples(prepare_builtin("photo_blur", c), "test")
    assert len(a) == len(b) == 8
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x["blurred"], y["blurred"])


def test_shapes_seg_shapes_masks_and_disjoint_splits(tiny_config):
    builder = prepare_builtin("shapes_seg", tiny_config)
    assert builder.info.features["image"].shape == (160, 160, 3)
    assert builder.info.features["mask"].shape == (160, 160, 1)
    train, test = _examples(builder, "train"), _examples(builder, "test")
    assert (len(train), len(test)) == (12, 8)
    for e in train + test:
        assert set(np.unique(e["mask"])) <= {0, 1}
        assert e["class_mask"].max() < shapes_seg.NUM_CLASSES
        np.testing.assert_array_equal(e["mask"], (e["class_mask"] > 0).astype(np.uint8))
        assert 0.02 < e["mask"].mean() < 0.95  # objects and background both present
    train_images = {e["image"].tobytes() for e in train}
    assert not any(e["image"].tobytes() in train_images for e in test)


def test_shapes_seg_defeats_global_thresholding():
    ious = shapes_seg.otsu_baseline("test", num_examples=12)
    assert np.mean(ious) < 0.5


def test_unknown_builtin_and_bad_strength(tiny_config):
    with pytest.raises(ValueError, match="valid: photo_blur, leaves_blur, shapes_seg"):
        prepare_builtin("nope", tiny_config)
    c = tiny_config.copy_and_resolve_references()
    c.data.blur_strength = "huge"
    with pytest.raises(ValueError, match="blur_strength='huge'"):
        prepare_builtin("photo_blur", c)
