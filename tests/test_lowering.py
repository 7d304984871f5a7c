"""Every published setup lowers for CUDA and TPU from this CPU-only machine (jax.export, no device).

For each published config (experiments/configs, widths shrunk so tracing stays fast), for both platforms
in one trace (what 'auto' picks is the same on both):
the jitted train step, `jaxgan predict`'s jitted function (Predictor) and the function each export
format carries (jaxgan.export.inference_fn: savedmodel / stablehlo with a symbolic image size, tflite
at a fixed one) are exported with `jax.export(..., platforms=('cuda', 'tpu'))` inside
`ops.lowering_for('cuda', 'tpu')`, i.e. under the conv_impl that 'auto' picks there. Checked: every conv /
pool jaxgan.ops traced resolved to 'xla' (the TFLite form for tflite), none of the CPU rewrites
('cpu_fast'); the n_critic loop stays one rolled `while` (unrolled on CPU only); no custom calls.
One line per (setup, function) is printed (`pytest -s`).
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import export

from jaxgan import config_io, ops
from jaxgan import export as export_lib
from jaxgan.nets import vgg19
from jaxgan.predict import Predictor
from jaxgan.train import state as state_lib
from jaxgan.train import steps as steps_lib

SETUPS = ("pix2pix_pets_seg", "deblurgan_gopro", "deblurganv2_mobilenet_gopro")
PLATFORMS = ("cuda", "tpu")
PORTABLE_CALLS = {"shape_assertion"}  # jax.export's own check of a symbolic size's constraints


def tiny_published(name: str):
    """The published config with every width shrunk (same layers, same losses, same step)."""
    c = config_io.load_config(f"experiments/configs/{name}.py")
    c.generator.options.base_width = 4
    c.discriminator.options.base_width = 4
    if c.generator.name == "fpn_mobilenet":
        c.generator.options.backbone_width = 0.25
    c.variants.transfer_from = ""  # the ImageNet backbone file is a user's; its shapes are the same
    return c


def crop(config) -> int:
    """The smallest side the setup trains on: the U-Net 256 needs 256, the double-scale D 96+."""
    return 256 if config.generator.name == "unet" else 128


class ResolvedImpls:
    """Records what every jaxgan.ops call resolved its conv_impl to while active."""

    def __init__(self, monkeypatch):
        self.seen: list[str] = []
        original = ops.dispatch.resolve

        def spy(impl=None):
            self.seen.append(original(impl))
            return self.seen[-1]

        monkeypatch.setattr(ops.dispatch, "resolve", spy)


def exported_text(fn, platforms, *args, **kwargs) -> str:
    """StableHLO text of a fresh jax.jit of `fn` exported for `platforms` (one trace for them)."""
    with ops.lowering_for(*platforms):
        exported = export.export(jax.jit(fn), platforms=platforms)(*args, **kwargs)
    assert exported.platforms == tuple(platforms)
    return exported.mlir_module()


def summary(text: str) -> dict:
    return {"convolutions": text.count("stablehlo.convolution"), "while_loops": text.count("stablehlo.while"),
            "custom_calls": sorted(set(re.findall(r"stablehlo\.custom_call @([\w.$]+)", text)) - PORTABLE_CALLS)}


def abstract_step_args(config):
    """(state, batch, loss_nets) as ShapeDtypeStructs: nothing is initialised or loaded."""
    size = crop(config)
    g, d = state_lib.make_modules(config)
    sample = {"input": np.zeros((1, size, size, 3), np.float32)}
    state = jax.eval_shape(lambda key: state_lib.create_state(config, g, d, sample, key), jax.random.PRNGKey(0))
    segment = config.task == "segment"
    batch = {"input": jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32),
             "target": jax.ShapeDtypeStruct((1, size, size) + (() if segment else (3,)),
                                            jnp.int32 if segment else jnp.float32)}
    loss_nets = {}
    if steps_lib.StepConfig.from_config(config).uses_perceptual:  # VGG19: the user's weights, same shapes
        loss_nets = {"vgg": {name: {"kernel": jax.ShapeDtypeStruct(k, jnp.float32),
                                    "bias": jax.ShapeDtypeStruct(b, jnp.float32)}
                             for name, (k, b) in vgg19.conv_shapes().items()}}
    return state, batch, loss_nets


def abstract_generator(config):
    g, _ = state_lib.make_modules(config)
    x = jnp.zeros((1, crop(config), crop(config), 3), jnp.float32)
    return g, jax.eval_shape(lambda: g.init({"params": jax.random.PRNGKey(0)}, x, train=False))


def check(text: str, seen: list, want_impl: str, want_while: int, label: str) -> None:
    found = summary(text)
    print(f"\n{label}: {found['convolutions']} convolutions, {found['while_loops']} while loops, "
          f"custom calls {found['custom_calls'] or 'none'}, jaxgan.ops impls {sorted(set(seen))} "
          f"({len(seen)} calls)")
    assert seen and set(seen) == {want_impl}, f"{label}: ops resolved to {sorted(set(seen))}"
    assert found["custom_calls"] == [], label
    assert found["while_loops"] == want_while, label


@pytest.mark.parametrize("name", SETUPS)
def test_train_step_lowers_without_cpu_paths(name, monkeypatch):
    config = tiny_published(name)
    args = abstract_step_args(config)
    spy = ResolvedImpls(monkeypatch)  # (after the state's init, which is traced for this machine)
    text = exported_text(steps_lib.make_step_fns(config).train_step, PLATFORMS, *args)
    # the critic's n_critic - 1 extra updates: one rolled loop (DeblurGAN's 5 critic steps), none at 1
    check(text, spy.seen, "xla", int(config.loss.n_critic > 1), f"{name} {'+'.join(PLATFORMS)} train_step")


@pytest.mark.parametrize("name", SETUPS)
def test_predict_and_export_functions_lower_without_cpu_paths(name, monkeypatch):
    config = tiny_published(name)
    module, variables = abstract_generator(config)
    side = crop(config)
    image = jax.ShapeDtypeStruct((1, side, side, 3), jnp.float32)
    platform = "+".join(PLATFORMS)

    spy = ResolvedImpls(monkeypatch)  # jaxgan predict: train-mode inference of the published setups
    predictor = Predictor.from_config(config, module, variables)
    text = exported_text(predictor._apply.__wrapped__, PLATFORMS, variables, image, key=jax.random.PRNGKey(0))
    check(text, spy.seen, "xla", 0, f"{name} {platform} predict")

    spy.seen.clear()  # savedmodel and stablehlo: one function, any image size
    dynamic = jax.ShapeDtypeStruct(export.symbolic_shape(export_lib.DYNAMIC_SHAPE,
                                                         constraints=export_lib.DYNAMIC_CONSTRAINTS), jnp.float32)
    text = exported_text(export_lib.inference_fn(config, module), PLATFORMS, variables, dynamic)
    check(text, spy.seen, "xla", 0, f"{name} {platform} export savedmodel/stablehlo")

    spy.seen.clear()  # tflite: a fixed size, the convs in the forms TFLite's converter maps
    text = exported_text(export_lib.inference_fn(config, module, "tflite"), PLATFORMS, variables, image)
    check(text, spy.seen, "tflite", 0, f"{name} {platform} export tflite")


def test_lowering_for_rejects_an_unknown_platform_and_a_mix_with_the_cpu():
    with pytest.raises(ValueError, match="platform must be one of .*'gpu'"):
        with ops.lowering_for("cuda", "gpu"):
            pass
    with pytest.raises(ValueError, match="CPU and another"):
        with ops.lowering_for("cpu", "tpu"):
            pass
