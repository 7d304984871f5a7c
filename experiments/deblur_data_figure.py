"""The README's picture of the deblurring training data: sharp / blurred pairs of leaves_blur's train split
(examples 0..N-1, exactly what training reads), each blurred image with its kernel inset (enlarged 3x).

    python experiments/deblur_data_figure.py docs/leaves_blur_pairs.jpg [--count 6]
"""

import argparse

import numpy as np
from PIL import Image, ImageDraw

from jaxgan.data import leaves_blur
from jaxgan.data.photo_blur import skimage_photo

PANEL = 192


def kernel_inset(kernel: np.ndarray, scale: int = 3) -> Image.Image:
    k = kernel / kernel.max()
    return Image.fromarray((k * 255).astype(np.uint8)).resize((k.shape[1] * scale, k.shape[0] * scale),
                                                              Image.NEAREST).convert("RGB")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("figure")
    parser.add_argument("--count", type=int, default=6)
    parser.add_argument("--synthetic-fraction", type=float, default=0.5)
    args = parser.parse_args()
    photos = [skimage_photo(name) for name in leaves_blur.TRAIN_PHOTOS]
    figure = Image.new("RGB", (args.count * (PANEL + 4), 2 * PANEL + 40), "white")
    draw = ImageDraw.Draw(figure)
    for i in range(args.count):
        ex = leaves_blur.make_example("train", i, args.synthetic_fraction, photos, photos)
        x = i * (PANEL + 4)
        figure.paste(Image.fromarray(ex["sharp"]).resize((PANEL, PANEL), Image.LANCZOS), (x, 0))
        blurred = Image.fromarray(ex["blurred"]).resize((PANEL, PANEL), Image.LANCZOS)
        inset = kernel_inset(ex["kernel"])
        blurred.paste(inset, (PANEL - inset.width, PANEL - inset.height))
        figure.paste(blurred, (x, PANEL + 4))
        draw.text((x + 4, 2 * PANEL + 10), f"#{i} {ex['photo']}, kernel {ex['kernel'].shape[0]} px", fill="black")
    figure.save(args.figure, quality=88, optimize=True)


if __name__ == "__main__":
    main()
