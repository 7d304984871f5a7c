"""Progressive resolution: the schedule, the fade-in blend, and training through a size switch
(new iterator at the switch, one compilation per size, finite losses, exact resume across it)."""

import json

import jax
import numpy as np
import pytest

from jaxgan import config_io
from jaxgan.task import get_task
from jaxgan.train import parallel, progressive, train_and_evaluate
from jaxgan.train.restore import restore_run
from train_helpers import enable_compilation_cache, fake_train_iterator, patch_engine, tiny_config

enable_compilation_cache()


def _config(steps=4, **variants):
    c = tiny_config("deblur", norm="none", steps=steps)
    c.train.eval_lpips = False
    c.data.crop_size = 32  # evaluation size and the last phase's size
    c.variants.progressive_sizes = (16, 32)
    c.variants.progressive_steps = (2,)
    for k, v in variants.items():
        c.variants[k] = v
    return c


def test_schedule_sizes_and_fade():
    c = _config()
    c.variants.progressive_sizes = (8, 16, 32)
    c.variants.progressive_steps = (3, 5)
    c.variants.progressive_fade_steps = 2
    assert progressive.schedule(c) == [(0, 8), (3, 16), (5, 32)]
    assert [progressive.size_at(c, i) for i in range(7)] == [8, 8, 8, 16, 16, 32, 32]
    assert [progressive.fade(c, i) for i in range(7)] == [(1.0, 0), (1.0, 0), (1.0, 0), (0.5, 8), (1.0, 8),
                                                          (0.5, 16), (1.0, 16)]
    phase = progressive.phase_config(c, 16)  # resolution: the 32 window at side 16
    assert (phase.data.crop_size, phase.data.crop_resize, c.data.crop_resize) == (32, 16, 0)
    c.variants.progressive_mode, c.variants.progressive_fade_steps = "patch", 0
    c.variants.progressive_batch_sizes = (16, 8, 4)
    phase = progressive.phase_config(c, 16)  # patch: native-scale 16 crops, the phase's batch
    assert (phase.data.crop_size, phase.data.crop_resize, phase.data.batch_size) == (16, 0, 8)
    off = tiny_config()
    assert progressive.schedule(off) == [(0, 16)]


@pytest.mark.parametrize("sizes,steps,match", [((8, 16), (), "one start step"), ((8, 16), (0,), "increasing"),
                                               ((4, 8, 16), (4, 2), "increasing"), ((), (3,), "empty"),
                                               ((16, 32), (2,), "<= 16"), ((8, 12), (2,), "end at")])
def test_bad_schedules_are_value_errors(sizes, steps, match):
    c = tiny_config()  # crop_size 16
    c.variants.progressive_sizes, c.variants.progressive_steps = sizes, steps
    with pytest.raises(ValueError, match=match):
        config_io.check_values(c)


def test_patch_mode_checks_batches_and_refuses_a_fade():
    c = tiny_config()
    c.variants.progressive_sizes, c.variants.progressive_steps = (8, 16), (2,)
    c.variants.progressive_mode = "patch"
    c.variants.progressive_batch_sizes = (8, 2)  # data.batch_size is 4
    with pytest.raises(ValueError, match="batch"):
        config_io.check_values(c)
    c.variants.progressive_batch_sizes = (8, 4)
    assert progressive.schedule(c) == [(0, 8), (2, 16)]
    c.variants.progressive_fade_steps = 2
    with pytest.raises(ValueError, match="resolution"):
        config_io.check_values(c)


def test_resolution_phases_downscale_the_same_window():
    """A column ramp (slope 1/255 per pixel), crop 40 then resized to 20: slope 2/255, i.e. the same
    field of view at half the resolution; the last phase is the full-resolution crop."""
    import tensorflow as tf

    from jaxgan.data.pipeline import train_transform

    c = tiny_config()
    c.data.crop_size, c.data.flip, c.data.rot90 = 40, False, False
    c.variants.progressive_sizes, c.variants.progressive_steps = (20, 40), (5,)
    cols = np.broadcast_to(np.arange(100, dtype=np.uint8)[None, :, None], (50, 100, 3))
    example = {"input": tf.constant(cols), "target": tf.constant(cols)}
    slopes = {}
    for size in (20, 40):
        data = progressive.phase_config(c, size).data
        x, y = train_transform(example, np.array([1, 2], np.int64), data, is_mask=False)
        assert x.shape == y.shape == (size, size, 3)
        slopes[size] = float(np.diff(np.asarray(x)[:, 2:-2, 0], axis=1).mean())
    np.testing.assert_allclose([slopes[20], slopes[40]], [2 / 255, 1 / 255], rtol=0.02)


def test_fade_batch_blends_images_with_their_low_resolution_version():
    rng = np.random.default_rng(0)
    batch = {"input": rng.uniform(-1, 1, (2, 4, 4, 3)).astype(np.float32),
             "target": rng.integers(0, 2, (2, 4, 4)).astype(np.int32)}
    low = progressive.low_resolution(batch["input"], 2)
    np.testing.assert_allclose(low[0, 0, 0], batch["input"][0, :2, :2].mean((0, 1)), rtol=1e-6)
    np.testing.assert_array_equal(low[:, :2, :2], np.repeat(np.repeat(low[:, :1, :1], 2, 1), 2, 2))
    faded = progressive.fade_batch(batch, 0.25, 2, get_task("segment"))
    np.testing.assert_allclose(faded["input"], 0.25 * batch["input"] + 0.75 * low, rtol=1e-6)
    np.testing.assert_array_equal(faded["target"], batch["target"])  # masks are not blended
    assert progressive.fade_batch(batch, 1.0, 2, get_task("segment")) is batch


@pytest.fixture()
def spies(monkeypatch):
    """Records every iterator the loop makes (crop size, start step) and the jitted train step."""
    record = {"iterators": [], "steps": []}

    def iterator(config, *, start_step=0, **kwargs):  # the side of the phase's images
        record["iterators"].append((int(config.data.crop_resize or config.data.crop_size), start_step))
        return fake_train_iterator(config, start_step=start_step, **kwargs)

    real_jit_step = parallel.jit_step

    def jit_step(*args, **kwargs):
        jitted = real_jit_step(*args, **kwargs)
        record["steps"].append(jitted)
        return jitted

    patch_engine(monkeypatch.setattr, train_iterator=iterator)
    monkeypatch.setattr(parallel, "jit_step", jit_step)
    return record


def _train_losses(workdir):
    lines = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]
    return {l["step"]: (l["d_loss"], l["g_loss"]) for l in lines if l["split"] == "train"}


def test_training_switches_size_at_the_scheduled_step_and_resumes_exactly(tmp_path, spies):
    config = _config(history_size=3, progressive_fade_steps=2)
    train_and_evaluate(config, str(tmp_path / "full"))
    assert spies["iterators"] == [(16, 0), (32, 2)]  # batch 2 (train step 3) is the first 32x32 one
    assert spies["steps"][0]._cache_size() == 2  # one compilation per size
    losses = _train_losses(tmp_path / "full")
    assert sorted(losses) == [1, 2, 3, 4]
    assert all(np.isfinite(v) for pair in losses.values() for v in pair)
    full = restore_run(str(tmp_path / "full"))[3]
    assert full.pool["images"].shape == (3, 32, 32, 6)  # the image history followed the switch

    spies["iterators"].clear()
    train_and_evaluate(_config(steps=2, history_size=3, progressive_fade_steps=2), str(tmp_path / "resumed"))
    halfway = restore_run(str(tmp_path / "resumed"))[3]  # restoring knows the phase of the checkpoint
    assert halfway.pool["images"].shape == (3, 16, 16, 6)
    train_and_evaluate(config, str(tmp_path / "resumed"))
    assert spies["iterators"] == [(16, 0), (32, 2)]
    resumed = restore_run(str(tmp_path / "resumed"))[3]
    for a, b in zip(jax.tree.leaves(full), jax.tree.leaves(resumed)):
        np.testing.assert_array_equal(a, b)
