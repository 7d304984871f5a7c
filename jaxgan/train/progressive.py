"""Progressive training: small images first, then the full size (variants.progressive_*).

The schedule is `variants.progressive_sizes` (image sides, e.g. (32, 64, 128)) with
`variants.progressive_steps` (the train step at which each size after the first starts, e.g.
(500, 1000)). Batch number i (0-based; train step i + 1) uses the size of the last phase whose
start <= i. Two kinds (`variants.progressive_mode`):
- 'resolution' (low resolution first, as ProGAN / the article's "progressive resolution"): every
  phase takes the same random data.crop_size window, downscaled to the phase's side
  (data.crop_resize, antialiased; masks nearest), so early phases see the whole field of view at a
  lower resolution (a blur shrinks with the image) and the last one (side = crop_size) the full
  resolution.
- 'patch' (a patch-size curriculum, as Restormer's progressive learning): crops of each side at the
  native scale, with the global batch of each phase from `variants.progressive_batch_sizes`
  (larger crops, smaller batches; () = data.batch_size throughout; its last entry is data.batch_size).
G and D are fully convolutional, so the same parameters go on; the jitted step compiles once per
shape (jax.jit caches by shape). At every switch the loop rebuilds the data iterator with the phase's
config (`phase_config`) and start_step = i, so batch i is the same whether the run went through the
switch or resumed after it (exact resume). Evaluation keeps config.data.crop_size / eval_size.

Fade-in (variants.progressive_fade_steps = K > 0, resolution mode): for the K batches after a
switch from side s to S, each image of the batch is blended with its version at the previous
resolution,
    x <- alpha * x + (1 - alpha) * up(avgpool(x)),   alpha = (i - start + 1) / K,
avgpool by S / s and nearest upsampling back (as ProGAN's fade); class masks are not blended.
"""

from __future__ import annotations

import ml_collections
import numpy as np

def schedule(config: ml_collections.ConfigDict) -> list[tuple[int, int]]:
    """[(start batch index, crop size), ...] sorted by start; [(0, crop_size)] when off (the values
    were checked when the config was read: jaxgan.config_io)."""
    variants = config.variants
    sizes, starts = tuple(int(s) for s in variants.progressive_sizes), tuple(int(s) for s in variants.progressive_steps)
    if not sizes:
        return [(0, int(config.data.crop_size))]
    return list(zip((0,) + starts, sizes))


def phase(config: ml_collections.ConfigDict, index: int) -> tuple[int, int, int]:
    """(phase number, start batch index, crop size) of batch `index` (0-based)."""
    phases = schedule(config)
    number = max(k for k, (start, _) in enumerate(phases) if start <= index)
    return number, phases[number][0], phases[number][1]


def size_at(config: ml_collections.ConfigDict, index: int) -> int:
    """Crop size of batch `index` (0-based)."""
    return phase(config, index)[2]


def phase_config(config: ml_collections.ConfigDict, size: int) -> ml_collections.ConfigDict:
    """A copy of config for the data iterator of the phase of side `size`: data.crop_resize = size
    (resolution mode), or data.crop_size = size and that phase's batch (patch mode)."""
    variants = config.variants
    copy = ml_collections.ConfigDict(config.to_dict())
    if variants.progressive_mode == "resolution":
        copy.data.crop_resize = 0 if int(size) == int(config.data.crop_size) else int(size)
    else:
        copy.data.crop_size = int(size)
        if variants.progressive_batch_sizes:
            sizes = [int(s) for s in variants.progressive_sizes]
            copy.data.batch_size = int(variants.progressive_batch_sizes[sizes.index(int(size))])
    copy.lock()
    return copy


def fade(config: ml_collections.ConfigDict, index: int) -> tuple[float, int]:
    """(alpha, previous size) of batch `index`: alpha 1.0 outside a fade window."""
    number, start, _ = phase(config, index)
    steps = int(config.variants.progressive_fade_steps)
    if number == 0 or steps == 0 or index - start >= steps:
        return 1.0, 0
    return (index - start + 1) / steps, schedule(config)[number - 1][1]


def low_resolution(images: np.ndarray, low_size: int) -> np.ndarray:
    """(B, S, S, C) -> average-pooled to low_size and nearest-upsampled back to S."""
    b, s, _, c = images.shape
    f = s // low_size
    pooled = images.reshape(b, s // f, f, s // f, f, c).mean(axis=(2, 4))
    return np.repeat(np.repeat(pooled, f, axis=1), f, axis=2).astype(images.dtype)


def fade_batch(batch: dict, alpha: float, low_size: int, task) -> dict:
    """The batch with its images blended towards their low-resolution versions (see module docstring);
    the target too when the task's target is an image (`task`: a jaxgan.task object)."""
    if alpha >= 1.0:
        return batch
    out = dict(batch)
    names = ["input", "unlabelled_input"] + (["target"] if task.target_is_image else [])
    for name in names:
        if name in batch:
            x = np.asarray(batch[name], np.float32)
            out[name] = (alpha * x + (1.0 - alpha) * low_resolution(x, low_size)).astype(np.float32)
    return out
