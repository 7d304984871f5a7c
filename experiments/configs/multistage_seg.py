"""Multi-stage (coarse-to-fine) segmentation on the built-in `shapes_seg`: three small U-Nets at 1/4,
1/2 and full resolution, each refining the previous logits (residually), sigmoid cross-entropy on
every stage against the nearest-downsampled mask (deep supervision), conditional PatchGAN.

    jaxgan train --config experiments/configs/multistage_seg.py --workdir runs/multistage_seg
"""

import ml_collections

from jaxgan.config import base_config


def get_config() -> ml_collections.ConfigDict:
    c = base_config()
    c.task = "segment"
    c.data.name = "shapes_seg"
    c.data.num_classes = 2
    c.data.crop_size = 96
    c.data.batch_size = 16
    c.data.eval_batch_size = 16
    c.generator.name = "multistage"
    c.generator.options = ml_collections.ConfigDict(dict(
        in_channels=3, out_channels=1, out_activation="none", num_stages=3, stage="unet",
        stage_options=dict(depth=3, base_width=24, norm="batch", dropout=False, upsample="resize")))
    c.discriminator.name = "patchgan"
    c.discriminator.conditional = True
    c.discriminator.options = ml_collections.ConfigDict(dict(
        in_channels=4, base_width=32, num_layers=3, norm="batch"))
    c.loss.mask = "sigmoid_ce"
    c.loss.mask_weight = 100.0
    c.loss.pixel = "none"
    c.variants.stage_loss_weight = 0.5
    c.optim.g_lr = 1e-3
    c.optim.schedule = "cosine"
    c.optim.warmup_steps = 100
    c.train.steps = 2000
    c.train.log_every = 100
    c.train.eval_every = 1000
    c.train.checkpoint_every = 1000
    c.train.best_metric = "mean_iou"
    return c
