"""Restoring a run from its workdir: the state of a checkpoint, or just its trained generator.

The modules and the abstract state a checkpoint is read into are built from the config saved with
that checkpoint, so a workdir restores without the config it was trained with. The newest
checkpoint that passes its checksums is used (damaged ones are skipped with a warning:
jaxgan.train.checkpoint).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxgan.data.prior import input_channels
from jaxgan.train import checkpoint, progressive
from jaxgan.train import state as state_lib


class RestoredRun(NamedTuple):
    """What `restore_run` read: the saved config, the modules it builds, the state and its step."""

    config: ml_collections.ConfigDict
    g_module: nn.Module
    d_module: nn.Module
    state: state_lib.GANState
    step: int


class RestoredGenerator(NamedTuple):
    """What `restore_generator` read: the saved config, G's module and its inference variables."""

    config: ml_collections.ConfigDict
    g_module: nn.Module
    g_variables: Any


def _abstract_state(config, g_module, d_module, sharding, step: int = 0):
    # an image pool (variants.history_size) has the crop size of the phase of the step's last batch
    size = progressive.size_at(config, max(int(step) - 1, 0))
    sample = {"input": np.zeros((1, size, size, input_channels(config.data)), np.float32)}
    shapes = jax.eval_shape(
        lambda key: state_lib.create_state(config, g_module, d_module, sample, key),
        jax.ShapeDtypeStruct((2,), jnp.uint32))
    return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding), shapes)


def restore_run(workdir: str, sharding=None, step: int | None = None) -> RestoredRun:
    """RestoredRun(config, g_module, d_module, state, step) of a workdir's newest good (or given) checkpoint,
    arrays placed with `sharding` (default: this process's first device)."""
    sharding = sharding or jax.sharding.SingleDeviceSharding(jax.local_devices()[0])

    def make_target(config, s):  # from the config saved with checkpoint s
        g_module, d_module = state_lib.make_modules(config)
        return _abstract_state(config, g_module, d_module, sharding, s), (g_module, d_module)

    # the newest checkpoint that passes its checksums (damaged ones are skipped with a warning)
    config, step, state, (g_module, d_module) = checkpoint.restore_newest_good(workdir, make_target, step=step)
    return RestoredRun(config, g_module, d_module, state, step)


def restore_generator(workdir: str) -> RestoredGenerator:
    """RestoredGenerator(config, g_module, g_variables) of a trained run: the config saved with its latest
    checkpoint and G's variables (EMA params when kept). NoCheckpointError (a ValueError) names
    the workdir when it holds no checkpoint."""
    run = restore_run(workdir)
    return RestoredGenerator(run.config, run.g_module, jax.device_get(run.state.generator_variables()))
