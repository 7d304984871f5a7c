"""Image files: found in folders and read as 8-bit RGB (Pillow, no TensorFlow), right for every pixel mode.

Integer modes are scaled from their full range (16-bit gray: 0..65535 -> 0..255), float images from
[0, 1] (or, when their values exceed 1, from [0, 255]); EXIF orientation is applied; a file of
several frames (animated GIF, multi-page TIFF) gives its first frame and says so; a JPEG whose
entropy-coded data is corrupt (which Pillow decodes into garbage without a word) is refused, by
libjpeg-turbo's strict decoder (simplejpeg) when it is installed.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from jaxgan.data.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif")  # what load_image reads
TF_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")  # what tf.io.decode_image reads (datasets)
INTEGER_RANGES = {"I;16": 65535, "I;16B": 65535, "I;16L": 65535, "I;16N": 65535}


class FirstFrameWarning(UserWarning):
    """A multi-frame file was read as its first frame."""


def check_jpeg_data(path: str | os.PathLike) -> str | None:
    """None when the JPEG file decodes without libjpeg's 'corrupt data' warnings, else the warning
    (None too when simplejpeg is not installed: no check)."""
    try:
        import simplejpeg
    except ImportError:
        return None
    with open(path, "rb") as f:
        data = f.read()
    try:
        simplejpeg.decode_jpeg(data, strict=True)
    except ValueError as e:
        if "unsupported" in str(e).lower():  # e.g. a colour space simplejpeg does not handle: no verdict
            return None
        return str(e)
    return None


def _to_rgb8(im: Image.Image, path) -> np.ndarray:
    mode = im.mode
    if mode in INTEGER_RANGES or mode == "I":
        a = np.asarray(im).astype(np.float64)
        top = INTEGER_RANGES.get(mode, 65535)
        if a.size and (a.min() < 0 or a.max() > top):
            raise DataError(f"{path}: {mode} pixel values {a.min():.0f}..{a.max():.0f} outside 0..{top}; "
                            "save it as 8- or 16-bit")
        gray = np.round(a * (255.0 / top))
    elif mode == "F":
        gray = _float_to_8bit(np.asarray(im), path)
    else:
        try:
            return np.asarray(im.convert("RGB"), np.uint8)
        except ValueError as e:  # a mode Pillow cannot convert to RGB
            raise DataError(f"{path}: pixel mode {mode} cannot be converted to RGB ({e})") from None
    gray = np.clip(gray, 0, 255).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=-1)


def _float_to_8bit(a: np.ndarray, path) -> np.ndarray:
    """Float pixels in [0, 1] or [0, 255] -> rounded 0..255 (float64); DataError otherwise."""
    a = a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise DataError(f"{path}: float image holds NaN or Inf values")
    low, high = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if low < 0 or high > 255:
        raise DataError(f"{path}: float pixel values {low:.4g}..{high:.4g} are neither in [0, 1] nor in "
                        "[0, 255]; rescale the image")
    return np.round(a * 255.0) if high <= 1.0 else np.round(a)


def _float_rgb_tiff(path) -> np.ndarray | None:
    """A float RGB TIFF (which Pillow cannot open) as uint8 (H, W, 3) via tifffile; None if it is not one."""
    if Path(path).suffix.lower() not in (".tif", ".tiff"):
        return None
    import tifffile

    try:
        a = tifffile.imread(path)
    except Exception:  # not a TIFF tifffile reads either: the caller's error stands
        return None
    if a.ndim != 3 or a.shape[-1] not in (3, 4) or not np.issubdtype(a.dtype, np.floating):
        return None
    return np.clip(_float_to_8bit(a[..., :3], path), 0, 255).astype(np.uint8)


def images_in(folder: str | os.PathLike, suffixes: tuple = IMAGE_SUFFIXES) -> list[Path]:
    """The image files under `folder` (recursively, by suffix, any case), sorted."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in suffixes and p.is_file())


def load_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as uint8 RGB (H, W, 3), see the module docstring.

    Raises DataError naming the file when it is missing, a folder, unreadable, corrupt or too large;
    warns (FirstFrameWarning) when it holds several frames."""
    if os.path.isdir(path):
        raise DataError(f"{path}: is a folder, not an image file")
    try:
        with Image.open(path) as im:
            frames = getattr(im, "n_frames", 1)
            im.load()
            fmt = im.format
            im = ImageOps.exif_transpose(im)
            rgb = _to_rgb8(im, path)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except DataError:
        raise
    except Image.DecompressionBombError as e:
        raise DataError(f"{path}: refused as too large ({e})") from None
    except Exception as e:  # Pillow raises many types for corrupt files
        rgb = _float_rgb_tiff(path) if isinstance(e, Image.UnidentifiedImageError) else None
        if rgb is None:
            raise DataError(f"{path}: unreadable or corrupt image ({e.__class__.__name__}: {e})") from None
        return rgb
    if fmt == "JPEG":
        problem = check_jpeg_data(path)
        if problem:
            raise DataError(f"{path}: corrupt JPEG data ({problem})")
    if frames > 1:
        warnings.warn(f"{path}: holds {frames} frames; using the first", FirstFrameWarning, stacklevel=2)
    return rgb
