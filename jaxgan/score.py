"""`jaxgan score PRED_DIR TARGET_DIR`: any method's output images scored against ground truth, in the
convention of a paper's code.

Files are matched by name (stem; jaxgan predict's STEM_mask.png counts as STEM). Every convention
works on the 8-bit images as written to disk; `crop` pixels are shaved off each side first.

- jaxgan: what `jaxgan evaluate` reports (jaxgan.metrics): RGB in [0, 1], PSNR over H, W, C; SSIM
  with an 11x11 Gaussian window (sigma 1.5) over the valid positions, averaged over the channels.
- basicsr: BasicSR's basicsr/metrics/psnr_ssim.py `calculate_psnr` / `calculate_ssim` with
  test_y_channel=True: Y of BT.601 YCbCr (basicsr/utils/color_util.py `rgb2ycbcr`, y_only, kept
  float32 in [0, 1] then times 255, unrounded, as basicsr/metrics/metric_util.py `to_y_channel`),
  PSNR with peak 255, SSIM of Wang et al. (11x11 Gaussian, sigma 1.5, valid positions) on Y.
- matlab: MATLAB's `rgb2ycbcr` on uint8 (Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255, rounded
  to uint8), `psnr` (peak 255) and the Image Processing Toolbox `ssim` (Gaussian weighting, sigma 1.5,
  an 11x11 filter, replicated borders, the mean of the whole same-size map) on that Y. MATLAB computes
  SSIM of uint8 images in single precision; here in double (they differ by ~1e-6).
- deblurganv2: DeblurGAN-v2's test_metrics.py: PSNR as its util/metrics.py `PSNR` (RGB / 255, 100
  when identical) and, as its "SSIM", pyssim's `SSIM(pred).cw_ssim_value(target)` (test_metrics.py:67):
  complex-wavelet SSIM of the PIL grayscale images, flattened row by row, under scipy's old
  `cwt(signal, ricker, widths 1..30)`, k = 0.01 (pyssim ssim/ssimlib.py up to 0.7.0; 0.7.1 moved to
  PyWavelets). It is not SSIM.
Masks (task segment): per-image IoU / Dice (jaxgan.metrics), whatever the convention.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
import sys
from pathlib import Path

import jax
import numpy as np
from PIL import Image, ImageOps
from scipy import ndimage
from scipy.signal import fftconvolve

from jaxgan import images, metrics
from jaxgan.bundle import load_generator
from jaxgan.infer import flip_ensemble

CONVENTIONS = ("jaxgan", "matlab", "basicsr", "deblurganv2")
BT601_Y = np.array([65.481, 128.553, 24.966])  # Y = 16 + BT601_Y . RGB / 255 on 8-bit RGB
SSIM_SIGMA = 1.5
SSIM_RADIUS = 5  # the 11x11 window of Wang et al., BasicSR and MATLAB (ceil(3 sigma))
CW_SSIM_WIDTHS = 30
CW_SSIM_K = 0.01


class ScoreError(ValueError):
    """A folder pair that cannot be scored (a file without its partner, two sizes); the message says which."""


# ---- the conventions' pieces ------------------------------------------------------------------

def y_basicsr(rgb: np.ndarray) -> np.ndarray:
    """BasicSR's Y on 8-bit RGB: float32 [0, 1] Y, times 255 (float64, unrounded)."""
    unit = rgb.astype(np.float32) / 255.0
    y = (unit @ BT601_Y + 16.0) / 255.0  # rgb2ycbcr on float32 [0, 1]: Y / 255, returned as float32
    return (y.astype(np.float32) * 255.0).astype(np.float64)


def y_matlab(rgb: np.ndarray) -> np.ndarray:
    """MATLAB's rgb2ycbcr on uint8: Y rounded (half away from zero) to uint8, as float64."""
    y = rgb.astype(np.float64) @ (BT601_Y / 255.0) + 16.0
    return np.clip(np.floor(y + 0.5), 0, 255)


def psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(peak * peak / mse)


def _ssim_map(a: np.ndarray, b: np.ndarray, peak: float, mode: str) -> np.ndarray:
    """Wang et al.'s SSIM map of two 2-D images, Gaussian-weighted statistics (population), borders
    `mode` (scipy.ndimage)."""
    def blur(x):
        return ndimage.gaussian_filter(x, SSIM_SIGMA, mode=mode, truncate=SSIM_RADIUS / SSIM_SIGMA)

    a, b = a.astype(np.float64), b.astype(np.float64)
    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b, cov = blur(a * a) - mu_a ** 2, blur(b * b) - mu_b ** 2, blur(a * b) - mu_a * mu_b
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))


def ssim_valid(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    """Wang et al. / BasicSR: the mean over the positions where the 11x11 window fits."""
    r = SSIM_RADIUS
    return float(_ssim_map(a, b, peak, "reflect")[r:-r, r:-r].mean())


def ssim_matlab(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """MATLAB's ssim: replicated borders, the mean of the same-size map."""
    return float(_ssim_map(a, b, peak, "nearest").mean())


def _ricker_cwt(signal: np.ndarray, widths) -> np.ndarray:
    """scipy.signal.cwt(signal, scipy.signal.ricker, widths) as scipy <= 1.14 computed it (both removed
    in 1.15): per width w, 'same' convolution with the Mexican hat of min(10 w, len) points."""
    out = np.empty((len(widths), len(signal)))
    for i, w in enumerate(widths):
        points = min(10 * w, len(signal))
        t = np.arange(points) - (points - 1.0) / 2
        hat = 2 / (np.sqrt(3 * w) * np.pi ** 0.25) * (1 - t ** 2 / w ** 2) * np.exp(-t ** 2 / (2 * w ** 2))
        out[i] = fftconvolve(signal, hat[::-1], mode="same")
    return out


def cw_ssim(gray_a: np.ndarray, gray_b: np.ndarray, width: int = CW_SSIM_WIDTHS, k: float = CW_SSIM_K) -> float:
    """pyssim's cw_ssim_value on two grayscale images (flattened row by row)."""
    widths = np.arange(1, width + 1)
    ca = _ricker_cwt(gray_a.reshape(-1).astype(np.float64), widths)
    cb = _ricker_cwt(gray_b.reshape(-1).astype(np.float64), widths)
    magnitude = (2 * np.sum(np.abs(ca) * np.abs(cb), 0) + k) / (np.sum(ca ** 2, 0) + np.sum(cb ** 2, 0) + k)
    product = ca * np.conj(cb)
    phase = (2 * np.abs(np.sum(product, 0)) + k) / (2 * np.sum(np.abs(product), 0) + k)
    return float(np.mean(magnitude * phase))


def pil_gray(rgb: np.ndarray) -> np.ndarray:
    """PIL's ImageOps.grayscale (ITU-R 601-2 luma, 8-bit), as pyssim reads an image."""
    return np.asarray(ImageOps.grayscale(Image.fromarray(rgb)))


def image_scores(pred: np.ndarray, target: np.ndarray, convention: str = "jaxgan", crop: int = 0) -> dict:
    """{"psnr", "ssim"} of two uint8 RGB images (H, W, 3) in `convention`, `crop` pixels shaved off."""
    if convention not in CONVENTIONS:
        raise ScoreError(f"unknown convention {convention!r}; valid: {', '.join(CONVENTIONS)}")
    if crop:
        pred, target = pred[crop:-crop, crop:-crop], target[crop:-crop, crop:-crop]
    if convention == "jaxgan":
        a, b = (np.asarray(x, np.float32)[None] / 255.0 for x in (pred, target))
        return {"psnr": float(metrics.psnr(a, b)[0]), "ssim": float(metrics.ssim(a, b)[0])}
    if convention == "basicsr":
        a, b = y_basicsr(pred), y_basicsr(target)
        return {"psnr": psnr(a, b, 255.0), "ssim": ssim_valid(a, b, 255.0)}
    if convention == "matlab":
        a, b = y_matlab(pred), y_matlab(target)
        return {"psnr": psnr(a, b, 255.0), "ssim": ssim_matlab(a, b)}
    mse = float(np.mean((pred / 255.0 - target / 255.0) ** 2))  # deblurganv2
    return {"psnr": 100.0 if mse == 0 else 20 * math.log10(1.0 / math.sqrt(mse)),
            "ssim": cw_ssim(pil_gray(pred), pil_gray(target))}


def mask_scores(pred: np.ndarray, target: np.ndarray, num_classes: int) -> dict:
    """{"iou", "dice"} (means over the classes present) and the confusion matrix of two label masks."""
    confusion = np.asarray(metrics.confusion_matrix(pred, target, num_classes))
    s = metrics.segmentation_scores(confusion)
    return {"iou": s["mean_iou"], "dice": s["mean_dice"], "confusion": confusion}


# ---- folders ------------------------------------------------------------------------------------

def _by_stem(folder: Path, strip: str = "") -> dict[str, Path]:
    if not folder.is_dir():
        raise ScoreError(f"{folder} is not a folder")
    found: dict[str, Path] = {}
    for path in images.list_images([str(folder)]):
        stem = str(path.relative_to(folder).with_suffix(""))
        if strip and stem.endswith(strip):
            stem = stem[: -len(strip)]
        if stem in found:
            raise ScoreError(f"{found[stem]} and {path} have one name: which is the result for {stem}?")
        found[stem] = path
    if not found:
        raise ScoreError(f"{folder} holds no images")
    return found


def pair_files(pred_dir: str, target_dir: str, task: str = "deblur") -> list[tuple[str, Path, Path]]:
    """(name, prediction, target) for every target, matched by file name (a masks' prediction folder
    written by jaxgan predict: STEM_mask.png, its overlays left out). ScoreError names a file without
    its partner."""
    pred_root, target_root = Path(pred_dir), Path(target_dir)
    targets = _by_stem(target_root)
    preds = _by_stem(pred_root)
    if task == "segment" and any(s.endswith("_mask") for s in preds):
        preds = {s[: -len("_mask")]: p for s, p in preds.items() if s.endswith("_mask")}
    for name, path in targets.items():
        if name not in preds:
            raise ScoreError(f"no prediction for {path} in {pred_root} (matched by file name)")
    for name, path in preds.items():
        if name not in targets:
            raise ScoreError(f"no target for {path} in {target_root} (matched by file name)")
    return [(name, preds[name], targets[name]) for name in sorted(targets)]


def read_mask(path: Path) -> np.ndarray:
    """A label mask: a one-channel image of class indices (0/255 binary masks read as 0/1), or an RGB
    one in jaxgan's palette (jaxgan predict's STEM_mask.png)."""
    with Image.open(path) as im:
        if im.mode in ("L", "P", "1", "I", "I;16"):
            mask = np.asarray(im.convert("L") if im.mode == "1" else im).astype(np.int64)
            return (mask > 0).astype(np.int64) if set(np.unique(mask)) <= {0, 255} else mask
    rgb = images.read_image(path)
    palette = images.PALETTE.astype(np.int64)
    codes = (rgb.astype(np.int64) @ np.array([65536, 256, 1]))
    table = {int(c): i for i, c in enumerate(palette @ np.array([65536, 256, 1]))}
    unknown = set(np.unique(codes).tolist()) - set(table)
    if unknown:
        raise ScoreError(f"{path}: an RGB mask must use jaxgan's palette (or save masks as one-channel class indices)")
    return np.vectorize(table.get)(codes)


def score_folders(pred_dir: str, target_dir: str, *, task: str = "deblur", convention: str = "jaxgan",
                  crop: int = 0, lpips: bool = True) -> tuple[list[dict], dict]:
    """(one row per image, the means): deblur {"psnr", "ssim"[, "lpips"]}; segment {"iou", "dice"} and
    the summary's `dataset_iou` / `dataset_dice` over all pixels (as jaxgan evaluate)."""
    if convention not in CONVENTIONS:
        raise ScoreError(f"unknown convention {convention!r}; valid: {', '.join(CONVENTIONS)}")
    pairs = pair_files(pred_dir, target_dir, task)
    read = read_mask if task == "segment" else images.read_image
    loaded = []
    for name, p, t in pairs:
        a, b = read(p), read(t)
        if a.shape != b.shape:
            raise ScoreError(f"{p} is {a.shape[1]}x{a.shape[0]} but its target {t} is {b.shape[1]}x{b.shape[0]}")
        if task != "segment" and min(a.shape[:2]) - 2 * crop < 2 * SSIM_RADIUS + 1:
            raise ScoreError(f"{p}: {a.shape[1]}x{a.shape[0]} less a {crop}-pixel border is under SSIM's 11x11 window")
        loaded.append((name, a, b))
    rows: list[dict] = []
    if task == "segment":
        num_classes = int(max(max(a.max(), b.max()) for _, a, b in loaded)) + 1
        total = np.zeros((num_classes, num_classes), np.int64)
        for name, a, b in loaded:
            s = mask_scores(a, b, num_classes)
            total += s.pop("confusion")
            rows.append({"name": name, **s})
            dataset = metrics.segmentation_scores(total)
        summary = {"iou": _mean(rows, "iou"), "dice": _mean(rows, "dice"),
                   "dataset_iou": dataset["mean_iou"], "dataset_dice": dataset["mean_dice"]}
    else:
        model = None
        if lpips:
                    model = metrics.LPIPS()
        for name, a, b in loaded:
            row = {"name": name, **image_scores(a, b, convention, crop)}
            if model is not None:
                row["lpips"] = float(model(images.to_float(a)[None], images.to_float(b)[None])[0])
            rows.append(row)
        summary = {k: _mean(rows, k) for k in rows[0] if k != "name"}
    return rows, {"convention": convention, "num_images": len(rows), **summary}


def _mean(rows: list[dict], key: str) -> float:
    return float(np.mean([r[key] for r in rows]))


# ---- a trained run's eval split (`jaxgan evaluate --convention`) --------------------------------

def to_uint8(image: np.ndarray, convention: str) -> np.ndarray:
    """A generator's image in [-1, 1] as the convention's code saves it: rounded, or truncated as
    DeblurGAN-v2's test_metrics.py:59-61 (`((x + 1) / 2 * 255).astype('uint8')`, after the clip)."""
    scaled = (np.clip(np.asarray(image, np.float64), -1.0, 1.0) + 1.0) / 2.0 * 255.0
    return (scaled if convention == "deblurganv2" else np.round(scaled)).astype(np.uint8)


def _make_eval_iterator(config, split):
    from jaxgan import data  # deferred (TensorFlow): only evaluation reads data

    return data.make_eval_iterator(config, split=split)


def evaluate_in_convention(workdir: str, config=None, split: str | None = None, convention: str = "basicsr",
                           crop: int = 0) -> dict:
    """Mean PSNR / SSIM of a deblurring run's outputs on `split` (config.data.eval_split by default),
    each output and target turned into 8-bit images (`to_uint8`) and scored in `convention`
    (`image_scores`), one image at a time. `config`: the data to evaluate on (default: the run's)."""
    bundle = load_generator(workdir)
    config = config or bundle.config
    if config.task != "deblur":
        raise ScoreError("--convention chooses how PSNR / SSIM are computed: for deblurring runs only")
    apply = jax.jit(bundle.apply_fn(train_mode=bool(config.eval.train_mode_inference)))
    variables = bundle.variables
    views = int(config.eval.get("flip_views", 1))  # test-time flips, as jaxgan evaluate
    rows = []
    for index, batch in enumerate(_make_eval_iterator(config, split)):
        key = jax.random.fold_in(jax.random.PRNGKey(int(config.seed)), index)  # as jaxgan evaluate
        run = functools.partial(apply, variables, key=key)
        out = np.asarray(flip_ensemble(run, np.asarray(batch["input"], np.float32), views))
        valid = np.asarray(batch.get("valid", np.ones(len(out), bool)), bool)
        for pred, target in zip(out[valid], np.asarray(batch["target"])[valid]):
            rows.append(image_scores(to_uint8(pred, convention), to_uint8(target, "jaxgan"), convention, crop))
    if not rows:
        raise ScoreError(f"evaluation split {split or config.data.eval_split!r} yielded no valid examples")
    return {"convention": convention, "crop_border": crop, "psnr": _mean(rows, "psnr"), "ssim": _mean(rows, "ssim"),
            "num_examples": len(rows)}


# ---- output -------------------------------------------------------------------------------------

def table(rows: list[dict], summary: dict) -> str:
    """A plain text table: one line per image, then the mean."""
    keys = [k for k in rows[0] if k != "name"]
    width = max(len("mean"), *(len(r["name"]) for r in rows))
    lines = [f"{'image':<{width}}  " + "  ".join(f"{k:>10}" for k in keys)]
    for r in [*rows, {"name": "mean", **{k: summary[k] for k in keys}}]:
        lines.append(f"{r['name']:<{width}}  " + "  ".join(f"{r[k]:>10.4f}" for k in keys))
    return "\n".join(lines)


def csv_text(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def main_score(args) -> int:
    """The `jaxgan score` command (called by jaxgan.cli)."""
    outputs = [Path(p) for p in (args.json, args.csv) if p]
    for path in outputs:
        if path.exists():
            raise ScoreError(f"{path} exists; score never overwrites a file: remove it or choose another name")
    rows, summary = score_folders(args.pred_dir, args.target_dir, task=args.task, convention=args.convention,
                                  crop=args.crop_border, lpips=args.lpips)
    print(table(rows, summary))
    if args.json:
        Path(args.json).write_text(json.dumps({"summary": summary, "images": rows}, indent=1) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    if args.csv:
        Path(args.csv).write_text(csv_text(rows))
        print(f"wrote {args.csv}", file=sys.stderr)
    return 0


__all__ = ["CONVENTIONS", "ScoreError", "cw_ssim", "image_scores", "mask_scores", "pair_files", "score_folders"]
