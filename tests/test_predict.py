"""jaxgan.predict: a generator bundle run on arrays and files the way `jaxgan predict` runs it: its
tile size and inference mode, one compile per bucket, and nothing of jaxgan.train imported."""

import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

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


def _predict_all(predictor, images) -> tuple[int, list]:
    """(compiles of G, outputs) of `predictor` run on each image."""
    outs = []
    count = _count_compiles(lambda: outs.extend(predictor.predict_array(x) for x in images), "apply_generator")
    return count, outs


def _images(sizes, seed):
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1, 1, (h, w, 3)).astype(np.float32) for h, w in sizes]


def test_predictor_pads_to_the_generators_multiple_first_one_program_per_padded_shape_same_output():
    """A U-Net of depth 3 (multiple 8) with instance norm (statistics over the whole padded image):
    6 sizes that pad to 2 shapes compile 2 programs, not 6, and give the unpadded call's outputs."""
    config = tiny_config("deblur", norm="instance")
    with config.generator.unlocked():
        config.generator.options.depth = 3
    g = GeneratorBundle(config, {}).module()
    variables = g.init({"params": jax.random.PRNGKey(0)}, np.zeros((1, 16, 16, 3), np.float32), train=False)
    images = _images([(21, 30), (23, 27), (17, 31), (24, 25), (40, 33), (35, 38)], 10)  # -> (24, 32), (40, 40)
    outputs = {}
    for multiple in (1, 8):  # 1: each image as it is (the generator pads it itself)
        predictor = Predictor.from_config(config, g, variables)
        assert predictor.multiple == 8
        predictor.multiple = multiple
        count, outputs[multiple] = _predict_all(predictor, images)
        assert count == (len(images) if multiple == 1 else 2)
    for a, b in zip(outputs[1], outputs[8]):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-5)


TINY_ZOO = {"unet": {"depth": 3, "base_width": 4, "norm": "instance"}, "resnet": {"base_width": 4, "num_blocks": 1},
            "fpn_mobilenet": {"base_width": 4, "backbone_width": 0.25},
            "nafnet": {"base_width": 4, "depth": 1, "blocks": 1, "middle_blocks": 0, "space_to_depth": 2}}


@pytest.mark.parametrize("name", list(TINY_ZOO))
def test_every_zoo_generator_gives_the_same_output_padded_to_its_multiple_first(name):
    """What `Predictor` relies on (exact_pad_multiple): G(pad(x))[:h, :w] == G(x) within 1e-5, in train mode
    (statistics of the batch: FPN-MobileNet's backbone batch norm; the same dropout masks)."""
    from jaxgan.infer import pad_to_shape
    from jaxgan.nets import make_generator
    from jaxgan.nets.inference import exact_pad_multiple

    g = make_generator(name, in_channels=3, out_channels=3, **TINY_ZOO[name])
    m = exact_pad_multiple(g)
    assert m == g.size_multiple > 1
    x = _images([(37, 45)], 11)[0]
    padded = pad_to_shape(x, -(-37 // m) * m, -(-45 // m) * m)
    variables = jax.jit(g.init)(jax.random.PRNGKey(0), x[None])  # (eager: a minute for MobileNet)

    @jax.jit
    def run(image):
        out, _ = g.apply(variables, image[None], train=True, mutable=["batch_stats"],
                         rngs={"dropout": jax.random.PRNGKey(1)})
        return out[0]

    np.testing.assert_allclose(np.asarray(run(padded))[:37, :45], run(x), rtol=0, atol=1e-5)


def test_nafnet_with_wiener_candidates_is_not_padded_first():
    """Its Wiener candidates are an FFT of the unpadded image: padding first would change them."""
    from jaxgan.nets import make_generator
    from jaxgan.nets.inference import exact_pad_multiple

    assert exact_pad_multiple(make_generator("nafnet", in_channels=3, out_channels=3, wiener_angles=2)) == 1


def test_predictor_with_buckets_compiles_a_handful_for_a_folder_of_many_sizes():
    """12 sizes, 4 of them beyond the largest bucket, the bundle's tile size 0 (never tile): with
    buckets (32, 64) the folder compiles at most 2 x 2 whole-image programs plus one 64 x 64 tile
    program (tiles of one shape for every large image), against one per padded size without."""
    config = tiny_config("deblur", norm="none")
    g = GeneratorBundle(config, {}).module()
    variables = jax.tree.map(np.asarray, dict(g.init(jax.random.PRNGKey(0), np.zeros((1, 16, 16, 3), np.float32))))
    images = _images([(21, 30), (25, 17), (31, 50), (20, 45), (30, 35), (60, 61), (50, 20), (33, 64),
                      (70, 90), (130, 65), (99, 101), (65, 200)], 12)
    counts = {}
    for buckets in ((), (32, 64)):
        predictor = Predictor(GeneratorBundle(config, variables, Inference(tile_size=0)))
        predictor.buckets = buckets
        shapes = _counting(predictor)
        counts[buckets], outs = _predict_all(predictor, images)
        assert counts[buckets] == len(set(shapes)) and [o.shape for o in outs] == [x.shape for x in images]
    assert counts[()] == len(images)
    assert counts[(32, 64)] <= 5 and (1, 64, 64, 3) in set(shapes)
    assert set(shapes) <= {(1, a, b, 3) for a in (32, 64) for b in (32, 64)}
