"""Input priors: channels computed from the blurred image and appended to the network's input.

config.data.prior:
  'none'          the input is the image (3 channels);
  'blind_deconv'  the image, then its classical blind deconvolutions (3 + 3 n channels): the kernel is
                  estimated on the whole image (`jaxgan.blind_deconvolution.estimate_kernel`; on a centred crop of
                  prior_options.max_estimate_side for larger images), then the whole image is
                  deconvolved with it (`jaxgan.blind_deconvolution.deconvolve`) once per gradient-prior weight in
                  prior_options.deconv_weights (n of them), each clipped to [0, 1]. Channels 3:6 (the
                  first weight) are "the prior" that evaluation reports as a baseline.
The prior has no parameters, so the training pipeline computes it once per decoded example (before
the random crops, which then cut image and prior alike) and evaluation and `jaxgan predict` compute
it the same way on each whole image. The priors of a dataset split are also kept on disk
(config.data.prior_cache_dir, default ~/.cache/jaxgan/priors) under a hash of the decoded images and
the prior options, so a second run or `jaxgan evaluate` reads them instead of recomputing; any change
of the data or the options gives another hash. NumPy and JAX only (no TensorFlow).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from pathlib import Path

import numpy as np

PRIORS = ("none", "blind_deconv")
BATCH = 8  # images per jitted call when priors are computed for a whole split
ALGORITHM_VERSION = 2  # bump when jaxgan.blind_deconvolution changes its results: old disk caches stop matching


def check(config) -> None:
    """ValueError for an unknown prior, a prior on a segmentation task or bad prior options."""
    name = config.data.prior
    if name not in PRIORS:
        raise ValueError(f"config.data.prior={name!r}; valid: {', '.join(PRIORS)}")
    if name != "none" and config.task != "deblur":
        raise ValueError(f"config.data.prior={name!r} is for task 'deblur', not {config.task!r}")
    size = int(config.data.prior_options.kernel_size)
    if size < 3 or size % 2 == 0:
        raise ValueError(f"config.data.prior_options.kernel_size must be odd and >= 3, got {size}")
    weights = tuple(config.data.prior_options.deconv_weights)
    if not weights or min(weights) <= 0:
        raise ValueError(f"config.data.prior_options.deconv_weights must be positive numbers, got {weights}")


def input_channels(data_config) -> int:
    """Channels of the network input for a config's data section: 3 (the image), plus 3 per
    deconvolution weight with the 'blind_deconv' prior."""
    if data_config.prior == "none":
        return 3
    return 3 + 3 * len(tuple(data_config.prior_options.deconv_weights))


def _options(config) -> tuple:
    o = config.data.prior_options
    return (int(o.kernel_size), float(o.threshold), float(o.gamma), int(o.iterations),
            tuple(float(w) for w in o.deconv_weights), int(o.deconv_iterations), int(o.max_estimate_side))


@functools.lru_cache(maxsize=8)
def _blind_deconv_fn(options: tuple):
    """jit(vmap): (B, H, W, 3) float32 in [0, 1] -> (B, H, W, 3 n) deconvolutions, clipped to [0, 1]."""
    import jax
    import jax.numpy as jnp

    from jaxgan import blind_deconvolution as deconv  # deferred with jax: the tf.data pipeline imports this module

    size, threshold, gamma, iterations, weights, cg_steps, max_side = options

    def one(image):
        h, w = image.shape[:2]
        ch, cw = min(h, max_side), min(w, max_side)
        top, left = (h - ch) // 2, (w - cw) // 2
        kernel = deconv.estimate_kernel(image[top:top + ch, left:left + cw], size, threshold=threshold,
                                        gamma=gamma, iterations=iterations)
        outs = [deconv.deconvolve(image, kernel, weight=wt, iterations=cg_steps) for wt in weights]
        return jnp.clip(jnp.concatenate(outs, axis=-1), 0.0, 1.0)

    return jax.jit(jax.vmap(one))


def _check_size(shape, config, what: str) -> None:
    side = 2 * int(config.data.prior_options.kernel_size)
    if min(shape[:2]) < side:
        raise ValueError(f"{what} of size {shape[1]}x{shape[0]} is too small for config.data.prior="
                         f"{config.data.prior!r}: its kernel estimate needs both sides >= {side} px")


def compute_priors(images: list[np.ndarray], config, *, what: str = "image") -> list[np.ndarray]:
    """The prior of each uint8 (H, W, 3) image, as uint8 (H, W, 3 n); same-shaped images go through
    the jitted function BATCH at a time (one compile per shape)."""
    import tqdm

    fn = _blind_deconv_fn(_options(config))
    by_shape: dict[tuple, list[int]] = {}
    for i, image in enumerate(images):
        _check_size(image.shape, config, what)
        by_shape.setdefault(image.shape, []).append(i)
    out: list = [None] * len(images)
    with tqdm.tqdm(total=len(images), desc=f"{config.data.prior} prior", unit="img", leave=False,
                   disable=len(images) < 2 * BATCH) as bar:
        for indices in by_shape.values():
            for start in range(0, len(indices), BATCH):
                chunk = indices[start:start + BATCH]
                batch = np.stack([images[i] for i in chunk]).astype(np.float32) / 255.0
                if len(chunk) < BATCH:  # one compiled shape per image size
                    batch = np.concatenate([batch, np.repeat(batch[-1:], BATCH - len(chunk), 0)])
                result = np.asarray(fn(batch))[:len(chunk)]
                for i, r in zip(chunk, result):
                    out[i] = np.round(r * 255.0).astype(np.uint8)
                bar.update(len(chunk))
    return out


def cache_dir(config) -> Path:
    return Path(config.data.prior_cache_dir or os.path.join(os.path.expanduser("~"), ".cache", "jaxgan", "priors"))


def cache_key(images: list[np.ndarray], config) -> str:
    """sha256 over the prior's name, options and algorithm version and every image's shape and bytes."""
    digest = hashlib.sha256(repr((config.data.prior, _options(config), ALGORITHM_VERSION)).encode())
    for image in images:
        digest.update(repr(image.shape).encode())
        digest.update(np.ascontiguousarray(image).tobytes())
    return digest.hexdigest()[:32]


def _read_cache(path: Path, images: list[np.ndarray], channels: int):
    try:
        with np.load(path) as data:
            flat, offsets = data["priors"], data["offsets"]
    except (OSError, ValueError, KeyError) as e:
        logging.warning("ignoring unreadable prior cache %s (%s)", path, e)
        return None
    if len(offsets) != len(images) + 1:
        return None
    out = []
    for image, start, stop in zip(images, offsets[:-1], offsets[1:]):
        shape = image.shape[:2] + (channels,)
        if stop - start != int(np.prod(shape)):
            return None
        out.append(flat[start:stop].reshape(shape))
    return out


def _write_cache(path: Path, priors: list[np.ndarray]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        offsets = np.cumsum([0] + [p.size for p in priors]).astype(np.int64)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, priors=np.concatenate([p.reshape(-1) for p in priors]), offsets=offsets)
        os.replace(tmp, path)
    except OSError as e:  # a read-only cache folder costs a recomputation next time, nothing else
        logging.warning("could not write the prior cache %s (%s)", path, e)


def with_prior_uint8(images: list[np.ndarray], config, *, what: str = "image") -> list[np.ndarray]:
    """Each uint8 (H, W, 3) image with its prior appended: uint8 (H, W, input_channels), read from
    the disk cache when this exact list of images was computed before with the same options."""
    if config.data.prior == "none":
        return list(images)
    channels = input_channels(config.data) - 3
    path = cache_dir(config) / f"{config.data.prior}_{cache_key(images, config)}.npz"
    priors = _read_cache(path, images, channels) if path.exists() else None
    if priors is None:
        logging.info("computing the %s prior of %d images", config.data.prior, len(images))
        priors = compute_priors(images, config, what=what)
        _write_cache(path, priors)
    return [np.concatenate([x, p], axis=-1) for x, p in zip(images, priors)]


def with_prior(image: np.ndarray, config, *, what: str = "image") -> np.ndarray:
    """One float image (H, W, 3) in [-1, 1] with its prior appended (same range): (H, W, input_channels).
    `what` names the image in errors."""
    if config.data.prior == "none":
        return image
    _check_size(image.shape, config, what)
    unit = np.clip((np.asarray(image, np.float32) + 1.0) / 2.0, 0.0, 1.0)
    prior = np.asarray(_blind_deconv_fn(_options(config))(unit[None]))[0]
    return np.concatenate([image, prior * 2.0 - 1.0], axis=-1).astype(np.float32)
