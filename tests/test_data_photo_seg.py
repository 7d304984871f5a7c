"""photo_seg: held-out photos and silhouettes disjoint from training's, masks consistent with the image."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxgan.config import base_config
from jaxgan.data import photo_blur, photo_seg
from jaxgan.data.prepare import prepare_builtin
from jaxgan.data.shapes_seg import otsu_iou


def test_heldout_photos_and_shapes_are_disjoint_from_training():
    assert not set(photo_seg.TRAIN_PHOTOS) & set(photo_seg.HELDOUT_PHOTOS)
    assert not set(photo_seg.TRAIN_SHAPES) & set(photo_seg.HELDOUT_SHAPES)
    stems = {p.split("_")[0] for p in photo_seg.TRAIN_PHOTOS}  # a stereo pair stays on one side
    assert not stems & {p.split("_")[0] for p in photo_seg.HELDOUT_PHOTOS}


@pytest.mark.parametrize("split", ["train", "heldout"])
def test_scenes_are_seeded_and_objects_are_photo_textured(split):
    image, mask = photo_seg.split_scene(split, 3)
    again, mask_again = photo_seg.split_scene(split, 3)
    np.testing.assert_array_equal(image, again)
    np.testing.assert_array_equal(mask, mask_again)
    assert image.shape == (photo_seg.SCENE_SIZE, photo_seg.SCENE_SIZE, 3) and image.dtype == np.uint8
    assert mask.dtype == bool and 0 < mask.mean() < 1
    # photo texture, not flat colour: both classes have fine detail (std of the Laplacian)
    lap = np.abs(np.diff(image.astype(np.float32).mean(-1), 2, axis=0))[:, 1:-1]
    inner = mask[1:-1, 1:-1]
    assert lap[inner].mean() > 1.0 and lap[~inner].mean() > 1.0


def test_no_global_threshold_separates_objects():
    ious = [otsu_iou(*photo_seg.split_scene("heldout", i)) for i in range(6)]
    assert np.mean(ious) < 0.6


def test_photo_patch_crops_inside_the_photo_and_keeps_range():
    rng = np.random.default_rng(0)
    patch = photo_seg.photo_patch(rng, "coins.png", 48)
    assert patch.shape == (48, 48, 3) and patch.min() >= 0 and patch.max() <= 1
    assert photo_blur.skimage_photo("coins.png").shape[:2] == (303, 384)


def test_builder_has_three_splits_of_declared_shape(tmp_path):
    c = base_config()
    c.task = "segment"
    c.data.name = "photo_seg"
    c.data.data_dir = str(tmp_path)
    c.data.num_train_examples = 8
    builder = prepare_builtin("photo_seg", c)
    for split in photo_seg.SPLITS:
        rows = list(tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)))
        assert len(rows) == 8
        assert rows[0]["image"].shape == (160, 160, 3) and rows[0]["mask"].shape == (160, 160, 1)
        assert set(np.unique(rows[0]["mask"])) <= {0, 1}
