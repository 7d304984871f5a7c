"""jaxgan.predict: a generator bundle run on arrays and files the way `jaxgan predict` runs it: its
tile size and inference mode, one compile per bucket, and nothing of jaxgan.train imported."""

import subprocess
import sys
from pathlib import Path

import jax
import numpy as np

from jaxgan.bundle import GeneratorBundle, Inference
from jaxgan.predict import Predictor
from train_helpers import tiny_config

ROOT = Path(__file__).parents[1]


def test_predict_and_export_import_nothing_of_the_training():
    code = ("import sys, jaxgan.predict, jaxgan.export; "
            "print([m for m in sys.modules if m.startswith('jaxgan.train')])")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert run.stdout.strip() == "[]", run.stdout + run.stderr


def _counting(predictor):
    """The shapes of the batches `predictor` runs G on, recorded."""
    shapes, run = [], predictor._run
    predictor._run = lambda batch: shapes.append(batch.shape) or run(batch)
    return shapes


def test_the_bundles_tile_size_is_the_default_and_zero_runs_the_whole_image():
    config = tiny_config("deblur", norm="none")
    g = GeneratorBundle(config, {}).module()
    variables = jax.tree.map(np.asarray, dict(g.init(jax.random.PRNGKey(0), np.zeros((1, 16, 16, 3), np.float32))))
    image = np.random.default_rng(1).uniform(-1, 1, (40, 72, 3)).astype(np.float32)
    tiled = Predictor(GeneratorBundle(config, variables, Inference(tile_size=32)))
    shapes = _counting(tiled)
    tiled.predict_array(image)
    assert len(shapes) > 1 and set(shapes) == {(1, 32, 32, 3)}
    whole = Predictor(GeneratorBundle(config, variables, Inference(tile_size=0)))
    shapes = _counting(whole)
    out = whole.predict_array(image)
    assert shapes == [(1, 40, 72, 3)]  # one batch of one image, the whole image
    np.testing.assert_allclose(out, np.clip(np.asarray(g.apply(variables, image[None]))[0], -1, 1), atol=1e-5)
    shapes = _counting(whole)
    whole.predict_array(image, tile_size=32)  # the caller's tile size wins
    assert set(shapes) == {(1, 32, 32, 3)}


def _count_compiles(run, name: str) -> int:
    """XLA compiles of jitted functions named `name` (JAX's backend-compile events) while `run()` runs."""
    import jax

    seen = []

    def listener(event, duration, fun_name="", **_):
        if event == "/jax/core/compile/backend_compile_duration" and name in fun_name:
            seen.append(fun_name)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        run()
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    return len(seen)


def test_predictor_with_buckets_compiles_once_per_bucket_not_per_size():
    """5 images of 5 sizes: 5 compiles of the generator today, 1 with buckets (32, 64) after a
    32 x 32 warm-up (every size falls into (32, 32) or (32, 64)); equal outputs at a bucket's size."""
    config = tiny_config("deblur", norm="none")
    g = GeneratorBundle(config, {}).module()  # U-Net depth 2: pads to a multiple of 4 itself
    variables = g.init({"params": jax.random.PRNGKey(0)}, np.zeros((1, 16, 16, 3), np.float32), train=False)
    rng = np.random.default_rng(6)
    sizes = [(21, 30), (25, 17), (31, 50), (20, 45), (30, 35)]
    images = [rng.uniform(-1, 1, (h, w, 3)).astype(np.float32) for h, w in sizes]
    warmup = rng.uniform(-1, 1, (32, 32, 3)).astype(np.float32)

    def compiles(buckets):
        predictor = Predictor.from_config(config, g, variables)
        predictor.buckets = buckets
        predictor.predict_array(warmup)
        outs = []
        count = _count_compiles(lambda: outs.extend(predictor.predict_array(x) for x in images), "apply_generator")
        return count, outs, predictor.predict_array(warmup)

    today, outs_today, warm_today = compiles(())
    bucketed, outs_bucketed, warm_bucketed = compiles((32, 64))
    assert today == len(sizes)
    assert bucketed == 1  # (32, 64): the warm-up compiled (32, 32)
    np.testing.assert_allclose(warm_bucketed, warm_today, rtol=0, atol=1e-5)  # a bucket's own size
    assert all(a.shape == b.shape for a, b in zip(outs_today, outs_bucketed))
