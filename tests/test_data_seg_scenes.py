"""seg_scenes (endless training scenes) and seg_heldout (held-out sets): pure functions of (seed, index),
no repeats, object sizes, disjoint photos and silhouettes, the endless pipeline's exact resume, Otsu."""

import hashlib

import numpy as np
import pytest
from scipy import ndimage

from jaxgan.config import base_config
from jaxgan.data import make_eval_iterator, make_train_iterator, photo_seg, seg_heldout, seg_scenes

ONE = dict(process_index=0, process_count=1)


def _digest(image, mask) -> str:
    return hashlib.sha256(image.tobytes() + mask.tobytes()).hexdigest()


def test_scene_is_a_pure_function_of_seed_and_index():
    for index in range(4):
        a, b = seg_scenes.scene_at(3, "train", index), seg_scenes.scene_at(3, "train", index)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    assert a[0].shape == (128, 128, 3) and a[0].dtype == np.uint8 and a[1].dtype == bool


def test_indices_seeds_and_splits_never_repeat_a_scene():
    keys = [(0, "train", i) for i in range(10)] + [(1, "train", i) for i in range(3)] + \
           [(0, "val", i) for i in range(3)] + [(0, "test", i) for i in range(3)]
    digests = {_digest(*seg_scenes.scene_at(*k)) for k in keys}
    assert len(digests) == len(keys)


@pytest.mark.parametrize("area", [0.03, 0.2, 0.6])
def test_place_scales_a_silhouette_to_the_asked_area(area):
    rng = np.random.default_rng(0)
    shape = seg_scenes.blob_shape(rng)
    covered = []
    for _ in range(8):
        m = seg_scenes.place(rng, shape, area, 128)
        covered.append(m.mean())
    # up to a quarter of the shape may leave the frame: the median is within [0.6, 1.15] x area
    assert 0.6 * area <= np.median(covered) <= 1.15 * area


def test_every_silhouette_family_gives_a_nonempty_shape():
    rng = np.random.default_rng(1)
    for name, make in seg_scenes.SHAPES.items():
        m = make(rng)
        assert m.dtype == bool and m.any() and not m.all(), name
    assert len(seg_scenes.photo_object_shapes()) >= 20  # coins, cameraman, words, letters, logo parts


def test_training_never_reads_a_heldout_photo():
    train = set(seg_scenes.TRAIN_PHOTOS) | set(photo_seg.TRAIN_PHOTOS)
    heldout = set(seg_heldout.SKIMAGE_PHOTOS) | set(seg_heldout.SKLEARN_PHOTOS)
    assert not train & heldout
    assert not {p.split("_")[0] for p in train} & {p.split("_")[0] for p in heldout}  # stereo pairs


@pytest.mark.parametrize("name", seg_heldout.SETS)
def test_heldout_scenes_are_seeded_and_vary(name):
    image, mask = seg_heldout.heldout_scene(name, 5)
    again, mask_again = seg_heldout.heldout_scene(name, 5)
    np.testing.assert_array_equal(image, again)
    np.testing.assert_array_equal(mask, mask_again)
    assert image.shape == (128, 128, 3) and 0.02 < mask.mean() < 0.7
    other, _ = seg_heldout.heldout_scene(name, 6)
    assert np.abs(image.astype(int) - other).mean() > 5


@pytest.mark.parametrize("name", seg_heldout.SETS)
def test_heldout_objects_are_where_the_mask_says(name, monkeypatch):
    """With the background crop black and every object crop white, the image is white on the mask."""
    from PIL import Image

    calls = []

    def constant_crop(rng, photo, size=seg_heldout.SIZE):
        calls.append(photo)
        return Image.new("RGB", (size, size), "black" if len(calls) == 1 else "white")

    monkeypatch.setattr(seg_heldout, "_crop", constant_crop)
    for index in range(3):
        calls.clear()
        image, mask = seg_heldout.heldout_scene(name, index)
        inner = ndimage.binary_erosion(mask, iterations=2)
        outer = ndimage.binary_erosion(~mask, iterations=2)
        gray = image.mean(-1)
        assert inner.any() and (gray[inner] > 200).all() and (gray[outer] < 55).all()


def _config(**data):
    c = base_config()
    c.task = "segment"
    c.data.name = "seg_scenes"
    c.data.crop_size = 64
    c.data.batch_size = 2
    c.data.cache = False
    for k, v in data.items():
        c.data[k] = v
    return c


def test_endless_training_resumes_exactly_and_reads_a_new_scene_every_time():
    c = _config()
    it = make_train_iterator(c, **ONE)
    batches = [next(it) for _ in range(3)]
    resumed = next(make_train_iterator(c, start_step=2, **ONE))
    for k in ("input", "target"):
        np.testing.assert_array_equal(resumed[k], batches[2][k])
    rows = [b["input"][i] for b in batches for i in range(2)]
    assert len({r.tobytes() for r in rows}) == 6
    assert batches[0]["target"].dtype == np.int32 and set(np.unique(batches[0]["target"])) <= {0, 1}


def test_endless_training_example_pos_of_process_p_is_scene_pos_times_count_plus_p():
    c = _config(crop_size=128, flip=False, rot90=False, batch_size=4)  # no augmentation: the scene itself
    for p in (0, 1):
        batch = next(make_train_iterator(c, start_step=1, process_index=p, process_count=2))
        for row in range(2):
            image, mask = seg_scenes.scene_at(c.seed, "train", (2 + row) * 2 + p)
            np.testing.assert_allclose(batch["input"][row], image / 127.5 - 1.0, atol=1e-6)
            np.testing.assert_array_equal(batch["target"][row], mask)


def test_heldout_split_reads_through_the_eval_pipeline():
    c = _config(eval_batch_size=25, eval_size=128, num_eval_examples=25)
    batch = next(make_eval_iterator(c, split="heldout_sklearn", **ONE))
    image, mask = seg_heldout.heldout_scene("heldout_sklearn", 0)
    np.testing.assert_allclose(batch["input"][0], image / 127.5 - 1.0, atol=1e-6)
    np.testing.assert_array_equal(batch["target"][0], mask.astype(np.int32))


@pytest.mark.parametrize("name", ["seg_quick", "seg_long"])
def test_seg_configs_train_on_seg_scenes_with_a_whole_scene_receptive_field(name):
    from pathlib import Path

    import jax

    from jaxgan.config_io import load_config_file
    from jaxgan.train import create_state, make_modules

    config = load_config_file(Path(__file__).parents[1] / "experiments" / "configs" / f"{name}.py")
    assert config.data.name == "seg_scenes" and config.data.crop_size == seg_scenes.SCENE_SIZE
    # the innermost of the U-Net's 4x4 stride-2 convs works on a 1x1 map: it sees the whole scene
    assert seg_scenes.SCENE_SIZE // 2 ** config.generator.options.depth == 1
    g, d = make_modules(config)
    sample = {"input": np.zeros((1, 128, 128, 3), np.float32)}
    state = jax.eval_shape(lambda key: create_state(config, g, d, sample, key), jax.random.PRNGKey(0))
    assert state.g.params
