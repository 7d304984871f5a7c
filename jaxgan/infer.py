"""Run a trained generator on images of any size.

A fully convolutional generator needs sides that are a multiple of its total downsampling factor, and
a whole photo may not fit in memory. `apply_tiled` pads the image (reflect) to that multiple and
crops back; with `tile_size` it cuts the padded image into overlapping tiles of one fixed shape (so
the network compiles once), runs them, and blends them with weights that fall off linearly towards
each tile's edge, which hides the seams. Everything here is NumPy around one jitted apply function
(the padding: that of jaxgan.nets.layers.pad_to_multiple).

With `buckets` (side lengths) an image is padded further, to the smallest bucket side >= each of its
sides, so that a folder of many sizes runs through a handful of shapes (one compile each) instead of
one per size: at most len(ladder)**2 whole-image shapes, where the ladder is the bucket sides below
the tile size (rounded up to `multiple`) plus the tile size itself, and one tile shape for every
image larger than the tile (tiles are full size: the last one per row / column starts at side - tile).

When is the bucketed output today's? Always where the bucket is the image padded to `multiple`
(`bucket_ladder` holds every multiple up to the tile, e.g. a U-Net of depth 8 (multiple 256) with
the default sides), for a generator whose first step pads its input to `multiple` as
`pad_to_shape` does: it sees the tensor it would have padded itself. Otherwise only
where the network is local (no statistics over the whole image: instance norm, batch norm in train
mode, global pooling or channel attention) AND the pixel's receptive field stays inside today's
padded image (tests/test_infer.py); near the bottom / right border and for image-wide statistics it
differs (measured in benchmarks/README.md): off by default.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

ApplyFn = Callable[[np.ndarray], np.ndarray]  # (1, h, w, c_in) in [-1, 1] -> (1, h, w, c_out)

BUCKET_SIDES = (256, 512, 768)  # `jaxgan predict --buckets`: up to its default tile size; at most 9 shapes
# config.eval.flip_views: the image and its flips (image axes -3 rows, -2 columns; channels last)
FLIPS = {1: ((),), 2: ((), (-2,)), 4: ((), (-2,), (-3,), (-3, -2))}


def _flip(a, axes):
    if not axes:
        return a
    if isinstance(a, np.ndarray):
        return np.flip(a, axes)
    import jax.numpy as jnp  # (a traced or device array: evaluation and export run this inside jit)
    return jnp.flip(a, axes)


def flip_ensemble(run: Callable, image, views: int = 1):
    """The mean of run(view)'s output flipped back over `views` (1, 2: + left-right, 4: + up-down and
    both) of `image` (.., H, W, C; NumPy or JAX): test-time flips, e.g. EDSR's self-ensemble (Lim et al.
    2017) without rotations. `run` keeps the spatial size (it pads and crops back itself), so every
    command that wraps its whole-image call in this computes the same ensemble. views=1: run(image)."""
    if views not in FLIPS:
        raise ValueError(f"flip views must be one of {tuple(FLIPS)}, got {views!r}")
    if views == 1:
        return run(image)
    total = None
    for axes in FLIPS[views]:
        out = _flip(run(_flip(image, axes)), axes)
        total = out if total is None else total + out
    return total / views


def bucket_ladder(sides: Sequence[int], multiple: int = 1, tile: int = 0) -> list[int]:
    """The bucket sides rounded up to `multiple`, sorted; with a tile (> 0, a multiple of `multiple`)
    those below it and the tile itself (larger images are tiled)."""
    ladder = sorted({-(-int(s) // multiple) * multiple for s in sides if int(s) > 0})
    return [b for b in ladder if b < tile] + [tile] if tile > 0 else ladder


def bucket_shape(height: int, width: int, sides: Sequence[int], multiple: int = 1) -> tuple[int, int] | None:
    """(H, W): for each side the smallest of `sides` (each rounded up to `multiple`) that holds it;
    None when a side is larger than every bucket."""
    ladder = bucket_ladder(sides, multiple)
    fit = [next((b for b in ladder if b >= side), None) for side in (height, width)]
    return None if None in fit else (fit[0], fit[1])


def pad_to_shape(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """(h, w, c) padded at the bottom / right to (height, width): reflect, as the generators pad to
    their multiple (jaxgan.nets.layers.pad_to_multiple), where both pads are shorter than their
    sides; edge otherwise."""
    h, w = image.shape[:2]
    ph, pw = height - h, width - w
    if ph < 0 or pw < 0:
        raise ValueError(f"cannot pad an image of {h}x{w} to {height}x{width}")
    mode = "reflect" if ph < h and pw < w else "edge"
    return np.pad(image, ((0, ph), (0, pw), (0, 0)), mode=mode)


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


def apply_tiled(apply_fn: ApplyFn, image: np.ndarray, *, multiple: int = 1, tile_size: int = 0,
                  overlap: int = 32, buckets: Sequence[int] = ()) -> np.ndarray:
    """Applies `apply_fn` to one float image (H, W, C_in) in [-1, 1]; returns (H, W, C_out) float32.

    multiple: pad the sides to a multiple of this first (1: the zoo's generators pad themselves,
      see their `size_multiple`).
    tile_size: 0 runs the whole (padded) image at once; otherwise tiles of tile_size x tile_size
      (rounded up to `multiple`) with `overlap` pixels of overlap, blended without seams.
    buckets: side lengths to pad a whole image to (module docstring; with a tile size, those below it
      and the tile itself); () pads to `multiple` only.
    """
    if image.ndim != 3:
        raise ValueError(f"expected one image of shape (H, W, C), got shape {image.shape}")
    h, w = image.shape[:2]
    # as jaxgan.nets.layers.pad_to_multiple, in NumPy: eager jnp ops would compile once per image size
    padded = pad_to_shape(np.asarray(image, np.float32), -(-h // multiple) * multiple, -(-w // multiple) * multiple)
    ph, pw = padded.shape[:2]
    tile = -(-int(tile_size) // multiple) * multiple if tile_size > 0 else 0
    if tile <= 0 or (ph <= tile and pw <= tile):  # one whole image
        bucket = bucket_shape(ph, pw, bucket_ladder(buckets, multiple, tile)) if len(buckets) else None
        if bucket is not None:  # today's padded image, padded further: what the network saw is kept
            padded = pad_to_shape(padded, *bucket)
        out = np.asarray(apply_fn(padded[None]))[0]
        return out[:h, :w].astype(np.float32)

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

