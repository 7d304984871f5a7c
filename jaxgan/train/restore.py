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
import ml_collections

from jaxgan.train import checkpoint
from jaxgan.train import state as state_lib
from jaxgan.train.build import build


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


def restore_run(workdir: str, mesh=None, step: int | None = None) -> RestoredRun:
    """RestoredRun(config, g_module, d_module, state, step) of a workdir's newest good (or given) checkpoint,
    arrays replicated over `mesh` (default: on this process's first device)."""
    def make_target(config, saved_step):  # built from the config saved with that checkpoint
        setup = build(config, mesh, with_loss_nets=False)
        return setup.abstract_state(saved_step), setup

    # the newest checkpoint that passes its checksums (damaged ones are skipped with a warning)
    config, step, state, setup = checkpoint.restore_newest_good(workdir, make_target, step=step)
    return RestoredRun(config, setup.g_module, setup.d_module, state, step)


def restore_generator(workdir: str) -> RestoredGenerator:
    """RestoredGenerator(config, g_module, g_variables) of a trained run: the config saved with its latest
    checkpoint and G's variables (EMA params when kept). NoCheckpointError (a ValueError) names
    the workdir when it holds no checkpoint."""
    run = restore_run(workdir)
    return RestoredGenerator(run.config, run.g_module, jax.device_get(run.state.generator_variables()))
