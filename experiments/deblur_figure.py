"""The README's before / after picture: blurred input | jaxgan output | sharp original, side by side,
each labelled with its PSNR against the original (the photo's scikit-image original resized with
Lanczos to the blurred sample's size).

    python experiments/deblur_figure.py experiments/samples/coffee_blurred.png \
        runs/deblur_quick/predictions/coffee_blurred.png coffee.png docs/deblur_quick_coffee.png
"""

import sys
from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image, ImageDraw

PANEL_WIDTH = 250


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) / 255 - b.astype(np.float64) / 255) ** 2)
    return float(10 * np.log10(1.0 / mse))


def main(blurred_path: str, output_path: str, original_name: str, figure_path: str) -> None:
    blurred = Image.open(blurred_path).convert("RGB")
    output = Image.open(output_path).convert("RGB")
    original = Image.open(Path(skimage.data.__file__).parent / original_name).convert("RGB")
    sharp = original.resize(blurred.size, Image.LANCZOS)
    ref = np.asarray(sharp)
    panels = [(blurred, f"input  {psnr(np.asarray(blurred), ref):.2f} dB"),
              (output, f"jaxgan  {psnr(np.asarray(output), ref):.2f} dB"),
              (sharp, "sharp original")]
    height = round(blurred.height * PANEL_WIDTH / blurred.width)
    figure = Image.new("RGB", (3 * PANEL_WIDTH + 8, height + 22), "white")
    draw = ImageDraw.Draw(figure)
    for i, (image, label) in enumerate(panels):
        figure.paste(image.resize((PANEL_WIDTH, height), Image.LANCZOS), (i * (PANEL_WIDTH + 4), 0))
        draw.text((i * (PANEL_WIDTH + 4) + 4, height + 5), label, fill="black")
    figure.save(figure_path, optimize=True)
    print(" | ".join(label for _, label in panels))


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    main(*sys.argv[1:])
