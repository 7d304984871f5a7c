"""Shared helpers of the train engine tests: tiny configs, fixed batches, a deterministic iterator.

The fake iterator honours the data contract that exact resume needs: batch n depends only on
(config.seed, n), whatever start_step the iterator was created with.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import numpy as np

from jaxgan.config import base_config


_CACHE_ENV = "JAXGAN_TEST_XLA_CACHE"


def enable_compilation_cache() -> dict:
    """Turns on JAX's persistent compilation cache in a temporary folder shared by this test session
    and its subprocesses (the engine tests compile the same tiny programs many times: a hit costs
    ~1 s instead of ~20 s on 2 busy cores). Returns the environment variables for subprocesses."""
    import jax

    folder = os.environ.get(_CACHE_ENV)
    if not folder:
        folder = tempfile.mkdtemp(prefix="jaxgan-test-xla-cache-")
        os.environ[_CACHE_ENV] = folder
        atexit.register(shutil.rmtree, folder, True)
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return {_CACHE_ENV: folder, "JAX_COMPILATION_CACHE_DIR": folder,
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0", "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}


def tiny_config(task: str = "deblur", *, norm: str = "batch", steps: int = 4, **loss):
    """A config for 16x16 images, batch 4, width-4 U-Net / PatchGAN."""
    c = base_config()
    c.task = task
    c.data.crop_size = 16
    c.data.batch_size = 4
    c.data.eval_batch_size = 4
    c.data.num_classes = 2
    out_channels = 3 if task == "deblur" else 1
    c.generator.name = "unet"
    with c.generator.unlocked():
        c.generator.options = dict(in_channels=3, out_channels=out_channels, base_width=4, depth=2,
                                   norm=norm, out_activation="tanh" if task == "deblur" else "none")
    c.discriminator.name = "patchgan"
    with c.discriminator.unlocked():
        c.discriminator.options = dict(in_channels=3 + out_channels, base_width=4, num_layers=1,
                                       norm=norm)
    if task == "segment":
        c.loss.mask = "sigmoid_ce"
    c.train.steps = steps
    c.train.log_every = 1
    c.train.eval_every = 1000
    c.train.checkpoint_every = 1000
    c.train.num_samples = 2
    for key, value in loss.items():
        c.loss[key] = value
    return c


def loop_test_config():
    """The 4-step run of the loop tests: WGAN-GP (per-step random mix: a wrong step key would show),
    EMA, no LPIPS."""
    config = tiny_config("deblur", steps=4, adversarial="wgan", gradient_penalty="wgan_gp")
    config.train.eval_lpips = False
    config.train.ema_decay = 0.9
    return config


def fixed_batch(config, index: int = 0, batch_size: int | None = None) -> dict:
    """A deterministic batch (numpy) for `config`, number `index`."""
    b = batch_size or config.data.batch_size
    size = config.data.crop_resize or config.data.crop_size  # (a progressive phase's resolution)
    rng = np.random.default_rng([config.seed, index])
    x = rng.uniform(-1, 1, (b, size, size, 3)).astype(np.float32)
    if config.task == "deblur":
        target = np.clip(x + 0.3 * rng.standard_normal(x.shape), -1, 1).astype(np.float32)
    else:
        target = (x.mean(-1) > 0).astype(np.int32)
    return {"input": x, "target": target}


def fake_train_iterator(config, *, start_step=0, process_index=None, process_count=None):
    """Infinite iterator of fixed_batch(n) for n = start_step, start_step + 1, ... (split over
    processes like the real one: process i gets rows i*b/P .. (i+1)*b/P of the global batch)."""
    import jax

    index = jax.process_index() if process_index is None else process_index
    count = jax.process_count() if process_count is None else process_count
    per = config.data.batch_size // count
    n = start_step
    while True:
        batch = fixed_batch(config, n)
        yield {k: v[index * per:(index + 1) * per] for k, v in batch.items()}
        n += 1


def fake_eval_iterator(config, *, split=None, num_batches: int = 2, last: int = 3):
    """Two eval batches (7 valid rows in all): the last has only `last` valid rows, then padding.
    Over several processes, process i gets rows i, i + P, ... of each batch."""
    import jax

    del split
    index, count = jax.process_index(), jax.process_count()
    for n in range(num_batches):
        batch = fixed_batch(config, 10_000 + n, config.data.eval_batch_size)
        valid = np.ones(config.data.eval_batch_size, bool)
        if n == num_batches - 1:
            valid[last:] = False
        batch["valid"] = valid
        yield {k: v[index::count] for k, v in batch.items()}


def make_modules(config):
    """(G, D) of the config (jaxgan.train.state.make_modules)."""
    from jaxgan.train.state import make_modules as real

    return real(config)


def train_on_fake_data(config, workdir):
    """train_and_evaluate(config, workdir) on the fake iterators (patched for the call only): its result."""
    import pytest

    from jaxgan.train import train_and_evaluate

    mp = pytest.MonkeyPatch()
    patch_engine(mp.setattr)
    try:
        return train_and_evaluate(config, str(workdir))
    finally:
        mp.undo()


def untrained_workdir(path, task: str = "deblur", seed: int = 0):
    """`path` made a workdir holding one checkpoint (step 1) of an untrained tiny_config(task) run: no train
    step compiled. Returns path."""
    import jax

    from jaxgan.train import checkpoint, state as state_lib

    config = tiny_config(task)
    g, d = state_lib.make_modules(config)
    state = state_lib.create_state(config, g, d, {"input": np.zeros((1, 16, 16, 3), np.float32)},
                                   jax.random.PRNGKey(seed))
    ckpt = checkpoint.Checkpointer(path, config)
    ckpt.save(1, state)
    ckpt.wait()
    ckpt.close()
    return path


def patch_engine(setattr_fn, *, train_iterator=None, eval_iterator=None):
    """Points the engine at the fake iterators. setattr_fn: pytest's monkeypatch.setattr, or plain setattr in a subprocess script."""
    import importlib

    loop = importlib.import_module("jaxgan.train.loop")
    evaluation = importlib.import_module("jaxgan.train.evaluation")

    setattr_fn(loop, "_make_train_iterator", lambda config, start_step: (train_iterator or fake_train_iterator)(
        config, start_step=start_step))
    setattr_fn(evaluation, "_make_eval_iterator", lambda config, split: (eval_iterator or fake_eval_iterator)(
        config, split=split))
    setattr_fn(loop, "_check_eval_data", lambda config: None)  # the fake eval split is always good


def take(iterator, n: int) -> list:
    """The next n items of an iterator (batches of a pipeline)."""
    return [next(iterator) for _ in range(n)]


def assert_batches_equal(a, b) -> None:
    """Two sequences of batches: the same length, keys and arrays, element for element."""
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys()
        for k in x:
            np.testing.assert_array_equal(x[k], y[k])
