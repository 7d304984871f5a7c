"""VGGUNet: the published seg_vgg config loads every ImageNet VGG16 conv into the encoder, the encoder
then computes VGG16 on ImageNet-normalised input, frozen means zero encoder gradients, any size works."""

from pathlib import Path

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.config_io import load_config_file
from jaxgan.nets import make_generator
from jaxgan.nets.vgg import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    VGG16Features,
    load_vgg16_params,
)
from jaxgan.train.transfer import load_matching

CONFIG = Path(__file__).parents[1] / "experiments" / "configs" / "seg_vgg_quick.py"


def _generator(**overrides):
    config = load_config_file(CONFIG)
    options = dict(config.generator.options, **overrides)
    return config, make_generator(config.generator.name, **options)


def _loaded_variables(g, config, x):
    variables = jax.jit(g.init)(jax.random.key(0), x)
    params, report = load_matching(variables["params"], load_vgg16_params(), config.variants.transfer_prefixes,
                                   config.variants.transfer_rename)
    return dict(variables, params=params), report


def test_config_loads_every_vgg16_conv_and_the_encoder_computes_vgg16_on_normalised_input():
    config, g = _generator(base_width=4, extra_levels=1)
    x = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (1, 48, 48, 3)), jnp.float32)  # a multiple of 2**(3 + 1): no padding
    variables, report = _loaded_variables(g, config, x)
    assert len(report.loaded) == 20 and not report.skipped  # conv1_1 .. conv4_3, kernel and bias
    _, state = jax.jit(lambda v, x: g.apply(v, x, capture_intermediates=lambda m, _: m.name == "encoder",
                                            mutable=["intermediates"]))(variables, x)
    encoder_out = state["intermediates"]["encoder"]["__call__"][0]
    x01 = (np.asarray(x) + 1) / 2  # the ImageNet normalisation written out
    normalised = (x01 - np.asarray(IMAGENET_MEAN)) / np.asarray(IMAGENET_STD)
    reference = VGG16Features(layers=("conv1_2", "conv4_3"), after_relu=True).apply(
        {"params": load_vgg16_params()}, jnp.asarray(normalised, jnp.float32))
    for layer in ("conv1_2", "conv4_3"):
        np.testing.assert_allclose(encoder_out[layer], reference[layer], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("train_encoder", [False, True])
def test_frozen_encoder_gets_exactly_zero_gradients(train_encoder):
    config, g = _generator(train_encoder=train_encoder, base_width=4, extra_levels=1)
    x = jnp.asarray(np.random.default_rng(1).uniform(-1, 1, (2, 16, 16, 3)), jnp.float32)
    variables, _ = _loaded_variables(g, config, x)

    def loss(params):
        out, _ = g.apply(dict(variables, params=params), x, train=True, mutable=["batch_stats"])
        return jnp.sum(out ** 2)

    grads = jax.jit(jax.grad(loss))(variables["params"])
    encoder = max(float(jnp.abs(leaf).max()) for leaf in jax.tree.leaves(grads["encoder"]))
    decoder = max(float(jnp.abs(leaf).max()) for leaf in jax.tree.leaves(grads["fuse_0"]))
    assert decoder > 0
    assert (encoder > 0) == train_encoder


def test_any_size_gives_the_same_size_and_rejects_non_rgb():
    _, g = _generator(base_width=4, extra_levels=1)
    for shape in [(1, 37, 50, 3), (2, 16, 16, 3)]:
        out = jax.eval_shape(lambda x: g.init_with_output(jax.random.key(0), x)[0],
                             jax.ShapeDtypeStruct(shape, jnp.float32))
        chex.assert_shape(out, (*shape[:3], 1))
    with pytest.raises(ValueError, match="in_channels must be 3"):
        make_generator("vgg_unet", in_channels=4)


def test_finetune_config_trains_conv3_and_conv4_and_keeps_conv1_and_conv2():
    """seg_vgg_finetune.py: the encoder computes gradients and its freeze prefixes hold exactly VGG16's
    conv1_1 .. conv2_2 (Conv_0 .. Conv_3); conv3_1 .. conv4_3 (Conv_4 .. Conv_9) and the decoder train."""
    from jaxgan.train.optim import freeze_labels

    config = load_config_file(CONFIG.with_name("seg_vgg_finetune.py"))
    assert config.generator.options.train_encoder and not config.variants.transfer_from
    g = make_generator(config.generator.name, **dict(config.generator.options, base_width=4, extra_levels=1))
    params = jax.eval_shape(g.init, jax.random.key(0), jnp.zeros((1, 16, 16, 3)))["params"]
    labels = freeze_labels(params, config.variants.freeze_prefixes)
    frozen = sorted(name for name, leaves in labels["encoder"].items() if set(jax.tree.leaves(leaves)) == {"frozen"})
    trained = sorted(name for name, leaves in labels["encoder"].items() if set(jax.tree.leaves(leaves)) == {"train"})
    assert frozen == [f"Conv_{i}" for i in range(4)]
    assert trained == sorted(f"Conv_{i}" for i in range(4, 10))
    assert set(jax.tree.leaves({k: v for k, v in labels.items() if k != "encoder"})) == {"train"}
