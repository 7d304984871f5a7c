"""jaxgan.data.store on a tiny GoPro layout: the published GoPro configs' training batches from the store
(resized frames for DeblurGAN, uint8 frames for DeblurGAN-v2) equal decoding the PNGs at every use;
the DeblurGAN-v2 window sampled from uint8 frames equals sampling the float frames; a damaged, stale
or too large store is one error line."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jaxgan import config_io
from jaxgan.data import DataError, make_train_iterator, sources, store
from jaxgan.data.tf_cpu import tf
from train_helpers import assert_batches_equal, take

ONE = dict(process_index=0, process_count=1)
CONFIGS = Path(__file__).resolve().parents[1] / "experiments" / "configs"


@pytest.fixture(scope="module")
def gopro(tmp_path_factory):
    """train/GOPR000S/blur|sharp/NNNNNN.png: 5 pairs of 48 x 80 textured frames in two scenes."""
    root = tmp_path_factory.mktemp("gopro")
    rng = np.random.default_rng(3)
    for i in range(5):
        scene = root / "train" / f"GOPR{i // 3:04d}"
        sharp = rng.integers(0, 256, (48, 80, 3), dtype=np.uint8)
        blurred = ((sharp.astype(np.int32) + np.roll(sharp, 2, axis=1)) // 2).astype(np.uint8)
        for sub, image in (("sharp", sharp), ("blur", blurred)):
            (scene / sub).mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(scene / sub / f"{i:06d}.png")
    return root


def _published(name, root, **data):
    c = config_io.load_config(CONFIGS / f"{name}.py")
    c.data.path = str(root)
    c.data.cache = False
    c.data.crop_size = 16
    c.data.batch_size = 2
    for k, v in data.items():
        c.data[k] = v
    return c


@pytest.mark.parametrize("name, load_size", [("deblurgan_gopro", (24, 40)), ("deblurganv2_mobilenet_gopro", (0, 0)),
                                             ("deblurganv2_mobilenet_gopro", (24, 40))])
def test_published_gopro_training_from_the_store_equals_decoding_the_files(gopro, tmp_path, name, load_size):
    """4 batches of 2 (two epochs of the 4 training pairs left after the carved validation pair), and
    resumed at step 2; with a load_size the store holds each pair already resized (float32)."""
    c = _published(name, gopro, load_size=load_size, store="")
    files = take(make_train_iterator(c, **ONE), 4)
    c.data.store = str(tmp_path)
    stored = take(make_train_iterator(c, **ONE), 4)
    assert_batches_equal(files, stored)
    if name == "deblurgan_gopro":  # (resuming from the store: tests/test_data_pipeline.py too)
        assert_batches_equal(files[2:], take(make_train_iterator(c, start_step=2, **ONE), 2))
    (built,) = tmp_path.iterdir()
    sizes = [f.stat().st_size for f in sorted((built / "input").iterdir())]
    h, w = load_size if load_size[0] else (48, 80)
    assert sizes == [h * w * 3 * (4 if load_size[0] else 1)] * 4  # float32 resized frames / uint8 frames


def test_deblurganv2_window_from_uint8_frames_equals_bilinear_samples_of_the_float_frames():
    """geometric_window on uint8 frames (only the samples converted; one gather where the transform
    keeps whole pixels) gives the bits of remap, bilinear at every pixel, of the frames converted to
    float first (its definition), for every transform, drawn over 48 seeds."""
    from jaxgan.data import deblurganv2_aug as aug

    rng = np.random.default_rng(0)
    frames = [tf.constant(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)) for _ in range(2)]
    drawn = set()
    for s in range(48):
        seed = tf.constant([s, 7], tf.int64)
        got = aug.geometric_window(*frames, 24, seed)
        choice, x, y = aug.window_coordinates(40.0, 56.0, 24, seed)
        drawn.add(int(choice))
        for g, frame in zip(got, frames, strict=True):
            assert g.dtype == tf.float32
            want = aug.remap(tf.image.convert_image_dtype(frame, tf.float32), x, y)
            np.testing.assert_array_equal(g.numpy(), want.numpy())
    assert drawn == {-1, 0, 1, 2, 3, 4}


def _built_store(gopro, tmp_path):
    c = _published("deblurgan_gopro", gopro, load_size=(24, 40), store=str(tmp_path / "stores"))
    next(make_train_iterator(c, **ONE))
    (directory,) = (tmp_path / "stores").iterdir()
    return c, directory


def _one_line_error(c, match):
    with pytest.raises(DataError, match=match) as caught:
        make_train_iterator(c, **ONE)
    assert "\n" not in str(caught.value)
    return str(caught.value)


def test_damaged_or_stale_store_is_one_error_line_naming_it(gopro, tmp_path):
    c, directory = _built_store(gopro, tmp_path)
    row = directory / "target" / "00000002.raw"
    data = row.read_bytes()
    row.write_bytes(data[:-5])  # truncated (e.g. a full disk while copying the store)
    assert _one_line_error(c, "damaged decoded store").startswith(f"{row}: damaged decoded store ({len(data) - 5} bytes")
    row.write_bytes(data)
    next(make_train_iterator(c, **ONE))  # repaired: read again
    manifest = (directory / "manifest.json").read_text()
    (directory / "manifest.json").write_text(manifest.replace('"digest": "', '"digest": "0'))  # a foreign store
    assert str(directory) in _one_line_error(c, "stale decoded store")
    (directory / "manifest.json").unlink()
    assert str(directory) in _one_line_error(c, "no readable manifest.json")
    assert row.read_bytes() == data  # nothing deleted


def test_changed_frame_gets_a_new_store_and_auto_is_the_cache_folder(gopro, tmp_path, monkeypatch):
    """A rewritten PNG changes the digest (size / mtime), so the stale store is not read; 'auto' builds
    under $XDG_CACHE_HOME/jaxgan/stores."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    c = _published("deblurgan_gopro", gopro, load_size=(24, 40))
    assert c.data.store == "auto"
    source = sources.make_source(c, "train")
    before = store.digest(source, "v")
    frame = gopro / "train" / "GOPR0000" / "blur" / "000000.png"
    original = frame.read_bytes()
    try:
        Image.fromarray(np.zeros((48, 80, 3), np.uint8)).save(frame)
        assert store.digest(sources.make_source(c, "train"), "v") != before
    finally:
        frame.write_bytes(original)
    assert store.digest(source, "v") != store.digest(source, "w")  # the view is part of the digest
    next(make_train_iterator(c, **ONE))
    (built,) = (tmp_path / "cache" / "jaxgan" / "stores").iterdir()
    assert built.name.startswith("folder_deblur-")


def test_store_larger_than_the_free_disk_is_refused_before_writing(gopro, tmp_path, monkeypatch):
    c = _published("deblurganv2_mobilenet_gopro", gopro, store=str(tmp_path / "stores"))
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(store.shutil, "disk_usage", lambda path: usage._replace(free=4 * 48 * 80 * 3))
    message = _one_line_error(c, "needs about")
    assert message.startswith(str(tmp_path / "stores")) and "config.data.store" in message
    assert list((tmp_path / "stores").iterdir()) == []
