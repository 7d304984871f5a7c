"""tf.data pipelines: ranges, dtypes, shapes, paired augmentation, determinism, exact resume,
process sharding, eval padding, oxford_iiit_pet through tfds mock data, fail-fast when not prepared."""

import time
from unittest import mock

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from jaxgan.config import base_config
from jaxgan.data import DataError, make_eval_iterator, make_train_iterator, sources
from train_helpers import assert_batches_equal, take

ONE = dict(process_index=0, process_count=1)


@pytest.fixture(scope="module")
def data_dir(builtin_data_dir):
    return builtin_data_dir


def _config(data_dir, task="deblur", name="photo_blur", **data):
    c = base_config()
    c.task = task
    c.data.name = name
    c.data.data_dir = data_dir
    c.data.num_train_examples = 8  # test split: 8
    c.data.validation_split = "train"  # every row stays a training row (no validation split carved)
    c.data.crop_size = 32
    c.data.batch_size = 3
    c.data.eval_batch_size = 3
    for k, v in data.items():
        c.data[k] = v
    return c


@pytest.fixture(scope="module")
def identical_pairs(tmp_path_factory):
    """A flat folder_deblur tree whose blurred and sharp files are the same textured image, with a
    distinct constant offset per image (identifies examples)."""
    root = tmp_path_factory.mktemp("pairs")
    for d in ("blur", "sharp"):
        (root / d).mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        image = (rng.integers(0, 20, (40, 44, 3)) + 25 * i).astype(np.uint8)
        for d in ("blur", "sharp"):
            Image.fromarray(image).save(root / d / f"{i}.png")
    return str(root)


def test_deblur_batches_ranges_dtypes_shapes(data_dir):
    c = _config(data_dir, color_jitter=0.3, scale_jitter=0.2)
    batch = next(make_train_iterator(c, **ONE))
    assert set(batch) == {"input", "target"}
    for key in ("input", "target"):
        assert batch[key].dtype == np.float32 and batch[key].shape == (3, 32, 32, 3)
        assert -1.0 <= batch[key].min() and batch[key].max() <= 1.0
    assert not np.array_equal(batch["input"], batch["target"])  # blurred != sharp


def test_segment_batches_ranges_dtypes_shapes(data_dir):
    c = _config(data_dir, task="segment", name="shapes_seg", num_classes=5, scale_jitter=0.3, color_jitter=0.2)
    batch = next(make_train_iterator(c, **ONE))
    assert batch["input"].dtype == np.float32 and batch["input"].shape == (3, 32, 32, 3)
    assert batch["target"].dtype == np.int32 and batch["target"].shape == (3, 32, 32)
    assert batch["target"].min() >= 0 and batch["target"].max() < 5
    assert -1.0 <= batch["input"].min() and batch["input"].max() <= 1.0


def test_paired_augmentation_uses_the_same_window_and_transform(identical_pairs):
    c = _config("", name="folder_deblur", path=identical_pairs, crop_size=24, scale_jitter=0.3,
                color_jitter=0.5, batch_size=4)
    for batch in take(make_train_iterator(c, **ONE), 4):
        np.testing.assert_array_equal(batch["input"], batch["target"])


def test_deterministic_under_seed_and_exact_resume(data_dir):
    c = _config(data_dir, scale_jitter=0.2, color_jitter=0.2)
    fresh = take(make_train_iterator(c, **ONE), 7)  # 21 examples: crosses two epochs of 8
    assert_batches_equal(fresh, take(make_train_iterator(c, **ONE), 7))
    for k in (1, 3, 5):
        assert_batches_equal(fresh[k:], take(make_train_iterator(c, start_step=k, **ONE), 7 - k))
    c.seed = 1
    other = next(make_train_iterator(c, **ONE))
    assert not np.array_equal(other["input"], fresh[0]["input"])


def test_epochs_visit_every_example_once_and_processes_are_disjoint(identical_pairs):
    c = _config("", name="folder_deblur", path=identical_pairs, crop_size=8, batch_size=4,
                flip=False, rot90=False)

    def example_ids(batches):  # image i holds values 25 i + [0, 20)
        return sorted(int(np.floor((x.min() + 1) * 127.5 / 25 + 0.01)) for b in batches for x in b["input"])

    assert example_ids(take(make_train_iterator(c, **ONE), 2)) == list(range(8))
    seen = []
    for p in range(2):
        batches = take(make_train_iterator(c, process_index=p, process_count=2), 2)
        assert batches[0]["input"].shape == (2, 8, 8, 3)  # global batch 4 over 2 processes
        seen.append(example_ids(batches))
    assert sorted(seen[0] + seen[1]) == list(range(8)) and not set(seen[0]) & set(seen[1])
    with pytest.raises(ValueError, match="multiple of the process count 3"):
        make_train_iterator(c, process_index=0, process_count=3)


def test_eval_iterator_pads_and_center_crops(data_dir):
    c = _config(data_dir, eval_size=48, num_eval_examples=7)
    batches = list(make_eval_iterator(c, **ONE))
    assert [b["valid"].tolist() for b in batches] == [[True] * 3, [True] * 3, [True, False, False]]
    assert batches[0]["input"].shape == (3, 48, 48, 3) and batches[0]["valid"].dtype == bool
    again = list(make_eval_iterator(c, **ONE))
    assert_batches_equal(batches, again)
    halves = [list(make_eval_iterator(c, process_index=p, process_count=3)) for p in range(3)]
    assert [len(h) for h in halves] == [3, 3, 3]  # ceil(ceil(7 / 3) / 1) batches everywhere
    assert sum(int(b["valid"].sum()) for h in halves for b in h) == 7


def test_eval_full_images_only_at_batch_one(data_dir):
    c = _config(data_dir, eval_size=0, eval_batch_size=1, num_eval_examples=2)
    batches = list(make_eval_iterator(c, **ONE))
    assert len(batches) == 2 and batches[0]["input"].shape == (1, 256, 256, 3)
    c = _config(data_dir, eval_size=0, eval_batch_size=2, num_eval_examples=2)
    assert next(make_eval_iterator(c, **ONE))["input"].shape == (2, 32, 32, 3)  # crop_size


def test_pet_class_table():
    trimap = np.array([1, 2, 3])  # pet, background, border
    np.testing.assert_array_equal(sources.pet_class_table(2, "pet")[trimap], [1, 0, 1])
    np.testing.assert_array_equal(sources.pet_class_table(2, "background")[trimap], [1, 0, 0])
    np.testing.assert_array_equal(sources.pet_class_table(3)[trimap], [1, 0, 2])
    with pytest.raises(ValueError, match="valid: 2"):
        sources.pet_class_table(4)


@pytest.mark.parametrize("num_classes", [2, 3])
def test_oxford_iiit_pet_through_tfds_mock_data(num_classes, tmp_path):
    c = _config(str(tmp_path), task="segment", name="oxford_iiit_pet", num_classes=num_classes, eval_size=24)
    with tfds.testing.mock_data(num_examples=5), mock.patch.object(sources, "_is_prepared", lambda b: True):
        batch = next(make_train_iterator(c, **ONE))  # mock images and masks have random, different sizes
        evals = list(make_eval_iterator(c, **ONE))
    assert batch["input"].shape == (3, 32, 32, 3) and batch["target"].shape == (3, 32, 32)
    assert set(np.unique(batch["target"])) <= set(range(num_classes))
    assert [b["valid"].tolist() for b in evals] == [[True] * 3, [True, True, False]]
    assert evals[0]["target"].shape == (3, 24, 24)


def test_not_prepared_tfds_dataset_fails_fast_with_how_to(tmp_path):
    c = _config(str(tmp_path), task="segment", name="oxford_iiit_pet")
    start = time.perf_counter()
    with pytest.raises(DataError, match=r"not prepared.*tfds build oxford_iiit_pet"):
        make_train_iterator(c, **ONE)
    assert time.perf_counter() - start < 10


def test_config_mismatches_are_named(data_dir):
    with pytest.raises(ValueError, match="is for task 'segment'"):
        make_train_iterator(_config(data_dir, task="deblur", name="shapes_seg"), **ONE)
    with pytest.raises(ValueError, match="valid: photo_blur"):
        make_train_iterator(_config(data_dir, name="imagenet"), **ONE)
    with pytest.raises(DataError, match="no split 'val'"):
        make_eval_iterator(_config(data_dir), split="val", **ONE)
    with pytest.raises(DataError, match="config.data.path is empty"):
        make_train_iterator(_config(data_dir, name="folder_deblur"), **ONE)


def test_decoded_store_gives_the_same_batches_resumes_exactly_and_follows_the_files(tmp_path):
    """config.data.store: batches equal decoding the files at every use (cache off), also resumed at
    step k; the store is built once, and a changed file gets a new store (jaxgan.data.store)."""
    from jaxgan.data import store

    root = tmp_path / "pairs"
    for d in ("blur", "sharp"):
        (root / d).mkdir(parents=True)
    rng = np.random.default_rng(1)
    for i in range(5):  # sizes differ between examples
        image = rng.integers(0, 256, (40 + 4 * i, 44, 3), dtype=np.uint8)
        Image.fromarray(image).save(root / "blur" / f"{i}.png")
        Image.fromarray(255 - image).save(root / "sharp" / f"{i}.png")
    c = _config("", name="folder_deblur", path=str(root), crop_size=24, cache=False, scale_jitter=0.2)
    files = take(make_train_iterator(c, **ONE), 4)  # 12 examples: crosses two epochs of 5
    c.data.store = str(tmp_path / "store")
    stored = take(make_train_iterator(c, **ONE), 4)
    assert_batches_equal(files, stored)
    assert_batches_equal(files[2:], take(make_train_iterator(c, start_step=2, **ONE), 2))
    built = sorted(p.name for p in (tmp_path / "store").iterdir())
    assert len(built) == 1 and built[0].startswith("folder_deblur-")
    files = sorted((tmp_path / "store" / built[0] / "input").iterdir())
    assert [f.stat().st_size for f in files] == [(40 + 4 * i) * 44 * 3 for i in range(5)]  # each decoded once

    time.sleep(0.01)
    Image.fromarray(np.zeros((40, 44, 3), np.uint8)).save(root / "blur" / "0.png")
    assert store.digest(sources.make_source(c, "train")) != built[0].split("-", 1)[1]
    next(make_train_iterator(c, **ONE))
    assert len(list((tmp_path / "store").iterdir())) == 2
