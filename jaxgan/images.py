"""Reading and writing image files with Pillow (no TensorFlow), and the pictures jaxgan writes.

Values: uint8 files <-> float32 arrays in [-1, 1] for images; masks are int class indices written as
palette PNGs so any viewer shows classes in distinct colours.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from jaxgan.data.errors import DataError
from jaxgan.data.image_files import IMAGE_SUFFIXES, images_in, load_image

# Class colours for palette masks: background black, then well-separated hues.
PALETTE = np.array([
    [0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
    [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212],
    [0, 128, 128], [220, 190, 255], [170, 110, 40], [255, 250, 200], [128, 0, 0],
], np.uint8)


class ImageFileError(DataError):
    """An image file that cannot be read or written; the message names the file."""


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Reads an image file as uint8 RGB (H, W, 3), right for every pixel mode (16-bit and float
    scaled from their range, EXIF orientation applied, first frame of several announced):
    see jaxgan.data.image_files."""
    path = Path(path)
    if path.exists() and not path.is_dir() and not path.is_file():  # opening a FIFO would wait forever
        raise ImageFileError(f"{path}: not a regular file (a pipe, socket or device)")
    try:
        return load_image(path)
    except DataError as e:
        raise ImageFileError(str(e)) from None


def list_images(inputs: list[str]) -> list[Path]:
    """Expands files and folders (recursively) into a sorted list of image paths."""
    paths: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = images_in(p)
            if not found:
                raise ImageFileError(f"{p}: folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
            paths.extend(found)
        elif p.exists():
            paths.append(p)
        else:
            raise ImageFileError(f"{p}: no such file or folder")
    return paths


def to_float(image: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float32 [-1, 1]."""
    return image.astype(np.float32) / 127.5 - 1.0


def to_uint8(image: np.ndarray) -> np.ndarray:
    """float [-1, 1] -> uint8 [0, 255] (clipped, rounded)."""
    return np.clip(np.round((np.asarray(image, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def write_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Writes uint8 (H, W, 3) or (H, W) as PNG, creating parent folders."""
    _save_png(Image.fromarray(image), Path(path))


def _save_png(im: Image.Image, path: Path) -> None:
    """Saves a PNG into a new temporary file beside `path`, then renames it onto `path`: an existing
    link there is replaced, never written through, and an interrupted write leaves no partial file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "xb") as f:
            im.save(f, format="PNG")
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise ImageFileError(f"{path}: cannot write ({e.strerror or e})") from None


def write_mask_png(path: str | os.PathLike, mask: np.ndarray) -> None:
    """Writes an int class mask (H, W) as a palette PNG whose pixel values are the class indices."""
    path = Path(path)
    im = Image.fromarray(mask.astype(np.uint8), mode="P")
    palette = np.zeros((256, 3), np.uint8)
    palette[: len(PALETTE)] = PALETTE
    im.putpalette(palette.reshape(-1).tolist())
    _save_png(im, path)


def colorize_mask(mask: np.ndarray) -> np.ndarray:
    """int class mask (H, W) -> uint8 RGB (H, W, 3) in the palette's colours."""
    return PALETTE[np.asarray(mask) % len(PALETTE)]


def overlay(image: np.ndarray, mask: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blends the coloured mask over a uint8 image where the class is not background."""
    colour = colorize_mask(mask).astype(np.float32)
    out = image.astype(np.float32)
    fg = (np.asarray(mask) > 0)[..., None]
    out = np.where(fg, (1 - alpha) * out + alpha * colour, out)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def image_grid(rows: list[list[np.ndarray]], pad: int = 2) -> np.ndarray:
    """Tiles uint8 (H, W, 3) images into one picture: one list per row, same size everywhere."""
    h, w = rows[0][0].shape[:2]
    ncol = max(len(r) for r in rows)
    grid = np.full((len(rows) * (h + pad) + pad, ncol * (w + pad) + pad, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, im in enumerate(row):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            grid[y:y + h, x:x + w] = im
    return grid
