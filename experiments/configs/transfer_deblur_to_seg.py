"""Transfer learning: segmentation on `shapes_seg` with 1/8 of the labels, starting from the encoder
of a deblurring U-Net trained on `photo_blur` (experiments/configs/deblur_unet.py: same depth 5,
width 32). The encoder kernels ('down_*/kernel') are loaded where their shapes match (the report
lists what was loaded and what was skipped, e.g. biases this batch-norm U-Net does not have), frozen
for the first 500 steps while the decoder adapts, then fine-tuned with the rest.

    jaxgan train --config experiments/configs/deblur_unet.py --workdir runs/deblur_unet
    jaxgan train --config experiments/configs/transfer_deblur_to_seg.py --workdir runs/transfer_seg
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
    c.generator.name = "unet"
    c.generator.options = ml_collections.ConfigDict(dict(
        in_channels=3, out_channels=1, depth=5, base_width=32, norm="batch", dropout=False,
        upsample="resize", out_activation="none"))
    c.discriminator.name = "patchgan"
    c.discriminator.conditional = True
    c.discriminator.options = ml_collections.ConfigDict(dict(
        in_channels=4, base_width=32, num_layers=3, norm="batch"))
    c.loss.mask = "sigmoid_ce"
    c.loss.mask_weight = 100.0
    c.loss.pixel = "none"
    c.optim.g_lr = 1e-3
    c.optim.schedule = "cosine"
    c.optim.warmup_steps = 100
    c.train.steps = 2000
    c.train.log_every = 100
    c.train.eval_every = 1000
    c.train.checkpoint_every = 1000
    c.train.best_metric = "mean_iou"
    c.variants.labelled_fraction = 1 / 8
    c.variants.transfer_from = "runs/deblur_unet"
    c.variants.transfer_model = "generator"
    c.variants.transfer_prefixes = ("down_",)
    c.variants.freeze_prefixes = ("down_",)
    c.variants.unfreeze_step = 500
    return c
