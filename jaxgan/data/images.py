"""Reading one image file for jaxgan.data (Pillow, no TensorFlow)."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from jaxgan.data.errors import DataError


def load_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as uint8 RGB (H, W, 3) (gray, palette and RGBA converted).

    Raises DataError naming the file when it is missing, unreadable or corrupt."""
    try:
        with Image.open(path) as im:
            im.load()
            return np.asarray(im.convert("RGB"), np.uint8)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except Exception as e:  # Pillow raises many types for corrupt files
        raise DataError(f"{path}: unreadable or corrupt image ({e.__class__.__name__}: {e})") from None
