"""Users' folders: GoPro-style and flat deblurring pairs, image/mask pairs, and every kind of bad input."""

import numpy as np
import pytest
from PIL import Image

from jaxgan.config import base_config
from jaxgan.data import DataError, folders, load_image


def _png(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path) if mode is None else _palette(path, array)


def _palette(path, mask):
    im = Image.fromarray(mask.astype(np.uint8), "P")
    im.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0] * (256 * 3 - 9))
    im.save(path)


def _rgb(seed, h=40, w=48):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.fixture
def gopro_tree(tmp_path):
    """root/train/{A,B}/{blur,sharp}/*.png with one corrupt blurred file and one missing partner."""
    root = tmp_path / "gopro"
    for scene in ("A", "B"):
        for i in range(3):
            _png(root / "train" / scene / "blur" / f"{i:06d}.png", _rgb(i))
            _png(root / "train" / scene / "sharp" / f"{i:06d}.png", _rgb(i + 10))
        _png(root / "train" / scene / "blur_gamma" / "000000.png", _rgb(99))  # ignored folder
    (root / "train" / "A" / "blur" / "000001.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (root / "train" / "B" / "sharp" / "000002.png").unlink()
    return root


def test_gopro_tree_errors_name_the_corrupt_file_and_the_missing_partner(gopro_tree):
    with pytest.raises(DataError) as info:
        folders.deblur_pairs(gopro_tree / "train")
    message = str(info.value)
    assert "2 bad file(s)" in message
    assert str(gopro_tree / "train" / "A" / "blur" / "000001.png") in message and "corrupt" in message
    assert str(gopro_tree / "train" / "B" / "blur" / "000002.png") in message
    assert "without its sharp partner" in message and "skip_bad" in message


def test_gopro_tree_skip_bad_counts_and_keeps_the_good_pairs(gopro_tree):
    with pytest.warns(UserWarning, match="skipped 2 bad file"):
        pairs = folders.deblur_pairs(gopro_tree / "train", skip_bad=True)
    assert len(pairs) == 4
    for b, s in pairs:
        assert b.replace("/blur/", "/sharp/") == s


def test_flat_layout_size_mismatch_and_orphan_sharp(tmp_path):
    _png(tmp_path / "blur" / "a.png", _rgb(0))
    _png(tmp_path / "sharp" / "a.png", _rgb(1))
    assert folders.deblur_pairs(tmp_path) == [(str(tmp_path / "blur" / "a.png"), str(tmp_path / "sharp" / "a.png"))]
    _png(tmp_path / "blur" / "b.png", _rgb(2, 40, 48))
    _png(tmp_path / "sharp" / "b.png", _rgb(3, 30, 48))
    _png(tmp_path / "sharp" / "c.png", _rgb(4))
    with pytest.raises(DataError) as info:
        folders.deblur_pairs(tmp_path)
    assert "b.png: size 48x40 differs from its sharp partner" in str(info.value)
    assert "c.png: sharp image without a blurred partner" in str(info.value)


def test_empty_and_missing_folders(tmp_path):
    with pytest.raises(DataError, match="found no images in a folder named 'blur'"):
        folders.deblur_pairs(tmp_path)
    with pytest.raises(DataError, match="no such folder"):
        folders.deblur_pairs(tmp_path / "nope")
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(DataError, match="holds no images"):
        folders.seg_pairs(tmp_path, 2)


@pytest.fixture
def seg_tree(tmp_path):
    root = tmp_path / "seg"
    for i in range(3):
        _png(root / "images" / f"im{i}.png", _rgb(i, 32, 36))
        mask = np.zeros((32, 36), np.uint8)
        mask[4:20, 5:25] = 1 + i % 2
        _png(root / "masks" / f"im{i}.png", mask, mode="P")
    return root


def test_seg_pairs_by_stem_with_palette_masks(seg_tree):
    pairs = folders.seg_pairs(seg_tree, 3)
    assert [p[0].rsplit("/", 1)[1] for p in pairs] == ["im0.png", "im1.png", "im2.png"]
    mask = folders.read_mask(pairs[1][1], 3)
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 2}  # palette indices, not colours


def test_seg_size_mismatch_and_bad_values(seg_tree):
    _png(seg_tree / "masks" / "im1.png", np.zeros((31, 36), np.uint8), mode="P")
    with pytest.raises(DataError, match=r"im1\.png: mask size 36x31 differs from its image"):
        folders.seg_pairs(seg_tree, 3)
    with pytest.raises(DataError, match=r"im0\.png: mask values \[0, 1\] outside the classes 0\.\.0"):
        folders.seg_pairs(seg_tree, 1, skip_bad=False)


def test_seg_binary_mask_saved_as_0_255_and_rgb_mask_rejected(tmp_path):
    mask = np.zeros((8, 8), np.uint8)
    mask[2:5] = 255
    _png(tmp_path / "m.png", mask)
    np.testing.assert_array_equal(folders.read_mask(tmp_path / "m.png", 2), mask // 255)
    _png(tmp_path / "rgb.png", _rgb(0, 8, 8))
    with pytest.raises(DataError, match="rgb.png: mask has pixel mode RGB"):
        folders.read_mask(tmp_path / "rgb.png", 2)


def test_load_image(tmp_path):
    _png(tmp_path / "g.png", np.full((5, 6), 7, np.uint8))
    image = load_image(tmp_path / "g.png")
    assert image.shape == (5, 6, 3) and image.dtype == np.uint8 and (image == 7).all()
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="bad.jpg: unreadable or corrupt"):
        load_image(tmp_path / "bad.jpg")
    with pytest.raises(DataError, match="missing.png: no such file"):
        load_image(tmp_path / "missing.png")


def _config(task, name, path, **data):
    c = base_config()
    c.task = task
    c.data.name = name
    c.data.path = str(path)
    c.data.crop_size = 16
    c.data.batch_size = 2
    c.data.eval_batch_size = 2
    for k, v in data.items():
        c.data[k] = v
    return c


def test_folder_pipelines_end_to_end(gopro_tree, seg_tree):
    from jaxgan.data import make_eval_iterator, make_train_iterator

    c = _config("deblur", "folder_deblur", gopro_tree, skip_bad=True)
    with pytest.raises(DataError, match="000001.png"):  # the train split has bad files
        make_train_iterator(_config("deblur", "folder_deblur", gopro_tree), process_index=0, process_count=1)
    with pytest.warns(UserWarning, match="skipped 2"):
        batch = next(make_train_iterator(c, process_index=0, process_count=1))
    assert batch["input"].shape == batch["target"].shape == (2, 16, 16, 3)
    c = _config("segment", "folder_seg", seg_tree, num_classes=3, eval_size=20)
    batch = next(make_train_iterator(c, process_index=0, process_count=1))
    assert batch["target"].dtype == np.int32 and batch["target"].shape == (2, 16, 16)
    assert set(np.unique(batch["target"])) <= {0, 1, 2}
    batches = list(make_eval_iterator(c, split="anything", process_index=0, process_count=1))  # one folder
    assert [b["valid"].tolist() for b in batches] == [[True, True], [True, False]]
    assert batches[0]["target"].shape == (2, 20, 20)


def test_split_folder_falls_back_to_the_root_only_without_split_folders(tmp_path):
    (tmp_path / "flat" / "images").mkdir(parents=True)
    assert folders.split_folder(str(tmp_path / "flat"), "test") == tmp_path / "flat"
    (tmp_path / "split" / "train" / "images").mkdir(parents=True)
    assert folders.split_folder(str(tmp_path / "split"), "train") == tmp_path / "split" / "train"
    with pytest.raises(DataError, match=r"split/test: no such folder for split 'test' .*split folders train"):
        folders.split_folder(str(tmp_path / "split"), "test")
