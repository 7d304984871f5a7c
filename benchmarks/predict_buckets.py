"""`jaxgan predict` on a folder of mixed sizes, without and with bucket shapes (jaxgan.infer). Not a test.

    JAX_PLATFORMS=cpu python -m benchmarks.predict_buckets [--model fpn_mobilenet] [--repeats 2]
        [--out DIR]   (default benchmarks/results/latest: predict_buckets_MODEL.json)

A folder of 20 photos (scikit-image's, resized; 2 each of 10 sizes, landscape and portrait, all under
the default tile size 768) goes through `Predictor.predict_array` twice in one process, alternating
before (buckets off: one compile per padded size) and after (infer.BUCKET_SIDES), each time with a
fresh Predictor (a fresh jit, so each pass pays its own compiles). Printed per pass: seconds for the
folder, XLA compiles (jax.monitoring backend-compile events) and their seconds. Then, per image, how
far the bucketed result is from the unbucketed one (max |difference| and PSNR on [0, 1]).

--model: 'fpn_mobilenet' (the DeblurGAN-v2 published generator, random weights, train-mode inference
as published), 'deblur' (the shipped model: trained weights, eval mode, input prior computed per image
before the network, outside what buckets change).
"""

from __future__ import annotations

import argparse
import contextlib
import os

import jax
import numpy as np

from benchmarks import harness, measure

SIZES = ((480, 640), (640, 480), (384, 512), (512, 384), (450, 600), (600, 450), (540, 720), (720, 540),
         (300, 400), (400, 300))


@contextlib.contextmanager
def counting_compiles():
    """Yields a list that collects the duration of every XLA backend compile while active."""
    seen: list[float] = []

    def listener(event: str, duration: float, **_):
        if event == "/jax/core/compile/backend_compile_duration":
            seen.append(duration)

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
    from jaxgan import config_io
    from jaxgan.predict import Predictor

    if model == "deblur":
        return lambda: Predictor.from_pretrained("deblur")
    config = config_io.load_config(harness.CONFIGS / f"{harness.SETUP_CONFIGS[model]}.py")
    g, variables = harness.generator(config)
    return lambda: Predictor.from_config(config, g, variables)


def run_pass(new_predictor, images, buckets) -> dict:
    from jaxgan import infer

    predictor = new_predictor()
    predictor.buckets = infer.BUCKET_SIDES if buckets else ()
    predictor._calls = 0  # the same dropout keys in both passes
    with counting_compiles() as compiles:
        outputs = []

        def run():
            outputs[:] = [predictor.predict_array(x, tile_size=768) for x in images]

        (seconds,) = measure.timed(run, 0, 1)
    return {"buckets": buckets, "seconds": seconds, "compiles": len(compiles), "compile_s": sum(compiles),
            "outputs": outputs}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="fpn_mobilenet", choices=("fpn_mobilenet", "deblur"))
    p.add_argument("--repeats", type=int, default=2, help="before/after pairs, alternated")
    p.add_argument("--out", default="", help="results folder (default benchmarks/results/latest)")
    args = p.parse_args(argv)
    images = folder()
    new_predictor = make_predictor(args.model)
    print(f"{len(images)} images of {len(set(SIZES))} sizes; model {args.model}; load {os.getloadavg()[0]:.1f}; "
          f"cores {len(os.sched_getaffinity(0))}", flush=True)
    passes = []
    for _ in range(args.repeats):
        for buckets in (False, True):
            result = run_pass(new_predictor, images, buckets)
            passes.append(result)
            print(f"buckets {'on ' if buckets else 'off'}: {result['seconds']:.1f} s for the folder, "
                  f"{result['compiles']} compiles ({result['compile_s']:.1f} s)", flush=True)
            jax.clear_caches()
    before = [r for r in passes if not r["buckets"]]
    after = [r for r in passes if r["buckets"]]
    diffs = []
    for x, a, b in zip(images, before[0]["outputs"], after[0]["outputs"]):
        a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
        err = np.abs(a - b) / 2.0  # on [0, 1] (deblur outputs are in [-1, 1])
        mse = float(np.mean(err ** 2))
        diffs.append({"size": x.shape[:2], "max_abs": float(err.max()),
                      "psnr_db": float(10 * np.log10(1.0 / mse)) if mse > 0 else float("inf")})
    for d in diffs:
        print(f"  {d['size'][0]}x{d['size'][1]}: bucketed vs not, max |diff| {d['max_abs']:.2e}, "
              f"PSNR {d['psnr_db']:.1f} dB")
    ratio = np.median([r["seconds"] for r in before]) / np.median([r["seconds"] for r in after])
    print(f"folder time before / after: {ratio:.2f}x; compiles {before[0]['compiles']} -> {after[0]['compiles']}")
    report = {"machine": measure.machine(), "command": measure.command("predict_buckets", argv),
              "model": args.model, "load": os.getloadavg(), "passes": [{k: v for k, v in r.items() if k != "outputs"}
                                                                      for r in passes],
              "differences": diffs, "speedup": ratio}
    measure.write_result(f"predict_buckets_{args.model}", report, out=args.out)
    return report


if __name__ == "__main__":
    main()
