"""jaxgan.train.steps: isolation of the D and G updates, the fused step, the gradient penalty, EMA,
mixed precision, what D sees, G's loss mix."""

import json

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.train import state as state_lib
from jaxgan.train import steps
from train_helpers import enable_compilation_cache, fixed_batch, make_modules, tiny_config

enable_compilation_cache()

KEY = jax.random.PRNGKey(0)


def _setup(config):
    g, d = make_modules(config)
    batch = fixed_batch(config)
    state = state_lib.create_state(config, g, d, batch, KEY)
    return state, batch, steps.make_step_fns(config)


def _equal(a, b):
    return all(np.array_equal(np.asarray(x), np.asarray(y))
               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


@pytest.fixture(scope="module")
def wgan_gp_run():
    """BatchNorm nets, WGAN-GP, 2 critic updates, EMA: the fused step and the separate steps."""
    config = tiny_config("deblur", adversarial="wgan", gradient_penalty="wgan_gp", n_critic=2)
    config.train.ema_decay = 0.5
    state, batch, fns = _setup(config)
    d_step, g_step = jax.jit(fns.d_step), jax.jit(fns.g_step)
    after_d1, d_metrics = d_step(state, batch, {})
    after_d2, _ = d_step(after_d1, batch, {})
    after_g, g_metrics = g_step(after_d2, batch, {})
    fused, fused_metrics = jax.jit(fns.train_step)(state, batch, {})
    return dict(config=config, state=state, batch=batch, fns=fns, after_d1=after_d1, after_d2=after_d2,
                after_g=after_g, fused=fused, d_metrics=d_metrics, g_metrics=g_metrics,
                fused_metrics=fused_metrics)


def test_d_step_leaves_generator_unchanged(wgan_gp_run):
    r = wgan_gp_run
    before, after = r["state"], r["after_d1"]
    assert _equal(before.g, after.g)  # params, batch_stats, optimizer state, step
    assert _equal(before.ema_params, after.ema_params)
    assert not _equal(before.d.params, after.d.params)
    assert not _equal(before.d.batch_stats, after.d.batch_stats)  # D's BN statistics move in d_step
    assert int(after.d.step) == 1 and int(after.step) == 0


def test_g_step_leaves_discriminator_unchanged(wgan_gp_run):
    r = wgan_gp_run
    before, after = r["after_d2"], r["after_g"]
    assert _equal(before.d, after.d)
    assert not _equal(before.g.params, after.g.params)
    assert not _equal(before.g.batch_stats, after.g.batch_stats)
    assert int(after.step) == 1
    # EMA: decay * old + (1 - decay) * new params
    expected = jax.tree.map(lambda e, p: 0.5 * e + 0.5 * p, before.ema_params, after.g.params)
    chex.assert_trees_all_close(after.ema_params, expected, atol=1e-7)


def test_ema_averages_batch_norm_statistics_and_inference_uses_them(wgan_gp_run):
    """EMA params are applied with an EMA of G's batch-norm statistics (timm's ModelEmaV2 averages
    buffers too): EMA params with the live statistics collapsed a batch-norm U-Net's masks."""
    r = wgan_gp_run
    before, after = r["after_d2"], r["after_g"]
    assert before.ema_batch_stats is not None
    expected = jax.tree.map(lambda e, p: 0.5 * e + 0.5 * p, before.ema_batch_stats, after.g.batch_stats)
    chex.assert_trees_all_close(after.ema_batch_stats, expected, atol=1e-7)
    assert not _equal(after.ema_batch_stats, after.g.batch_stats)
    variables = after.generator_variables()
    assert _equal(variables["batch_stats"], after.ema_batch_stats) and _equal(variables["params"], after.ema_params)
    live = after.generator_variables(use_ema=False)
    assert _equal(live["batch_stats"], after.g.batch_stats) and _equal(live["params"], after.g.params)
    # a run saved before the key existed resumes as it trained: EMA params, live statistics
    from jaxgan import config_io
    saved = json.loads(config_io.config_to_json(r["config"]))
    del saved["train"]["ema_batch_stats"]
    assert config_io.config_from_json(json.dumps(saved)).train.ema_batch_stats is False


def test_fused_train_step_equals_critic_updates_then_generator_update(wgan_gp_run):
    r = wgan_gp_run
    chex.assert_trees_all_close(r["fused"].d.params, r["after_g"].d.params, atol=2e-6, rtol=1e-5)
    chex.assert_trees_all_close(r["fused"].g.params, r["after_g"].g.params, atol=2e-6, rtol=1e-5)
    chex.assert_trees_all_close(r["fused"].g.batch_stats, r["after_g"].g.batch_stats, atol=1e-6)
    chex.assert_trees_all_close(r["fused"].d.batch_stats, r["after_g"].d.batch_stats, atol=1e-6)
    assert int(r["fused"].d.step) == 2 and int(r["fused"].step) == 1
    np.testing.assert_allclose(r["fused_metrics"]["g_loss"], r["g_metrics"]["g_loss"], rtol=1e-5)


def test_gradient_penalty_is_in_d_loss_with_its_weight(wgan_gp_run):
    m = wgan_gp_run["d_metrics"]
    assert float(m["d_penalty"]) > 0
    np.testing.assert_allclose(m["d_loss"], m["d_adv"] + 10.0 * m["d_penalty"], rtol=1e-6)


def test_gradient_penalty_gradient_reaches_discriminator_only(wgan_gp_run):
    r = wgan_gp_run
    state, batch, fns = r["state"], r["batch"], r["fns"]

    def penalty_of_g_params(g_params):
        s = state.replace(g=state.g.replace(params=g_params))
        return fns.d_step(s, batch, {})[1]["d_penalty"]

    grads = jax.grad(penalty_of_g_params)(state.g.params)
    assert all(float(jnp.max(jnp.abs(g))) == 0.0 for g in jax.tree.leaves(grads))
    # ... while it does change D's update, and G's update does not depend on it at all
    config0 = tiny_config("deblur", adversarial="wgan", gradient_penalty="wgan_gp", n_critic=2,
                          gradient_penalty_weight=0.0)
    config0.train.ema_decay = 0.5
    fns0 = steps.make_step_fns(config0)
    d0, _ = jax.jit(fns0.d_step)(state, batch, {})
    assert not _equal(d0.d.params, r["after_d1"].d.params)
    g0, _ = jax.jit(fns0.g_step)(r["after_d2"], batch, {})
    assert _equal(g0.g.params, r["after_g"].g.params)


def test_bfloat16_losses_close_to_float32():
    config = tiny_config("deblur")
    state, batch, fns = _setup(config)
    _, m32 = jax.jit(fns.train_step)(state, batch, {})
    config.train.compute_dtype = "bfloat16"
    g, d = make_modules(config)
    state16 = state_lib.create_state(config, g, d, batch, KEY)
    assert jax.tree.leaves(state16.g.params)[0].dtype == jnp.float32  # params stay float32
    chex.assert_trees_all_equal(state16.g.params, state.g.params)
    new16, m16 = jax.jit(steps.make_step_fns(config).train_step)(state16, batch, {})
    assert all(l.dtype == jnp.float32 for l in jax.tree.leaves(new16.g.opt_state) if l.ndim)
    for name in ("d_loss", "g_loss", "g_adv", "g_pixel"):
        assert m16[name].dtype == jnp.float32
        # stated tolerance: 2% relative (bfloat16 has an 8-bit mantissa, ~0.4% per rounding)
        np.testing.assert_allclose(m16[name], m32[name], rtol=2e-2, err_msg=name)
    # ... and bfloat16 really computed them: G's output differs from float32's by bfloat16's rounding
    # (~0.4 % of its scale; float32 twice would agree to ~1e-7), and so do the losses
    variables = {"params": state.g.params, "batch_stats": state.g.batch_stats}
    out32, out16 = (np.asarray(s.g.apply_fn(variables, batch["input"]), np.float32) for s in (state, state16))
    assert np.abs(out16 - out32).max() > 3e-3 * np.abs(out32).max()
    assert max(abs(float(m16[name]) / float(m32[name]) - 1) for name in ("d_loss", "g_loss")) > 1e-5


def test_joint_d_forward_equals_separate_passes_without_batch_norm():
    config = tiny_config("deblur", norm="none")
    state, batch, _ = _setup(config)
    s = steps.StepConfig.from_config(config)
    real, fake = batch["target"], -batch["target"]
    real_logits, fake_logits, _ = steps.d_logits(s, state.d, state.d.params, batch["input"], real, fake, KEY)
    apply = lambda img: state.d.apply_fn({"params": state.d.params},  # noqa: E731
                                         jnp.concatenate([batch["input"], img], -1), train=True)
    chex.assert_trees_all_close(real_logits, apply(real), atol=1e-6)
    chex.assert_trees_all_close(fake_logits, apply(fake), atol=1e-6)


def test_what_d_sees_for_masks():
    s = steps.StepConfig.from_config(tiny_config("segment"))
    labels = jnp.array([[[0, 1], [2, 1]]])
    one_hot = steps.real_image(s, labels, 3)
    chex.assert_trees_all_equal(one_hot[0, 1, 0], jnp.array([-1.0, -1.0, 1.0]))
    binary = steps.real_image(s, jnp.array([[[0, 1]]]), 1)
    chex.assert_trees_all_equal(binary[..., 0], jnp.array([[[-1.0, 1.0]]]))
    logits = jnp.array([[[[0.0, 0.0, jnp.log(2.0)]]]])  # softmax (1/4, 1/4, 1/2)
    np.testing.assert_allclose(steps.fake_image(s, logits)[0, 0, 0], [-0.5, -0.5, 0.0], atol=1e-6)
    np.testing.assert_allclose(steps.fake_image(s, jnp.zeros((1, 1, 1, 1))), 0.0)  # sigmoid(0) = 1/2


def test_generator_loss_mix_deblur_with_perceptual():
    """g_loss = adversarial_weight x adv + pixel_weight x L1 + perceptual_weight x VGG term, with the
    VGG weights passed in `loss_nets` (an argument of the jitted step)."""
    config = tiny_config("deblur", adversarial="lsgan", adversarial_weight=0.5, pixel="l2",
                         pixel_weight=3.0, perceptual_weight=2.0)
    state, batch, fns = _setup(config)
    loss_nets = steps.make_loss_nets(config)
    assert set(loss_nets) == {"vgg"}
    _, m = jax.jit(fns.g_step)(state, batch, loss_nets)
    assert float(m["g_perceptual"]) > 0
    np.testing.assert_allclose(m["g_loss"], 0.5 * m["g_adv"] + 3.0 * m["g_pixel"] + 2.0 * m["g_perceptual"],
                               rtol=1e-6)
    # the perceptual term is that of jaxgan.losses on G's output (train mode, as in the step)
    from jaxgan import losses

    output = state.g.apply_fn({"params": state.g.params, "batch_stats": state.g.batch_stats},
                              batch["input"], train=True, mutable=["batch_stats"])[0]
    expected = losses.perceptual_loss(loss_nets["vgg"], output, batch["target"], layers=("conv3_3",))
    np.testing.assert_allclose(m["g_perceptual"], expected, rtol=1e-4)


def test_generator_loss_mix_segment():
    config = tiny_config("segment", mask="dice", mask_weight=7.0, adversarial_weight=2.0)
    state, batch, fns = _setup(config)
    assert steps.make_loss_nets(config) == {}  # no VGG for masks
    _, m = jax.jit(fns.g_step)(state, batch, {})
    assert "g_pixel" not in m and "g_perceptual" not in m
    np.testing.assert_allclose(m["g_loss"], 2.0 * m["g_adv"] + 7.0 * m["g_mask"], rtol=1e-6)


@pytest.mark.parametrize("task", ["deblur", "segment"])
def test_without_adversarial_term_d_is_not_run_and_g_moves_as_with_a_vanishing_one(task):
    """adversarial_weight 0: D's params, statistics and optimizer state stay as they were and no D
    metric is reported; G's update equals the full step's (D run and updated) with a weight of 1e-30,
    whose adversarial gradient vanishes: skipping D changes nothing G learns."""
    zero = tiny_config(task, adversarial_weight=0.0)
    state, batch, fns = _setup(zero)
    after, metrics = jax.jit(fns.train_step)(state, batch, {})
    assert _equal(state.d, after.d) and not any(k.startswith("d_") for k in metrics)
    assert "g_adv" not in metrics and np.isfinite(float(metrics["g_loss"]))
    assert _equal(jax.jit(fns.d_step)(state, batch, {})[0].d, state.d)
    tiny = tiny_config(task, adversarial_weight=1e-30)
    full_state, _, full_fns = _setup(tiny)
    full, full_metrics = jax.jit(full_fns.train_step)(full_state, batch, {})
    assert "d_loss" in full_metrics and not _equal(full.d.params, full_state.d.params)
    for part in ("params", "batch_stats", "opt_state", "step"):
        chex.assert_trees_all_close(getattr(after.g, part), getattr(full.g, part), atol=1e-6)
    assert not _equal(after.g.params, state.g.params)
    chex.assert_trees_all_close(jax.jit(fns.g_step)(state, batch, {})[0].g.params, after.g.params, atol=1e-6)
