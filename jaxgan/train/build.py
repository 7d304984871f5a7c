"""`build(config, mesh)`: what a run is made of, from its config, resolved once.

A `Setup` holds the task, the resolved step config (jaxgan.train.steps.StepConfig), the losses'
frozen networks (read before any model is built, so a missing weights file stops a run at once),
G's and D's modules and the three bound steps; from them it makes the abstract state (what a
checkpoint is read into), the initial state and the jitted train step. The loop, the restore of a
workdir and the command line's dry run all start here.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import Mesh

from jaxgan.data.prior import input_channels
from jaxgan.train import parallel, progressive, steps
from jaxgan.train import state as state_lib


@dataclasses.dataclass(frozen=True)
class Setup:
    """What `build` made of a config; `mesh` None: one local device (a restore outside a run)."""

    config: ml_collections.ConfigDict
    mesh: Mesh | None
    step_config: steps.StepConfig
    loss_nets: Any  # host arrays of steps.load_loss_nets; None when built without them (a restore)
    g_module: nn.Module
    d_module: nn.Module
    step_fns: steps.StepFns

    @property
    def task(self):
        """The jaxgan.task object of config.task."""
        return self.step_config.task

    def sharding(self):
        """Where the state lives: replicated over the mesh, else this process's first device."""
        if self.mesh is None:
            return jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
        return parallel.replicated_sharding(self.mesh)

    def sample_input(self, step: int = 0) -> dict:
        """A zero batch `input` at the crop size of the progressive phase of step `step`'s last batch
        (the size of an image pool saved at that step)."""
        size = progressive.size_at(self.config, max(int(step) - 1, 0))
        return {"input": np.zeros((1, size, size, input_channels(self.config.data)), np.float32)}

    def _create(self, step: int) -> Callable[[jax.Array], state_lib.GANState]:
        sample = self.sample_input(step)
        return lambda key: state_lib.create_state(self.config, self.g_module, self.d_module, sample, key)

    def abstract_state(self, step: int = 0):
        """The state's shapes, dtypes and shardings (nothing computed): what a checkpoint of `step` is read into."""
        shapes = jax.eval_shape(self._create(step), jax.ShapeDtypeStruct((2,), jnp.uint32))
        sharding = self.sharding()
        return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding), shapes)

    def initial_state(self, step: int = 0) -> state_lib.GANState:
        """The initial state from PRNGKey(config.seed), replicated over the mesh."""
        return parallel.create_sharded_state(self._create(step), self._mesh(), jax.random.PRNGKey(self.config.seed))

    def jit_train_step(self) -> Callable:
        """The train step jitted with the mesh's shardings, the state donated."""
        return parallel.jit_step(self.step_fns.train_step, self._mesh())

    def replicated_loss_nets(self) -> Any:
        """The losses' frozen networks replicated over the mesh."""
        if self.loss_nets is None:
            raise ValueError("this Setup was built without its loss networks (restore only)")
        return parallel.replicate(self.loss_nets, self._mesh())

    def _mesh(self) -> Mesh:
        if self.mesh is None:
            raise ValueError("this Setup was built without a mesh (restore only)")
        return self.mesh


def build(config: ml_collections.ConfigDict, mesh: Mesh | None = None, with_loss_nets: bool = True) -> Setup:
    """The Setup of `config`: its step config resolved once, the losses' networks (unless
    with_loss_nets is False: a restore needs none), G's and D's modules, the bound steps."""
    step_config = steps.resolve_step_config(config)
    loss_nets = steps.load_loss_nets(step_config) if with_loss_nets else None
    g_module, d_module = state_lib.make_modules(config, step_config.task)
    conv_impl = config.train.get("conv_impl", "auto")
    return Setup(config, mesh, step_config, loss_nets, g_module, d_module, steps.bind_steps(step_config, conv_impl))
