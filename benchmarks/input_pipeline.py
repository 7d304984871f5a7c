"""Input-pipeline throughput (images/s) of jaxgan.data for 256x256 training crops. Not a test.

    JAX_PLATFORMS=cpu python -m benchmarks.input_pipeline [--batches 50] [--batch-size 8]
        [--data-dir DIR] [--folder-pairs 24] [--folder-size 720x1280] [--no-cache] [--train-step]

Measured (images/s = input/target pairs per second, after the first batch, which pays for building
the dataset, opening files and filling the decoded cache):
- photo_blur: the built-in dataset (256x256 stored crops; generated on first use in --data-dir);
- folder_deblur: a temporary flat blur/ + sharp/ folder of --folder-pairs PNG pairs of --folder-size
  (GoPro frames are 720x1280), with and without the decoded-example cache.
With --train-step it also times the pix2pix train step (jaxgan.train; U-Net + PatchGAN of
--width base channels) fed by the photo_blur pipeline, i.e. the rate at which training consumes images.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
from PIL import Image, ImageFilter

from jaxgan.config import base_config


def throughput(config, batches: int) -> tuple[float, float]:
    """(seconds to the first batch, images/s over the next `batches` batches)."""
    from jaxgan.data import make_train_iterator

    start = time.perf_counter()
    iterator = make_train_iterator(config, process_index=0, process_count=1)
    next(iterator)
    first = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return first, batches * config.data.batch_size / (time.perf_counter() - start)


def make_folder(root: str, pairs: int, height: int, width: int) -> None:
    """A flat blur/ + sharp/ folder of random smooth-ish PNG pairs."""
    rng = np.random.default_rng(0)
    for sub in ("blur", "sharp"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    base = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
    for i in range(pairs):
        image = Image.fromarray(np.roll(base, i, axis=1)).resize((width, height), Image.BILINEAR)
        image.save(os.path.join(root, "sharp", f"{i:06d}.png"))
        image.filter(ImageFilter.BoxBlur(3)).save(
            os.path.join(root, "blur", f"{i:06d}.png"))


def time_train_step(config, batches: int, width: int) -> None:
    """Images/s of the pix2pix train step fed by the pipeline (needs jaxgan.train)."""
    # ---- pix2pix train step consumption rate (optional; needs jaxgan.train) -------------------
    try:
        import jax

        from jaxgan.train import create_state, make_loss_nets, make_modules, make_step_fns
    except ImportError as e:
        print(f"train step: skipped (jaxgan.train unavailable: {e})")
        return
    from jaxgan.data import make_train_iterator

    c = config.copy_and_resolve_references()
    c.generator.options.base_width = width
    c.discriminator.options.base_width = width
    g_module, d_module = make_modules(c)
    iterator = make_train_iterator(c, process_index=0, process_count=1)
    batch = next(iterator)
    state = create_state(c, g_module, d_module, batch, jax.random.PRNGKey(0))
    step = jax.jit(make_step_fns(c).train_step, donate_argnums=0)
    loss_nets = make_loss_nets(c)
    state, metrics = step(state, batch, loss_nets)  # compile
    jax.block_until_ready(metrics)
    start = time.perf_counter()
    for _ in range(batches):
        state, metrics = step(state, next(iterator), loss_nets)
    jax.block_until_ready(metrics)
    rate = batches * c.data.batch_size / (time.perf_counter() - start)
    print(f"pix2pix train step (U-Net/PatchGAN width {width}, batch {c.data.batch_size}, "
          f"{c.data.crop_size}px, {jax.devices()[0].platform}): {rate:.1f} images/s consumed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--data-dir", default=os.path.join(tempfile.gettempdir(), "jaxgan_bench_tfds"))
    parser.add_argument("--folder-pairs", type=int, default=24)
    parser.add_argument("--folder-size", default="720x1280", help="HEIGHTxWIDTH of the folder images")
    parser.add_argument("--no-cache", action="store_true", help="photo_blur without the decoded cache")
    parser.add_argument("--train-step", action="store_true", help="also time the pix2pix train step")
    parser.add_argument("--width", type=int, default=64, help="base width of G and D for --train-step")
    args = parser.parse_args()

    c = base_config()
    c.data.data_dir = args.data_dir
    c.data.crop_size = 256
    c.data.batch_size = args.batch_size
    c.data.cache = not args.no_cache
    print(f"cores: {os.cpu_count()}, batch {args.batch_size}, 256x256 crops, flips + rot90")
    first, rate = throughput(c, args.batches)
    print(f"photo_blur (cache={c.data.cache}): {rate:.0f} images/s (first batch after {first:.1f} s)")

    height, width = (int(v) for v in args.folder_size.split("x"))
    with tempfile.TemporaryDirectory() as root:
        make_folder(root, args.folder_pairs, height, width)
        c.data.name, c.data.path = "folder_deblur", root
        for cache in (False, True):
            c.data.cache = cache
            first, rate = throughput(c, args.batches)
            print(f"folder_deblur {args.folder_pairs} pairs of {width}x{height} PNG (cache={cache}): "
                  f"{rate:.0f} images/s (first batch after {first:.1f} s)")

    if args.train_step:
        c.data.name, c.data.cache = "photo_blur", True
        time_train_step(c, max(2, args.batches // 10), args.width)


if __name__ == "__main__":
    main()
