"""jaxgan.train.build: what a run is made of, built once from its config."""

import jax
import numpy as np
import pytest

from jaxgan.train import parallel
from jaxgan.train import state as state_lib
from jaxgan.train.build import build
from train_helpers import enable_compilation_cache, tiny_config

enable_compilation_cache()


def _shapes(tree):
    """{path: (shape, dtype)} of every array (the static fields, e.g. the optimizers, are closures)."""
    return {jax.tree_util.keystr(path): (a.shape, a.dtype) for path, a in jax.tree_util.tree_leaves_with_path(tree)}


def test_abstract_state_is_the_shape_of_the_created_state():
    config = tiny_config("deblur")
    config.train.ema_decay = 0.9
    setup = build(config)
    sample = {"input": np.zeros((1, 16, 16, 3), np.float32)}
    created = jax.eval_shape(lambda key: state_lib.create_state(config, setup.g_module, setup.d_module, sample, key),
                             jax.random.PRNGKey(0))
    abstract = setup.abstract_state()
    assert _shapes(abstract) == _shapes(created)
    assert all(a.sharding.device_set == {jax.local_devices()[0]} for a in jax.tree.leaves(abstract))


def test_the_image_pool_of_a_progressive_run_has_the_size_of_the_checkpoints_phase():
    """A checkpoint saved after step k holds the pool of the phase of batch k - 1 (what restore reads it into)."""
    config = tiny_config("deblur", norm="none")
    config.variants.progressive_sizes, config.variants.progressive_steps = (8, 16), (2,)
    config.variants.history_size = 3
    setup = build(config)
    assert [setup.abstract_state(step).pool["images"].shape[1] for step in (0, 2, 3)] == [8, 8, 16]


def test_initial_state_is_create_state_of_the_seed_replicated_over_the_mesh():
    config = tiny_config("deblur")
    mesh = parallel.make_mesh()
    setup = build(config, mesh)
    state = setup.initial_state()
    expected = jax.jit(lambda key: state_lib.create_state(config, setup.g_module, setup.d_module,
                                                          setup.sample_input(), key))(jax.random.PRNGKey(config.seed))
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(expected), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert state.g.params["down_0"]["kernel"].sharding.is_fully_replicated


def test_a_setup_without_a_mesh_restores_only():
    with pytest.raises(ValueError, match="without a mesh"):
        build(tiny_config("deblur")).initial_state()
