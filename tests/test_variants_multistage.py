"""Multi-stage (coarse-to-fine) generator: stage shapes, residual refinement, deep-supervision
losses per stage; and the image history buffer inside the train step."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import nets
from jaxgan.train import create_state, make_modules, make_step_fns
from jaxgan.train.steps import StepConfig, resize_target
from train_helpers import enable_compilation_cache, fixed_batch, tiny_config

enable_compilation_cache()
STAGE = dict(depth=2, base_width=4, norm="none", dropout=False)


@pytest.mark.parametrize("num_stages,out_channels,activation", [(3, 3, "tanh"), (2, 5, "none")])
def test_stage_outputs_have_halving_sizes_and_the_call_returns_the_last(num_stages, out_channels, activation):
    g = nets.make_generator("multistage", in_channels=3, out_channels=out_channels, out_activation=activation,
                            num_stages=num_stages, stage="unet", stage_options=STAGE)
    x = jax.random.uniform(jax.random.PRNGKey(0), (2, 20, 24, 3), minval=-1, maxval=1)
    variables = g.init(jax.random.PRNGKey(1), x)
    stages = g.apply(variables, x, method="stages")
    assert len(stages) == num_stages
    for k, out in enumerate(stages):
        f = 2 ** (num_stages - 1 - k)
        assert out.shape == (2, -(-20 // f), -(-24 // f), out_channels)
        assert out.dtype == jnp.float32
    np.testing.assert_array_equal(g.apply(variables, x), stages[-1])
    assert sorted(variables["params"]) == [f"nets_{k}" for k in range(num_stages)]
    # stage 0 sees the image, later stages the image + the previous output
    assert variables["params"]["nets_0"]["down_0"]["kernel"].shape[2] == 3
    if num_stages > 1:
        assert variables["params"]["nets_1"]["down_0"]["kernel"].shape[2] == 3 + out_channels
    if activation == "tanh":
        assert all(float(jnp.max(jnp.abs(o))) <= 1.0 for o in stages)


def test_refining_stage_with_a_zero_net_passes_the_upsampled_coarse_output_on():
    g = nets.make_generator("multistage", in_channels=3, out_channels=2, out_activation="none", num_stages=2,
                            stage="unet", stage_options=STAGE)
    x = jax.random.uniform(jax.random.PRNGKey(0), (1, 16, 16, 3), minval=-1, maxval=1)
    variables = g.init(jax.random.PRNGKey(1), x)
    params = dict(variables["params"])
    params["nets_1"] = jax.tree.map(jnp.zeros_like, params["nets_1"])
    coarse, fine = g.apply({"params": params}, x, method="stages")
    expected = jax.image.resize(coarse, (1, 16, 16, 2), "linear")
    np.testing.assert_allclose(fine, expected, atol=1e-6)


def test_bad_options_are_value_errors():
    with pytest.raises(ValueError, match="stage generator"):
        nets.make_generator("multistage", stage="nope")
    with pytest.raises(ValueError, match="must not set"):
        nets.make_generator("multistage", stage="unet", stage_options=dict(in_channels=3))
    with pytest.raises(ValueError, match="num_stages"):
        nets.make_generator("multistage", num_stages=0)


def _multistage_config(task):
    c = tiny_config(task, norm="none")
    out_channels = c.generator.options["out_channels"]
    activation = c.generator.options["out_activation"]
    c.generator.name = "multistage"
    with c.generator.unlocked():
        c.generator.options = dict(in_channels=3, out_channels=out_channels, out_activation=activation,
                                   num_stages=2, stage="unet", stage_options=STAGE)
    c.variants.stage_loss_weight = 0.5
    return c


@pytest.mark.parametrize("task", ["deblur", "segment"])
def test_train_step_puts_a_loss_on_every_stage(task):
    config = _multistage_config(task)
    g, d = make_modules(config)
    batch = fixed_batch(config)
    state = create_state(config, g, d, batch, jax.random.PRNGKey(0))
    new_state, m = jax.jit(make_step_fns(config).train_step)(state, batch, {})
    name = "g_pixel" if task == "deblur" else "g_mask"
    assert "g_stage0" in m and "g_stage1" not in m
    assert all(np.isfinite(float(v)) for v in m.values())
    np.testing.assert_allclose(m["g_loss"], m["g_adv"] + 100.0 * m[name] + 0.5 * 100.0 * m["g_stage0"], rtol=1e-5)
    # the stage-0 loss against the target resized to 8x8, recomputed by hand
    from jaxgan import losses

    coarse = g.apply({"params": state.g.params}, jnp.asarray(batch["input"]), train=True, method="stages")[0]
    assert coarse.shape[1:3] == (8, 8)
    s = StepConfig.from_config(config)
    small = resize_target(s, jnp.asarray(batch["target"]), 8, 8)
    if task == "deblur":
        expected = losses.l1_loss(coarse, small)
    else:
        np.testing.assert_array_equal(small, batch["target"][:, 1::2, 1::2])  # nearest: the pixel right of centre
        expected = losses.get_mask_loss("sigmoid_ce")(coarse, small)
    np.testing.assert_allclose(m["g_stage0"], expected, rtol=1e-5)
    # both stages learn
    for k in ("nets_0", "nets_1"):
        before, after = state.g.params[k]["down_0"]["kernel"], new_state.g.params[k]["down_0"]["kernel"]
        assert not np.array_equal(before, after)


def test_history_buffer_in_the_train_step_fills_then_feeds_d():
    config = tiny_config("deblur", norm="none")
    config.variants.history_size = 6
    g, d = make_modules(config)
    batch = fixed_batch(config)
    state = create_state(config, g, d, batch, jax.random.PRNGKey(0))
    assert state.pool["images"].shape == (6, 16, 16, 6)  # condition + image for a conditional D
    step = jax.jit(make_step_fns(config).train_step)
    state, m1 = step(state, batch, {})
    assert int(state.pool["count"]) == 4
    state, m2 = step(state, fixed_batch(config, 1), {})
    assert int(state.pool["count"]) == 6
    assert np.isfinite(float(m2["d_loss"])) and np.isfinite(float(m2["g_loss"]))
    # the stored D inputs are (condition, fake) pairs: every stored condition is one of the batches'
    # inputs, and the pool is full of distinct ones
    inputs = np.concatenate([batch["input"], fixed_batch(config, 1)["input"]])
    stored = np.asarray(state.pool["images"][..., :3])
    rows = [int(np.argmin(np.abs(inputs - x[None]).reshape(8, -1).max(1))) for x in stored]
    for x, row in zip(stored, rows):
        np.testing.assert_array_equal(x, inputs[row])
    assert len(set(rows)) == 6
