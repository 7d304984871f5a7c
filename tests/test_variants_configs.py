"""Every variant config in experiments/configs builds: modules, step functions, and an abstract state
(traced, not run) with the variant's pieces in it."""

from pathlib import Path

import jax
import numpy as np
import pytest

from jaxgan.config_io import load_config_file
from jaxgan.data.prior import input_channels
from jaxgan.train import create_state, make_modules, make_step_fns, progressive

CONFIGS = Path(__file__).parents[1] / "experiments" / "configs"
VARIANTS = ["semi_seg", "progressive_deblur", "multistage_deblur", "multistage_seg", "transfer_deblur_to_seg",
            "history_deblur"]


@pytest.mark.parametrize("name", VARIANTS)
def test_variant_config_builds(name):
    config = load_config_file(CONFIGS / f"{name}.py")
    g, d = make_modules(config)
    make_step_fns(config)
    progressive.schedule(config)
    size = progressive.size_at(config, 0)
    sample = {"input": np.zeros((1, size, size, input_channels(config.data)), np.float32)}
    state = jax.eval_shape(lambda key: create_state(config, g, d, sample, key), jax.random.PRNGKey(0))
    v = config.variants
    assert (state.pool is not None) == (v.history_size > 0)
    if config.generator.name == "multistage":
        assert len(state.g.params) == config.generator.options.num_stages
    if name == "progressive_deblur":
        assert progressive.schedule(config)[-1][1] == config.data.crop_size
