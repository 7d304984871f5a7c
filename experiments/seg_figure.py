"""README pictures for segmentation: a grid of generated seg_scenes training scenes (each above its mask),
and held-out predictions: for each held-out set (jaxgan.data.seg_heldout), rows of scenes with the
columns input | target | one prediction per run (titled by the run's name).

    python experiments/seg_figure.py scenes docs/seg_scenes_grid.png
    python experiments/seg_figure.py predictions docs/seg_heldout_predictions.png NAME=WORKDIR [NAME=WORKDIR ...]
"""

import sys

import numpy as np
from PIL import Image, ImageDraw

PAD = 2


def _tile(image: np.ndarray) -> np.ndarray:
    return np.pad(image, ((PAD, PAD), (PAD, PAD), (0, 0)), constant_values=255)


def _mask_rgb(mask: np.ndarray) -> np.ndarray:
    return np.repeat(mask.astype(np.uint8)[..., None] * 255, 3, -1)


def scenes_grid(path: str, rows: int = 3, cols: int = 8, seed: int = 0) -> None:
    from jaxgan.data import seg_scenes

    lines = []
    for r in range(rows):
        pairs = [seg_scenes.scene_at(seed, "train", r * cols + c) for c in range(cols)]
        lines.append(np.concatenate([_tile(im) for im, _ in pairs], 1))
        lines.append(np.concatenate([_tile(_mask_rgb(m)) for _, m in pairs], 1))
    Image.fromarray(np.concatenate(lines, 0)).save(path)


def predictions_grid(path: str, runs: list[str], per_set: int = 3) -> None:
    from jaxgan.data import seg_heldout
    from jaxgan.predict import Predictor

    names, predictors = [], []
    for run in runs:
        name, workdir = run.split("=", 1)
        names.append(name)
        predictors.append(Predictor.from_workdir(workdir))
    lines = []
    for split in seg_heldout.SETS:
        for i in range(per_set):
            image, mask = seg_heldout.heldout_scene(split, i)
            x = image.astype(np.float32) / 127.5 - 1.0
            panels = [image, _mask_rgb(mask)] + [_mask_rgb(p.predict_array(x) > 0) for p in predictors]
            lines.append(np.concatenate([_tile(p) for p in panels], 1))
    grid = np.concatenate(lines, 0)
    header = Image.new("RGB", (grid.shape[1], 16), "white")
    draw = ImageDraw.Draw(header)
    for k, title in enumerate(["input", "target"] + names):
        draw.text((k * (128 + 2 * PAD) + 4, 2), title, fill="black")
    Image.fromarray(np.concatenate([np.asarray(header), grid], 0)).save(path)


if __name__ == "__main__":
    if sys.argv[1] == "scenes":
        scenes_grid(sys.argv[2])
    else:
        predictions_grid(sys.argv[2], sys.argv[3:])
