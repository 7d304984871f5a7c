"""The README's crop of the adversarial ablation: the same window of the blurred sample, of two models'
outputs (e.g. deblur_quick with and without the adversarial term) and of the sharp original (resized
with Lanczos to the sample's size), enlarged 2x, each labelled with its PSNR on the whole photo.

    python experiments/deblur_ablation_figure.py experiments/samples/coffee_blurred.png coffee.png \
        "L1 only=runs/quick_noadv/predictions/coffee_blurred.png" "L1 + GAN=runs/quick_adv/predictions/coffee_blurred.png" \
        docs/deblur_ablation_coffee.png
"""

import sys
from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image, ImageDraw

BOX = (150, 60, 270, 180)  # left, top, right, bottom of the window in the 400x266 sample
SCALE = 2


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a.astype(np.float64) / 255 - b.astype(np.float64) / 255) ** 2)))


def main(blurred_path: str, original_name: str, *rest: str) -> None:
    *outputs, figure_path = rest
    blurred = Image.open(blurred_path).convert("RGB")
    sharp = Image.open(Path(skimage.data.__file__).parent / original_name).convert("RGB").resize(blurred.size, Image.LANCZOS)
    ref = np.asarray(sharp)
    panels = [("input", blurred)] + [(label, Image.open(path).convert("RGB"))
                                     for label, path in (o.split("=", 1) for o in outputs)]
    panels = [(f"{label} {psnr(np.asarray(im), ref):.2f} dB", im) for label, im in panels] + [("sharp", sharp)]
    w, h = (BOX[2] - BOX[0]) * SCALE, (BOX[3] - BOX[1]) * SCALE
    figure = Image.new("RGB", (len(panels) * (w + 4), h + 20), "white")
    draw = ImageDraw.Draw(figure)
    for i, (label, im) in enumerate(panels):
        figure.paste(im.crop(BOX).resize((w, h), Image.NEAREST), (i * (w + 4), 0))
        draw.text((i * (w + 4) + 4, h + 4), label, fill="black")
    figure.save(figure_path, optimize=True)
    print(" | ".join(label for label, _ in panels))


if __name__ == "__main__":
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    main(*sys.argv[1:])
