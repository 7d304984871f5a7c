"""`jaxgan predict` on a folder of mixed sizes: today's main against this tree, in one run. Not a test.

    JAX_PLATFORMS=cpu python -m benchmarks.predict_buckets [--model pix2pix] [--before REV]
        [--passes before,after,buckets] [--out DIR]   (default benchmarks/results/latest)
    JAX_PLATFORMS=cpu python -m benchmarks.predict_buckets --padding-study

A folder of 20 photos (scikit-image's, resized; 2 each of 10 sizes, landscape and portrait, all under
the default tile size 768) goes through `Predictor.predict_array` once per pass, each pass in a fresh
process (its own compiles, no cache shared):
  before   the commit --before (default 41e0ad1, today's main; `git archive` into /tmp/buckets/before),
           buckets off: one program per image size
  after    this tree, buckets off: each image padded to the generator's own multiple first (exact)
  buckets  this tree, `--buckets` (jaxgan.infer.BUCKET_SIDES)
Printed per pass: seconds for the folder, XLA compiles (jax.monitoring backend-compile events: all of
them, and those of the generator) with their seconds; then each pass's largest |difference| from
`before` over the folder (outputs on [0, 1]) and the before / after time ratios.

--model: 'pix2pix' (the published U-Net of depth 8, multiple 256, random weights, train-mode inference
as published), 'fpn_mobilenet' (DeblurGAN-v2's, multiple 32), 'deblur' (the shipped NAFNet, multiple
32; its blind-deconvolution prior is compiled per image size before the network: buckets leave it).

--padding-study: a U-Net of depth 4 without normalisation (eval mode: a local network whose convs pad
with zeros), one 200 x 300 image padded to a 256 x 384 bucket with reflect (jaxgan's), zeros and edge:
the largest |difference| from the unbucketed output per distance from the bottom / right border.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SIZES = ((480, 640), (640, 480), (384, 512), (512, 384), (450, 600), (600, 450), (540, 720), (720, 540),
         (300, 400), (400, 300))
PASSES = ("before", "after", "buckets")


@contextlib.contextmanager
def counting_compiles():
    """Yields a list that collects (function name, seconds) of every XLA backend compile while active."""
    import jax

    seen: list[tuple[str, float]] = []

    def listener(event: str, duration: float, fun_name: str = "", **_):
        if event == "/jax/core/compile/backend_compile_duration":
            seen.append((fun_name, duration))

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield seen
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


def folder() -> list[np.ndarray]:
    """20 float images in [-1, 1]: scikit-image photos resized to SIZES (each size twice)."""
    from PIL import Image
    from skimage import data

    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    out = []
    for i, (h, w) in enumerate(SIZES * 2):
        rgb = Image.fromarray(photos[i % len(photos)]).resize((w, h), Image.BICUBIC)
        out.append(np.asarray(rgb, np.float32) / 127.5 - 1.0)
    return out


def make_predictor(model: str):
    """A Predictor of `model` built by whichever jaxgan is on the path (before or after)."""
    from benchmarks import harness
    from jaxgan import config_io
    from jaxgan.predict import Predictor

    if model == "deblur":
        return Predictor.from_pretrained("deblur")
    name = {"pix2pix": "pix2pix", "fpn_mobilenet": "fpn_mobilenet"}[model]
    config = config_io.load_config(harness.CONFIGS / f"{harness.SETUP_CONFIGS[name]}.py")
    g, variables = harness.generator(config)
    return Predictor.from_config(config, g, variables)


def worker(model: str, buckets: bool, outputs: str) -> None:
    """One pass in this process: prints its result as one JSON line, saves the outputs to `outputs`."""
    import jaxgan

    predictor = make_predictor(model)
    images = folder()
    if buckets:
        from jaxgan import infer
        predictor.buckets = infer.BUCKET_SIDES
    predictor._calls = 0  # the same dropout keys in every pass
    with counting_compiles() as compiles:
        start = time.perf_counter()
        results = [predictor.predict_array(x, tile_size=768) for x in images]
        seconds = time.perf_counter() - start
    generator = [s for name, s in compiles if "apply_generator" in name]
    np.savez(outputs, *[np.asarray(r, np.float32) for r in results])
    print(json.dumps({"jaxgan": str(Path(jaxgan.__file__).parent.parent), "seconds": seconds,
                      "compiles": len(compiles), "compile_s": sum(s for _, s in compiles),
                      "generator_compiles": len(generator), "generator_compile_s": sum(generator),
                      "load": os.getloadavg()[0]}))


def before_tree(rev: str) -> Path:
    """`git archive REV` unpacked under /tmp/buckets/before-REV (once)."""
    path = Path(tempfile.gettempdir()) / "buckets" / f"before-{rev}"
    if not (path / "jaxgan").is_dir():
        path.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(path)], input=archive, check=True)
    return path


def run_pass(name: str, model: str, rev: str, work: Path) -> dict:
    tree = before_tree(rev) if name == "before" else ROOT
    outputs = work / f"{name}.npz"
    env = {**os.environ, "PYTHONPATH": str(tree), "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu")}
    code = (f"import sys; sys.path.insert(1, {str(Path(__file__).parent)!r}); from predict_buckets import worker; "
            f"worker({model!r}, {name == 'buckets'!r}, {str(outputs)!r})")
    run = subprocess.run([sys.executable, "-c", code], env=env, cwd=tree, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise RuntimeError(f"pass {name} failed:\n{run.stderr[-3000:]}")
    result = json.loads(run.stdout.strip().splitlines()[-1])
    with np.load(outputs) as f:
        result["outputs"] = [f[k] for k in sorted(f.files, key=lambda k: int(k.split("_")[1]))]
    return {"pass": name, **result}


def padding_study() -> dict:
    """Bucket padding modes against the unbucketed output of a local zero-padded conv net, by distance
    from the bottom / right border (the module docstring)."""
    import jax

    from jaxgan.nets import UNet

    g = UNet(depth=4, base_width=8, norm="none")
    variables = g.init(jax.random.PRNGKey(0), np.zeros((1, 32, 32, 3), np.float32))
    apply = jax.jit(lambda b: g.apply(variables, b))
    image = folder()[0][:200, :300]
    today = np.asarray(apply(image[None]))[0]
    bands = ((0, 8), (8, 16), (16, 32), (32, 64), (64, 200))
    rows = {}
    for mode in ("reflect", "constant", "edge"):
        padded = np.pad(image, ((0, 256 - 200), (0, 384 - 300), (0, 0)), mode=mode)
        diff = np.abs(np.asarray(apply(padded[None]))[0][:200, :300] - today)
        distance = np.minimum(np.arange(200)[::-1, None], np.arange(300)[::-1][None, :])  # to bottom / right
        rows[mode] = {f"{lo}-{hi}": float(diff[(distance >= lo) & (distance < hi)].max()) for lo, hi in bands}
        print(f"{mode:>8}: " + "  ".join(f"{k} px: {v:.1e}" for k, v in rows[mode].items()), flush=True)
    return rows


def main(argv=None) -> dict:
    from benchmarks import measure

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="pix2pix", choices=("pix2pix", "fpn_mobilenet", "deblur"))
    p.add_argument("--before", default="41e0ad1", help="the commit that is today's main")
    p.add_argument("--passes", default=",".join(PASSES), help=f"comma-separated, of {', '.join(PASSES)}")
    p.add_argument("--padding-study", action="store_true", help="only the padding-mode study")
    p.add_argument("--out", default="", help="results folder (default benchmarks/results/latest)")
    args = p.parse_args(argv)
    if args.padding_study:
        report = {"machine": measure.machine(), "command": measure.command("predict_buckets", argv),
                  "max_abs_by_border_distance": padding_study()}
        measure.write_result("predict_buckets_padding", report, out=args.out)
        return report
    print(f"20 images of {len(SIZES)} sizes; model {args.model}; load {os.getloadavg()[0]:.1f}; "
          f"cores {len(os.sched_getaffinity(0))}", flush=True)
    passes = []
    with tempfile.TemporaryDirectory() as work:
        for name in args.passes.split(","):
            result = run_pass(name, args.model, args.before, Path(work))
            passes.append(result)
            print(f"{name:>8}: {result['seconds']:6.1f} s for the folder, {result['compiles']} compiles "
                  f"({result['compile_s']:.1f} s), of the generator {result['generator_compiles']} "
                  f"({result['generator_compile_s']:.1f} s); load {result['load']:.1f}", flush=True)
    base = passes[0]
    for r in passes:
        r["max_abs_vs_first"] = max(float(np.abs(a - b).max()) / 2.0 for a, b in zip(base["outputs"], r["outputs"]))
        r["ratio_vs_first"] = base["seconds"] / r["seconds"]
        r["compile_share"] = r["compile_s"] / r["seconds"]
        print(f"{r['pass']:>8}: {base['pass']} / {r['pass']} time {r['ratio_vs_first']:.2f}x, compile share "
              f"{100 * r['compile_share']:.0f} %, max |output - {base['pass']}'s| {r['max_abs_vs_first']:.1e}")
    report = {"machine": measure.machine(), "command": measure.command("predict_buckets", argv),
              "model": args.model, "before": args.before,
              "passes": [{k: v for k, v in r.items() if k != "outputs"} for r in passes]}
    measure.write_result(f"predict_buckets_{args.model}", report, out=args.out)
    return report


if __name__ == "__main__":
    main()
