"""Multi-stage (coarse-to-fine) segmentation on the built-in `shapes_seg`: three small U-Nets at 1/4,
1/2 and full resolution, each refining the previous logits (residually), seg_quick's mask loss on
every stage against the nearest-downsampled mask (deep supervision), conditional PatchGAN.

    jaxgan train --config experiments/configs/multistage_seg.py --workdir runs/multistage_seg
"""

from pathlib import Path

import ml_collections

from jaxgan.config_io import load_config_file


def get_config() -> ml_collections.ConfigDict:
    c = load_config_file(Path(__file__).with_name("seg_quick.py"))  # same data, D, losses, optimizer
    c.generator.name = "multistage"
    c.generator.options = ml_collections.ConfigDict(dict(
        in_channels=3, out_channels=1, out_activation="none", num_stages=3, stage="unet",
        stage_options=dict(depth=3, base_width=24, norm="batch", dropout=False, upsample="resize")))
    c.variants.stage_loss_weight = 0.5
    c.train.steps = 2000
    c.train.eval_every = 1000
    c.train.checkpoint_every = 1000
    return c
