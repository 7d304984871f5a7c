"""`jaxgan import-weights`: an original checkpoint file -> a workdir holding the generator as a bundle
(jaxgan.bundle, WORKDIR/generator/0) that `jaxgan predict / evaluate / export --workdir` read like a run's.

Only the generator comes from the file (the originals' latest_net_G.pth / fpn_*.h5 hold nothing else).
It predicts the way its original's test script runs it (`ORIGINAL_INFERENCE`): in train mode, one image
at a time, the whole image (no tiles). The config is the published setup's (below) unless `config_path`
names an experiment file, whose data / loss / train sections are then kept; the generator section always
describes the imported network (its widths read off the file). WORKDIR/config.json is that config with
train.init_from naming the bundle, so `jaxgan train --workdir WORKDIR` fine-tunes the imported generator
(a fresh discriminator and optimizer states, from step 0).
"""

from __future__ import annotations

from pathlib import Path

import ml_collections

from jaxgan import bundle, config_io
from jaxgan.config import base_config
from jaxgan.data.prior import input_channels
from jaxgan.trees import count_params
from jaxgan.weights.formats import FORMATS, convert_generator
from jaxgan.weights.torch_file import WeightsError, load_state_dict

# How the originals predict: the net in train mode (dropout on, batch norm on the image's own statistics),
# batch 1, the whole image (no tiles). pix2pix test.py:41 batch_size = 1, test.py:54-55 model.eval() only
# with --eval; DeblurGAN test.py:13 batchSize = 1, eval() never called; DeblurGAN-v2 predict.py:23
# model.train(True), predict.py:31 one image per batch, the whole image (predict.py:41-51).
ORIGINAL_INFERENCE = bundle.Inference(train_mode=True, tile_size=0)


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
    c.data.eval_batch_size = 1  # the originals' test scripts run one image at a time (ORIGINAL_INFERENCE)
    c.eval.train_mode_inference = ORIGINAL_INFERENCE.train_mode
    return c


def _check_workdir(workdir: Path) -> None:
    for held in (workdir / "checkpoints", workdir / bundle.LATEST_DIR):
        if held.exists() and any(held.iterdir()):
            raise WeightsError(f"{workdir} already holds checkpoints or a generator ({held}); choose a new --workdir")


def import_checkpoint(fmt: str, path: str | Path, workdir: str | Path, config_path: str | Path | None = None) -> dict:
    """Writes WORKDIR/generator/0 (a bundle) and WORKDIR/config.json from the original checkpoint `path`;
    returns a summary dict."""
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
    config.eval.train_mode_inference = ORIGINAL_INFERENCE.train_mode
    if input_channels(config.data) != options["in_channels"]:
        raise WeightsError(f"{path}: the generator takes {options['in_channels']} input channels, the config's "
                           f"data gives {input_channels(config.data)}")
    generator = bundle.GeneratorBundle(config, bundle.generator_variables(variables["params"],
                                                                          variables.get("batch_stats")),
                                       ORIGINAL_INFERENCE, {"imported_from": str(path), "format": fmt})
    target = workdir / bundle.LATEST_DIR / "0"
    generator.module()  # the options describe a module (ValueError naming a bad one) before anything is written
    generator.save(target)
    config.train.init_from = f"pretrained:{target.absolute()}"  # `jaxgan train --workdir` fine-tunes it
    (workdir / "config.json").write_text(config_io.config_to_json(config) + "\n")
    return {"workdir": str(workdir), "format": fmt, "generator": name, "options": options,
            "params": count_params(generator.variables["params"])}
