"""Data parallelism: one code path for 1 device, many devices and many hosts.

A 1-D `Mesh` over every device (axis 'data'); batches are sharded along their first axis, the
state and the losses' frozen networks (loss_nets) are replicated, and the step is `jax.jit` with
explicit in/out shardings and the state donated. XLA inserts the gradient all-reduce; BatchNorm statistics are computed over
the whole global batch (the mean over a sharded axis is a global mean), so the numbers do not
depend on the device count (tested). Multi-host: `initialize_distributed` calls
`jax.distributed.initialize`, each process reads its own slice of the global batch and
`shard_batch` assembles the global array with `jax.make_array_from_process_local_data`.
"""

from __future__ import annotations

import collections
from typing import Callable, Iterator

import jax
import ml_collections
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def initialize_distributed(config: ml_collections.ConfigDict) -> None:
    """jax.distributed.initialize from config.train (coordinator_address, num_processes,
    process_id) when config.train.distributed; a no-op otherwise or when already initialised."""
    train = config.train
    if not train.distributed:
        return
    if jax.distributed.is_initialized():
        return
    kwargs = {}
    if train.coordinator_address:
        kwargs = dict(coordinator_address=train.coordinator_address, num_processes=int(train.num_processes),
                      process_id=int(train.process_id))
    jax.distributed.initialize(**kwargs)


def make_mesh(devices=None) -> Mesh:
    """A 1-D mesh over `devices` (default: every device of every process), axis 'data'."""
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), (DATA_AXIS,))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def replicated_sharding(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def local_batch_size(global_batch_size: int, mesh: Mesh) -> int:
    """Rows this process feeds; checks the global batch splits evenly over devices."""
    devices = mesh.devices.size
    if global_batch_size % devices:
        raise ValueError(f"data.batch_size ({global_batch_size}) must be a multiple of the number "
                         f"of devices ({devices})")
    return global_batch_size // jax.process_count()


def shard_batch(batch: dict, mesh: Mesh) -> dict:
    """This process's rows (numpy) -> global arrays sharded along the batch axis."""
    sharding = batch_sharding(mesh)
    out = {}
    for name, value in batch.items():
        if isinstance(value, jax.Array) and value.sharding == sharding:  # already placed (prefetch_to_mesh)
            out[name] = value
            continue
        value = np.asarray(value)
        global_rows = value.shape[0] * jax.process_count()
        if global_rows % mesh.devices.size:
            raise ValueError(f"batch '{name}' has {global_rows} rows in all, not a multiple of the "
                             f"{mesh.devices.size} devices")
        out[name] = jax.make_array_from_process_local_data(sharding, value)
    return out


def prefetch_to_mesh(batches: Iterator[dict], mesh: Mesh, size: int = 2) -> Iterator[dict]:
    """Yields `batches` (this process's numpy rows) as global arrays sharded over the mesh, keeping
    `size` batches ahead already transferred (`shard_batch`, asynchronous), so the next batch's
    host-to-device copy overlaps the current step (flax.jax_utils.prefetch_to_device for a mesh).
    Only what is yielded is consumed: a position derived from the step count stays exact.
    size 0: the host batches as they come (nothing placed ahead)."""
    if size < 1:
        yield from batches
        return
    queue: collections.deque = collections.deque()
    batches = iter(batches)

    def enqueue(n):
        for batch in batches:
            queue.append(shard_batch(batch, mesh))
            if len(queue) >= n:
                return

    enqueue(size)
    while queue:
        yield queue.popleft()
        enqueue(size)


def replicate(tree, mesh: Mesh):
    """Places a pytree (identical on every process) on every device of the mesh."""
    sharding = replicated_sharding(mesh)

    def put(x):
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

    return jax.tree.map(put, tree)


def to_host(tree):
    """Replicated (or single-device) arrays -> numpy, reading this process's own copy."""
    def get(x):
        if isinstance(x, jax.Array):
            return np.asarray(x.addressable_data(0)) if x.is_fully_replicated else np.asarray(x)
        return x

    return jax.tree.map(get, tree)


def jit_step(step_fn: Callable, mesh: Mesh, donate: bool = True) -> Callable:
    """jax.jit of `step_fn(state, batch, loss_nets) -> (state, metrics)`: batch sharded, state / loss_nets /
    outputs replicated, state donated."""
    repl, data = replicated_sharding(mesh), batch_sharding(mesh)
    return jax.jit(step_fn, in_shardings=(repl, data, repl), out_shardings=(repl, repl),
                   donate_argnums=(0,) if donate else ())


def create_sharded_state(create_fn: Callable, mesh: Mesh, key):
    """Runs `create_fn(key) -> state` under jit with a replicated output (every process gets the
    same state without a host round trip)."""
    repl = replicated_sharding(mesh)
    key = replicate(np.asarray(key), mesh)
    return jax.jit(create_fn, in_shardings=repl, out_shardings=repl)(key)
