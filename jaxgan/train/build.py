"""`build(config, mesh)`: what a run is made of, from its config, resolved once.

A `Setup` holds the task, the resolved step config (jaxgan.train.steps.StepConfig), the losses'
frozen networks (read before any model is built, so a missing weights file stops a run at once),
G's and D's modules and the three bound steps; from them it makes the abstract state (what a
checkpoint is read into), the initial state and the jitted train step. The loop, the restore of a
workdir and the command line's dry run all start here.
"""

from __future__ import annotations

import dataclasses
import os
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

    def _state_shapes(self, step: int = 0):
        """jax.eval_shape of the initial state (weak types kept: the step's compiled signature)."""
        size = progressive.size_at(self.config, max(int(step) - 1, 0))  # (as sample_input, never allocated)
        sample = {"input": jax.ShapeDtypeStruct((1, size, size, input_channels(self.config.data)), jnp.float32)}
        return jax.eval_shape(lambda key, sample: state_lib.create_state(
            self.config, self.g_module, self.d_module, sample, key), jax.ShapeDtypeStruct((2,), jnp.uint32), sample)

    def abstract_state(self, step: int = 0):
        """The state's shapes, dtypes and shardings (nothing computed): what a checkpoint of `step` is read into."""
        shapes = self._state_shapes(step)
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

    def check_memory_fits(self, step_fn: Callable) -> Callable:
        """MemoryFitError (one line) when XLA's own estimate of the train step's memory (its compiled
        arguments, outputs and temporaries, at the config's batch and crop size) exceeds what the
        device has free: before the first state or step is allocated, not an OOM kill or an XLA
        error later. Returns the step to train with: that compiled program while the batches have
        the checked shapes (JAX would compile it again on the first call), else `step_fn`. A batch
        of other keys than input / target (some variants) and progressive runs are not checked."""
        checked = compile_step(self, step_fn)
        if checked is None:
            return step_fn
        compiled, shapes, state_tree = checked
        needed, device = memory_bytes(compiled), jax.local_devices()[0]
        free = available_bytes(device)
        if needed is not None and free is not None and needed > free:
            data = self.config.data
            raise MemoryFitError(
                f"this config does not fit in memory: one train step needs {needed / 2**30:.1f} GiB (XLA's "
                f"estimate at data.batch_size {data.batch_size}, data.crop_size {data.crop_size}), "
                f"{device.platform} has {free / 2**30:.1f} GiB free; lower the batch or crop size or the model's width")

        def step(state, batch, loss_nets):
            if {k: np.shape(v) for k, v in batch.items()} != shapes:
                return step_fn(state, batch, loss_nets)
            # (the same state; its modules, static metadata, are equal copies of those traced here)
            return compiled(jax.tree.unflatten(state_tree, jax.tree.leaves(state)), batch, loss_nets)

        return step

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


class MemoryFitError(ValueError):
    """A config whose train step cannot fit in the device's memory."""


def _abstract_batch(setup: Setup) -> dict | None:
    """The shapes of a global training batch of `setup`'s config (None: a task of other keys)."""
    data = setup.config.data
    b, size = int(data.batch_size), int(data.crop_resize or data.crop_size)
    batch = {"input": jax.ShapeDtypeStruct((b, size, size, input_channels(data)), jnp.float32)}
    if setup.task.name == "deblur":
        batch["target"] = jax.ShapeDtypeStruct((b, size, size, 3), jnp.float32)
    elif setup.task.name == "segment":
        batch["target"] = jax.ShapeDtypeStruct((b, size, size), jnp.int32)
    else:
        return None
    return batch


def compile_step(setup: Setup, step_fn: Callable):
    """(the jitted `step_fn` compiled for the config's batch from abstract shapes, nothing allocated,
    {batch key: shape}, the compiled state's tree structure), or None for a batch of other keys or a
    progressive run (its shapes change)."""
    batch = _abstract_batch(setup)
    variants = setup.config.variants
    if batch is None or variants.get("semi_supervised") or variants.get("progressive_sizes"):
        return None
    # the real arguments' weak types and shardings
    repl = setup.sharding()

    def spec(s, sharding=repl):
        return jax.ShapeDtypeStruct(np.shape(s), s.dtype, sharding=sharding, weak_type=getattr(s, "weak_type", False))

    state = jax.tree.map(spec, setup._state_shapes())
    loss_nets = jax.tree.map(lambda a: spec(np.asarray(a)), setup.loss_nets)
    data = parallel.batch_sharding(setup.mesh) if setup.mesh is not None else repl
    shapes = {k: tuple(v.shape) for k, v in batch.items()}
    batch = {k: spec(v, data) for k, v in batch.items()}
    try:
        return step_fn.lower(state, batch, loss_nets).compile(), shapes, jax.tree.structure(state)
    except (KeyError, TypeError):  # a variant's batch of other keys
        return None


def memory_bytes(compiled) -> int | None:
    """XLA's estimate of the bytes one call of `compiled` holds at once: arguments + outputs - donated
    aliases + temporaries (None when the backend gives none)."""
    stats = compiled.memory_analysis()
    if stats is None:
        return None
    return int(stats.argument_size_in_bytes + stats.output_size_in_bytes - stats.alias_size_in_bytes
               + stats.temp_size_in_bytes)


def available_bytes(device) -> int | None:
    """Free memory of `device`: an accelerator's limit minus its use, else the host's MemAvailable."""
    if device.platform != "cpu":
        stats = device.memory_stats() or {}
        if "bytes_limit" in stats:
            return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
        return None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return None
