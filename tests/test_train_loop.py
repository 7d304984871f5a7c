"""jaxgan.train.loop / checkpoint / restore: exact resume, divergence guard, outputs, SIGTERM,
restoring a generator (evaluation against closed forms: test_train_evaluation.py)."""

import json
import os
import signal

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import ops
from jaxgan.train import NoCheckpointError, restore_generator, run_evaluation, train_and_evaluate
from jaxgan.train.restore import restore_run
from jaxgan.train.loop import TITLE_HEIGHT, DivergenceError
from train_helpers import (enable_compilation_cache, fake_train_iterator, loop_test_config, patch_engine,
                           train_on_fake_data)

enable_compilation_cache()


def _leaves(state):
    return jax.tree.leaves(jax.device_get(state))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """A 4-step run (WGAN-GP: per-step random interpolation, so a wrong step key would show)."""
    workdir = tmp_path_factory.mktemp("full")
    config = loop_test_config()
    config.train.checkpoint_every = 2  # step 2 is saved (asynchronously) while steps 3, 4 donate the state
    config.train.eval_every = 2
    config.train.best_metric = "psnr"
    result = train_on_fake_data(config, workdir)
    return workdir, result


def test_interrupted_and_resumed_run_equals_uninterrupted_bitwise(uninterrupted, tmp_path, monkeypatch):
    full_dir, full_result = uninterrupted

    def interrupting_iterator(config, *, start_step=0, **kw):
        for n, batch in enumerate(fake_train_iterator(config, start_step=start_step, **kw), start_step):
            if n == 2 and start_step == 0:  # pulled while feeding step 2 (two batches ahead): a preemption notice
                os.kill(os.getpid(), signal.SIGTERM)
            yield batch

    patch_engine(monkeypatch.setattr, train_iterator=interrupting_iterator)
    config = loop_test_config()
    first = train_and_evaluate(config, str(tmp_path))
    assert first["stopped_early"] and first["step"] == 2
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["2"]
    second = train_and_evaluate(config, str(tmp_path))
    assert not second["stopped_early"] and second["step"] == 4
    *_, resumed, step = restore_run(str(tmp_path))
    *_, reference, ref_step = restore_run(str(full_dir))
    assert step == ref_step == 4
    for a, b in zip(_leaves(resumed), _leaves(reference), strict=True):
        np.testing.assert_array_equal(a, b)
    assert second["g_loss"] == full_result["g_loss"]
    # the asynchronous save of step 2 in the uninterrupted run was not disturbed by the donation of
    # the state to step 3: it equals the state saved by the run that stopped at step 2
    *_, full_at_2, _ = restore_run(str(full_dir), step=2)
    *_, stopped_at_2, _ = restore_run(str(tmp_path), step=2)
    for a, b in zip(_leaves(full_at_2), _leaves(stopped_at_2), strict=True):
        np.testing.assert_array_equal(a, b)


def test_run_writes_logs_samples_and_checkpoints(uninterrupted):
    workdir, result = uninterrupted
    lines = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    train = [l for l in lines if l["split"] == "train"]
    assert [l["step"] for l in train] == [1, 2, 3, 4]
    assert {"d_loss", "g_loss", "g_adv", "g_pixel", "d_penalty", "steps_per_sec"} <= set(train[0])
    evals = [l for l in lines if l["split"] == "eval"]
    assert [e["step"] for e in evals] == [2, 4] and evals[-1]["num_examples"] == 7
    assert result["eval_psnr"] == evals[-1]["psnr"]
    best = max(evals, key=lambda e: e["psnr"])["step"]
    assert [p.name for p in (workdir / "best").iterdir() if p.name.isdigit()] == [str(best)]
    from PIL import Image

    grid = np.asarray(Image.open(workdir / "samples" / "step_000004.png"))
    # a title strip over num_samples rows of input | output | target
    assert grid.shape == (TITLE_HEIGHT + 2 * 18 + 2, 3 * 18 + 2, 3)
    (events,) = (workdir / "tensorboard").iterdir()
    raw = events.read_bytes()
    assert b"train/g_loss" in raw and b"eval/psnr" in raw and b"samples/input_output_target" in raw
    assert sorted(p.name for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()) == ["2", "4"]
    assert (workdir / "config.json").is_file()
    assert sorted(p.name for p in (workdir / "samples").iterdir()) == ["step_000002.png", "step_000004.png"]


def test_init_from_copies_generator_and_matching_discriminator(uninterrupted):
    from jaxgan.train import loop, parallel
    from jaxgan.train import state as state_lib

    source, _ = uninterrupted
    *_, trained, _ = restore_run(str(source))
    config = loop_test_config()
    config.train.init_from = str(source)
    mesh = parallel.make_mesh()
    g, d = state_lib.make_modules(config)
    sample = {"input": np.zeros((1, 16, 16, 3))}

    def create(g, d):
        return parallel.create_sharded_state(lambda key: state_lib.create_state(config, g, d, sample, key),
                                             mesh, jax.random.PRNGKey(1))

    fresh = create(g, d)
    started = loop._init_from(config, fresh, mesh)
    for got, want in ((started.g.params, trained.g.params), (started.g.batch_stats, trained.g.batch_stats),
                      (started.d.params, trained.d.params), (started.ema_params, trained.g.params)):
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert int(started.step) == 0 and int(started.g.opt_state[0].count) == 0  # a fresh optimizer
    config.train.init_from = "pretrained:deblur"
    with pytest.raises(ValueError, match="pretrained"):
        loop._init_from(config, fresh, mesh)
    config.train.init_from = str(source)
    config.generator.options.base_width = 8
    g8, d8 = state_lib.make_modules(config)
    with pytest.raises(ValueError, match="generator's parameters do not match"):
        loop._init_from(config, create(g8, d8), mesh)


def test_restore_generator_uses_ema_params(uninterrupted):
    workdir, _ = uninterrupted
    config, module, variables = restore_generator(str(workdir))
    assert config.generator.name == "unet" and config.train.ema_decay == 0.9
    *_, state, _ = restore_run(str(workdir))
    for a, b in zip(jax.tree.leaves(variables["params"]), jax.tree.leaves(state.ema_params), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not all(np.array_equal(a, b) for a, b in
                   zip(jax.tree.leaves(state.ema_params), jax.tree.leaves(state.g.params)))
    out = module.apply(variables, jnp.zeros((1, 16, 16, 3)), train=False)
    assert out.shape == (1, 16, 16, 3)


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(NoCheckpointError, match=str(tmp_path)):
        restore_generator(str(tmp_path))
    assert issubclass(NoCheckpointError, ValueError)


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    def poisoned_iterator(config, *, start_step=0, **kw):
        for n, batch in enumerate(fake_train_iterator(config, start_step=start_step, **kw), start_step):
            if n == 2:  # the batch of step 3
                batch = dict(batch, input=np.full_like(batch["input"], np.nan))
            yield batch

    patch_engine(monkeypatch.setattr, train_iterator=poisoned_iterator)
    config = loop_test_config()
    config.train.log_every = 4  # the NaN of step 3 is only fetched at step 4 ...
    config.train.checkpoint_every = 2
    with pytest.raises(DivergenceError, match=r"diverged at step 3: loss d_loss = nan"):
        train_and_evaluate(config, str(tmp_path))
    # ... and step 4's (bad) state was not saved: the last good checkpoint restores
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["2"]
    *_, state, step = restore_run(str(tmp_path))
    assert step == 2 and int(state.step) == 2
    assert all(np.isfinite(leaf).all() for leaf in _leaves(state))


@pytest.mark.slow
def test_resume_is_exact_with_the_real_data_pipeline(tmp_path, monkeypatch, builtin_data_dir):
    """As the bitwise resume test, with jaxgan.data's photo_blur iterator instead of the fake one."""
    from jaxgan.train import loop

    config = loop_test_config()
    config.data.name = "photo_blur"
    config.data.data_dir = builtin_data_dir
    config.data.num_train_examples = 8
    config.data.num_eval_examples = 4
    real = loop._make_train_iterator

    def interrupting(config, start_step):
        for n, batch in enumerate(real(config, start_step), start_step):
            if n == 2 and start_step == 0:  # (pulled while feeding step 2: the loop keeps two batches ahead)
                os.kill(os.getpid(), signal.SIGTERM)
            yield batch

    full = train_and_evaluate(config, str(tmp_path / "full"))
    monkeypatch.setattr(loop, "_make_train_iterator", interrupting)
    assert train_and_evaluate(config, str(tmp_path / "split"))["step"] == 2
    resumed = train_and_evaluate(config, str(tmp_path / "split"))
    assert resumed["step"] == full["step"] == 4
    *_, a, _ = restore_run(str(tmp_path / "full"))
    *_, b, _ = restore_run(str(tmp_path / "split"))
    for x, y in zip(_leaves(a), _leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


def test_workdir_of_another_model_is_a_clear_error(uninterrupted, monkeypatch):
    from jaxgan.train import CheckpointError

    patch_engine(monkeypatch.setattr)
    workdir, _ = uninterrupted
    config = loop_test_config()
    config.generator.options.base_width = 8
    expected = r"does not fit the model of this config .* saved \(4, 4, 3, 4\), model \(4, 4, 3, 8\)"
    with pytest.raises(CheckpointError, match=expected):
        train_and_evaluate(config, str(workdir))
    config = loop_test_config()
    config.train.log_every = 0
    with pytest.raises(ValueError, match="train.log_every must be a positive"):
        train_and_evaluate(config, str(workdir))


_TRACED_IMPLS: list = []


class _RecordsConvImpl(nn.Module):
    """Identity that records, when traced, which convolution implementation jaxgan.ops would use."""

    @nn.compact
    def __call__(self, x, train: bool = False):
        _TRACED_IMPLS.append(ops.resolve())
        return x


@pytest.mark.parametrize("impl", ["xla", "cpu_fast"])
def test_evaluate_predict_and_export_trace_with_the_runs_conv_impl(monkeypatch, impl):
    from jaxgan import export
    from jaxgan.predict import Predictor

    patch_engine(monkeypatch.setattr)
    config = loop_test_config()
    config.train.conv_impl = impl
    _TRACED_IMPLS.clear()
    run_evaluation(config, _RecordsConvImpl(), {})
    Predictor.from_config(config, _RecordsConvImpl(), {}).predict_array(np.zeros((8, 8, 3), np.float32))
    jax.jit(export.inference_fn(config, _RecordsConvImpl()))({}, jnp.zeros((1, 8, 8, 3)))
    assert len(_TRACED_IMPLS) >= 3 and set(_TRACED_IMPLS) == {impl}  # the default here would be cpu_fast


def test_a_checkpoint_from_before_a_new_state_field_restores_with_it_empty(uninterrupted, tmp_path):
    """A state saved without a field added since (the EMA's batch-norm statistics), with its config
    saved without the key, restores into today's state: its arrays as saved, the new field empty."""
    from flax import struct

    from jaxgan.train import checkpoint

    workdir, _ = uninterrupted
    run = restore_run(str(workdir))

    @struct.dataclass
    class StateBefore:  # GANState's fields before ema_batch_stats
        g: object
        d: object
        ema_params: object
        key: object
        pool: object = None
        logit_pool: object = None

    s = run.state
    old = StateBefore(g=s.g, d=s.d, ema_params=s.ema_params, key=s.key, pool=s.pool, logit_pool=s.logit_pool)
    writer = checkpoint.Checkpointer(tmp_path / "old", run.config)
    writer.config_json["train"].pop("ema_batch_stats")
    writer.latest.save(run.step, args=writer._args(old), force=True)
    writer.close()
    restored = restore_run(str(tmp_path / "old"))
    assert restored.config.train.ema_batch_stats is False and restored.state.ema_batch_stats is None
    assert restored.step == run.step
    for a, b in zip(_leaves(restored.state), _leaves(s.replace(ema_batch_stats=None)), strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_loop_dispatches_at_most_steps_in_flight_ahead_of_the_finished_steps(tmp_path, monkeypatch):
    """Without a bound the loop dispatches up to a log point ahead of the device (a SIGTERM then waits
    for all of those steps); with it, the step dispatched STEPS_IN_FLIGHT + 1 earlier is awaited before
    the next one is dispatched."""
    from jaxgan.train import loop

    events = []
    dispatched = loop._Progress.dispatched
    monkeypatch.setattr(loop._Progress, "dispatched",
                        lambda self, metrics: (events.append(("dispatch", id(metrics))), dispatched(self, metrics)))
    monkeypatch.setattr(loop, "_wait_for", lambda metrics: events.append(("wait", id(metrics))))
    config = loop_test_config()
    config.train.steps = 6
    config.train.log_every = config.train.eval_every = config.train.checkpoint_every = 6  # no sync before 6
    train_on_fake_data(config, tmp_path)
    order = [ident for kind, ident in events if kind == "dispatch"]
    assert len(order) == 6
    for k, ident in enumerate(order):
        waited_before = [i for kind, i in events[:events.index(("dispatch", ident))] if kind == "wait"]
        assert waited_before == order[:max(0, k - loop.STEPS_IN_FLIGHT)]
