"""`jaxgan import-weights`: an original checkpoint file -> a jaxgan workdir (checkpoint at step 0 +
its config) that `jaxgan predict --workdir` and `jaxgan evaluate --workdir` read like a trained run.

Only the generator comes from the file (the originals' latest_net_G.pth / fpn_*.h5 hold nothing
else); the discriminator and the optimizer states are freshly initialised, so the workdir can also
be trained further. The config is the published setup's (below) unless `config_path` names an
experiment file, whose data / loss / train sections are then kept; the generator section always
describes the imported network (its widths read off the file).
"""

from __future__ import annotations

from pathlib import Path

import ml_collections

from jaxgan import config_io
from jaxgan.config import base_config
from jaxgan.data.prior import input_channels
from jaxgan.train import checkpoint
from jaxgan.train import state as state_lib
from jaxgan.train.checkpoint import LATEST_DIR
from jaxgan.trees import count_params
from jaxgan.weights.formats import FORMATS, convert_generator
from jaxgan.weights.torch_file import WeightsError, load_state_dict


def published_config(fmt: str) -> ml_collections.ConfigDict:
    """The original setup of each format as a jaxgan config (image -> image, task 'deblur')."""
    c = base_config()
    c.task = "deblur"
    if fmt == "pix2pix":  # train.py of pix2pix: conditional 70x70 PatchGAN, vanilla GAN + 100 x L1
        c.discriminator.name, c.discriminator.conditional = "patchgan", True
        c.discriminator.options = ml_collections.ConfigDict(dict(base_width=64, num_layers=3, norm="batch"))
        c.loss.adversarial, c.loss.pixel, c.loss.pixel_weight = "vanilla", "l1", 100.0
    elif fmt == "deblurgan":  # WGAN-GP critic (unconditional PatchGAN, instance norm), 5 critic steps
        c.discriminator.name, c.discriminator.conditional = "patchgan", False
        c.discriminator.options = ml_collections.ConfigDict(dict(base_width=64, num_layers=3, norm="instance"))
        c.loss.adversarial, c.loss.gradient_penalty, c.loss.n_critic = "wgan", "wgan_gp", 5
        c.loss.pixel, c.loss.perceptual_weight = "none", 100.0
        c.optim.g_lr = c.optim.d_lr = 1e-4
    else:  # DeblurGAN-v2: double-scale D, RaGAN-LS
        c.discriminator.name, c.discriminator.conditional = "double_scale", False
        c.discriminator.options = ml_collections.ConfigDict(dict(base_width=64, norm="instance"))
        c.loss.adversarial, c.loss.adversarial_weight = "ragan_ls", 0.001
        c.loss.pixel, c.loss.pixel_weight, c.loss.perceptual_weight = "l2", 0.5, 0.006
        c.optim.g_lr = c.optim.d_lr = 1e-4
    c.data.crop_size = 256
    return c


def _check_workdir(workdir: Path) -> None:
    latest = workdir / LATEST_DIR
    if latest.exists() and any(latest.iterdir()):
        raise WeightsError(f"{workdir} already holds checkpoints ({latest}); choose a new --workdir")


def import_checkpoint(fmt: str, path: str | Path, workdir: str | Path, config_path: str | Path | None = None) -> dict:
    """Writes WORKDIR/checkpoints/0 from the original checkpoint `path`; returns a summary dict."""
    if fmt not in FORMATS:
        raise WeightsError(f"unknown format {fmt!r}; valid formats: {', '.join(sorted(FORMATS))}")
    workdir = Path(workdir)
    _check_workdir(workdir)
    config = config_io.load_config(config_path) if config_path else published_config(fmt)
    name, options, variables = convert_generator(fmt, load_state_dict(path), str(path))
    config.generator.name = name
    config.generator.options = ml_collections.ConfigDict(options)
    config.train.ema_decay = 0.0
    config.data.prior = "none"
    if input_channels(config.data) != options["in_channels"]:
        raise WeightsError(f"{path}: the generator takes {options['in_channels']} input channels, the config's "
                           f"data gives {input_channels(config.data)}")

    g_module, d_module = state_lib.make_modules(config)
    side = 128 if fmt.startswith("deblurganv2") else 64  # the double-scale D's 5-layer PatchGAN needs >= 96
    state = _state_with_generator(config, g_module, d_module, side, variables)
    workdir.mkdir(parents=True, exist_ok=True)
    saver = checkpoint.Checkpointer(workdir, config)
    try:
        saver.save(0, state)
        saver.wait()
    finally:
        saver.close()
    (workdir / "config.json").write_text(config_io.config_to_json(config) + "\n")
    return {"workdir": str(workdir), "format": fmt, "generator": name, "options": options,
            "params": count_params(state.g.params)}


def _state_with_generator(config, g_module, d_module, side: int, variables: dict):
    """The GANState `create_state` would build, with G's params / batch stats from `variables` and a
    freshly initialised D. Built from the abstract state (jax.eval_shape) so that G is never
    initialised or compiled (a jitted create_state of FPN-MobileNet compiles for a minute)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    sample = {"input": np.zeros((1, side, side, g_module.in_channels), np.float32)}
    key = jax.random.PRNGKey(int(config.seed))
    abstract = jax.eval_shape(lambda k: state_lib.create_state(config, g_module, d_module, sample, k), key)
    if abstract.pool is not None or abstract.ema_params is not None:
        raise WeightsError("import-weights writes a state without EMA or image pool; the config asks for "
                           "train.ema_decay > 0 or variants.history_size > 0")
    _, d_key, run_key = jax.random.split(key, 3)
    d_x = jnp.asarray(state_lib.d_sample_input(config, sample["input"]))
    d_variables = dict(jax.jit(lambda k, x: d_module.init({"params": k, "dropout": k}, x, train=False))(d_key, d_x))

    def model_state(module_apply, tx, params, batch_stats):
        return jax.jit(lambda p, b: state_lib.ModelState.create(apply_fn=module_apply, params=p, tx=tx,
                                                                batch_stats=b))(params, batch_stats)

    g = model_state(g_module.apply, abstract.g.tx, jax.tree.map(jnp.asarray, variables["params"]),
                    jax.tree.map(jnp.asarray, variables.get("batch_stats", {})))
    d = model_state(d_module.apply, abstract.d.tx, d_variables["params"], d_variables.get("batch_stats", {}))
    logit_pool = (None if abstract.logit_pool is None  # an empty pool (all zeros) for ragan / ragan_ls runs
                  else jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype), abstract.logit_pool))
    state = state_lib.GANState(g=g, d=d, ema_params=None, key=run_key, pool=None, logit_pool=logit_pool)
    wanted = jax.tree.map(lambda a: (a.shape, a.dtype), abstract)
    got = jax.tree.map(lambda a: (a.shape, a.dtype), state)
    if jax.tree.structure(got) != jax.tree.structure(wanted) or jax.tree.leaves(got) != jax.tree.leaves(wanted):
        raise AssertionError("imported generator variables do not match the generator of the config")
    return state
