"""Run a trained generator on images of any size.

A fully convolutional generator needs sides that are a multiple of its total downsampling factor, and
a whole photo may not fit in memory. `predict_array` pads the image (reflect) to that multiple and
crops back; with `tile_size` it cuts the padded image into overlapping tiles of one fixed shape (so
the network compiles once), runs them, and blends them with weights that fall off linearly towards
each tile's edge, which hides the seams. Everything here is NumPy around one jitted apply function (the padding: jaxgan.nets.layers.pad_to_multiple).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from jaxgan.nets.layers import pad_to_multiple

ApplyFn = Callable[[np.ndarray], np.ndarray]  # (1, h, w, c_in) in [-1, 1] -> (1, h, w, c_out)


def _tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size `tile` covering [0, length) with at least `overlap` overlap."""
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def _blend_window(tile: int, overlap: int) -> np.ndarray:
    """1-D weights: a linear ramp over `overlap` pixels at each end, 1 in the middle, never 0."""
    ramp = np.ones(tile, np.float32)
    if overlap > 0:
        edge = (np.arange(overlap, dtype=np.float32) + 1.0) / (overlap + 1.0)
        ramp[:overlap] = edge
        ramp[-overlap:] = edge[::-1]
    return ramp


def predict_array(apply_fn: ApplyFn, image: np.ndarray, *, multiple: int = 1, tile_size: int = 0,
                  overlap: int = 32) -> np.ndarray:
    """Applies `apply_fn` to one float image (H, W, C_in) in [-1, 1]; returns (H, W, C_out) float32.

    multiple: pad the sides to a multiple of this first (1: the zoo's generators pad themselves,
      see their `size_multiple`).
    tile_size: 0 runs the whole (padded) image at once; otherwise tiles of tile_size x tile_size
      (rounded up to `multiple`) with `overlap` pixels of overlap, blended without seams.
    """
    if image.ndim != 3:
        raise ValueError(f"expected one image of shape (H, W, C), got shape {image.shape}")
    h, w = image.shape[:2]
    padded = np.asarray(pad_to_multiple(np.asarray(image, np.float32)[None], multiple))[0]
    ph, pw = padded.shape[:2]
    if tile_size <= 0 or (ph <= tile_size and pw <= tile_size):
        out = np.asarray(apply_fn(padded[None]))[0]
        return out[:h, :w].astype(np.float32)

    tile = int(np.ceil(tile_size / multiple) * multiple)
    overlap = int(min(max(overlap, 0), tile // 2))
    # Tiles must fit inside the padded image: pad it up to at least one tile per side.
    if ph < tile or pw < tile:
        extra = ((0, max(tile - ph, 0)), (0, max(tile - pw, 0)), (0, 0))
        padded = np.pad(padded, extra, mode="edge")
        ph, pw = padded.shape[:2]
    window = np.outer(_blend_window(tile, overlap), _blend_window(tile, overlap))[..., None]
    acc, weight = None, np.zeros((ph, pw, 1), np.float32)
    for y in _tile_starts(ph, tile, overlap):
        for x in _tile_starts(pw, tile, overlap):
            out = np.asarray(apply_fn(padded[None, y:y + tile, x:x + tile]))[0].astype(np.float32)
            if acc is None:
                acc = np.zeros((ph, pw, out.shape[-1]), np.float32)
            acc[y:y + tile, x:x + tile] += out * window
            weight[y:y + tile, x:x + tile] += window
    return (acc / weight)[:h, :w]

