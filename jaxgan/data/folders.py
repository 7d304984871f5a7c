"""Users' own paired folders, found and validated up front in Python (Pillow), never lazily in tf.data.

Deblurring (`folder_deblur`), GoPro layout: every `.../blur/NAME` under the split folder is paired with
`.../sharp/NAME` (same relative path with the `blur` folder replaced by `sharp`), at any depth, so both
`root/train/SCENE/blur/000001.png` (GoPro) and a flat `root/blur/000001.png` work. Folders named
otherwise (e.g. GoPro's `blur_gamma`) are ignored.

Segmentation (`folder_seg`): `images/STEM.ext` is paired with `masks/STEM.ext'` by file stem. Masks are
single-channel PNGs (gray or palette) whose pixel values are class indices 0..num_classes-1; for
num_classes == 2 a 0/255 mask is also accepted (255 = class 1).

Every file is opened and fully decoded once. Bad input (unreadable or corrupt file, missing partner,
size mismatch, bad mask values, empty folder) raises one DataError listing every culprit, or with
skip_bad=True the bad pairs are dropped and counted in a warning.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from jaxgan.data.errors import DataError
from jaxgan.data.image_files import TF_IMAGE_SUFFIXES, check_jpeg_data, images_in
IMAGE_MODES = ("RGB", "RGBA", "L", "LA", "P")
MASK_MODES = ("L", "P", "1")


def inspect_image(path: Path) -> tuple[tuple[int, int] | None, str | None]:
    """Opens and decodes an image file: ((height, width), None) or (None, problem)."""
    try:
        with Image.open(path) as im:
            im.verify()
        with Image.open(path) as im:
            im.load()
            if im.mode not in IMAGE_MODES:
                return None, f"unsupported pixel mode {im.mode} (expected 8-bit RGB, RGBA, gray or palette)"
            size, fmt = (im.height, im.width), im.format
        if fmt == "JPEG":
            problem = check_jpeg_data(path)
            if problem:
                return None, f"corrupt JPEG data ({problem})"
        return size, None
    except Exception as e:  # Pillow raises many types for corrupt files
        return None, f"unreadable or corrupt image ({e.__class__.__name__}: {e})"


def read_mask(path: str | os.PathLike, num_classes: int) -> np.ndarray:
    """A mask file as uint8 class indices (H, W); raises DataError naming the file."""
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode not in MASK_MODES:
                raise DataError(f"{path}: mask has pixel mode {im.mode}; expected a single-channel gray or "
                                "palette PNG holding class indices")
            mask = np.asarray(im, np.uint8)
    except DataError:
        raise
    except Exception as e:
        raise DataError(f"{path}: unreadable or corrupt mask ({e.__class__.__name__}: {e})") from None
    values = np.unique(mask)
    if num_classes == 2 and set(values.tolist()) <= {0, 255}:
        return (mask > 0).astype(np.uint8)
    if values.max() >= num_classes:
        raise DataError(f"{path}: mask values {values.tolist()[:10]} outside the classes 0..{num_classes - 1}")
    return mask


def _inspect_mask(path: Path, num_classes: int):
    try:
        return read_mask(path, num_classes).shape, None
    except DataError as e:
        return None, str(e).split(": ", 1)[1]


def _report(root: Path, problems: list[tuple[Path, str]], skip_bad: bool, num_pairs: int) -> None:
    if not problems:
        return
    listing = "\n".join(f"  {p}: {why}" for p, why in problems[:20])
    more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
    if not skip_bad:  # one line: the first culprits, then how to go on
        first = "; ".join(f"{p}: {why}" for p, why in problems[:3])
        rest = f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
        raise DataError(f"{root}: {len(problems)} bad file(s): {first}{rest}; fix them, or set "
                        "config.data.skip_bad=True to skip and count them")
    warnings.warn(f"{root}: skipped {len(problems)} bad file(s), {num_pairs} pairs left:\n{listing}{more}",
                  stacklevel=3)


def deblur_pairs(root: str | os.PathLike, *, skip_bad: bool = False) -> list[tuple[str, str]]:
    """Validated (blurred, sharp) path pairs under `root` (GoPro layout, see the module docstring)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder (expected blur/ and sharp/ image folders inside)")
    files = images_in(root, TF_IMAGE_SUFFIXES)
    blurred = [p for p in files if p.parent.name == "blur"]
    if not blurred:
        raise DataError(f"{root}: found no images in a folder named 'blur' (expected ROOT/blur/*.png + "
                        "ROOT/sharp/*.png, or ROOT/*/blur/*.png + ROOT/*/sharp/*.png)")
    problems, candidates = [], []
    blurred_set = set(blurred)
    for p in files:
        if p.parent.name == "sharp" and p.parent.parent / "blur" / p.name not in blurred_set:
            problems.append((p, "sharp image without a blurred partner "
                                f"(expected {p.parent.parent / 'blur' / p.name})"))
    for p in blurred:
        partner = p.parent.parent / "sharp" / p.name
        if partner.is_file():
            candidates.append((p, partner))
        else:
            problems.append((p, f"blurred image without its sharp partner (expected {partner})"))
    with ThreadPoolExecutor(4) as pool:
        checked = list(pool.map(lambda pair: [inspect_image(q) for q in pair], candidates))
    pairs = []
    for (b, s), ((size_b, why_b), (size_s, why_s)) in zip(candidates, checked):
        if why_b or why_s:
            problems += [(q, why) for q, why in ((b, why_b), (s, why_s)) if why]
        elif size_b != size_s:
            problems.append((b, f"size {size_b[1]}x{size_b[0]} differs from its sharp partner {s} "
                                f"({size_s[1]}x{size_s[0]})"))
        else:
            pairs.append((str(b), str(s)))
    _report(root, problems, skip_bad, len(pairs))
    if not pairs:
        raise DataError(f"{root}: no usable blurred/sharp pairs")
    return pairs


def seg_pairs(root: str | os.PathLike, num_classes: int, *, skip_bad: bool = False) -> list[tuple[str, str]]:
    """Validated (image, mask) path pairs from root/images and root/masks matched by file stem."""
    root = Path(root)
    image_dir, mask_dir = root / "images", root / "masks"
    for folder in (image_dir, mask_dir):
        if not folder.is_dir():
            raise DataError(f"{folder}: no such folder (expected ROOT/images/* and ROOT/masks/*.png)")
    images, masks = images_in(image_dir, TF_IMAGE_SUFFIXES), images_in(mask_dir, TF_IMAGE_SUFFIXES)
    if not images:
        raise DataError(f"{image_dir}: holds no images ({', '.join(TF_IMAGE_SUFFIXES)})")
    problems = []
    mask_by_stem = {}
    for m in masks:
        if m.stem in mask_by_stem:
            problems.append((m, f"two masks share the stem {m.stem!r} (also {mask_by_stem[m.stem]})"))
        mask_by_stem.setdefault(m.stem, m)
    image_stems = {p.stem for p in images}
    problems += [(m, "mask without an image of the same stem") for m in masks if m.stem not in image_stems]
    candidates = []
    for p in images:
        if p.stem in mask_by_stem:
            candidates.append((p, mask_by_stem[p.stem]))
        else:
            problems.append((p, f"image without a mask (expected {mask_dir / (p.stem + '.png')})"))
    with ThreadPoolExecutor(4) as pool:
        checked = list(pool.map(lambda pair: (inspect_image(pair[0]), _inspect_mask(pair[1], num_classes)),
                                candidates))
    pairs = []
    for (im, m), ((size_i, why_i), (size_m, why_m)) in zip(candidates, checked):
        if why_i or why_m:
            problems += [(q, why) for q, why in ((im, why_i), (m, why_m)) if why]
        elif size_i != size_m:
            problems.append((m, f"mask size {size_m[1]}x{size_m[0]} differs from its image {im} "
                                f"({size_i[1]}x{size_i[0]})"))
        else:
            pairs.append((str(im), str(m)))
    _report(root, problems, skip_bad, len(pairs))
    if not pairs:
        raise DataError(f"{root}: no usable image/mask pairs")
    return pairs


def split_folder(path: str, split: str) -> Path:
    """The folder of a split: PATH/SPLIT when it exists, else PATH itself (one folder for all splits)
    unless PATH has other split folders: then DataError (never another split's files in its place)."""
    if not path:
        raise DataError("config.data.path is empty: set it to the root folder of your data")
    root = Path(path)
    if (root / split).is_dir():
        return root / split
    others = [name for name in SPLIT_FOLDERS if (root / name).is_dir()]
    if others:
        raise DataError(f"{root / split}: no such folder for split {split!r} ({root} has split folders "
                        f"{', '.join(others)}; add {split}/ or choose another split in config.data)")
    return root


SPLIT_FOLDERS = ("train", "test", "val", "validation")
