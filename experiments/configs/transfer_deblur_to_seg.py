"""Transfer learning: segmentation on `shapes_seg` with 1/8 of the labels, starting from the encoder
of a deblurring U-Net trained on `photo_blur` (experiments/configs/deblur_unet.py: same depth 5,
width 32). The encoder kernels ('down_*/kernel') are loaded where their shapes match (the report
lists what was loaded and what was skipped, e.g. biases this batch-norm U-Net does not have), frozen
for the first 500 steps while the decoder adapts, then fine-tuned with the rest. At step 500 the
encoder starts a fresh Adam state (moments and count; jaxgan.train.optim.start_at) at the
schedule's current rate, so its first updates are as large as a new optimizer's (|update| / lr about
1), not the several-fold steps of moments that saw only zeros while the count ran on.

    jaxgan train --config experiments/configs/deblur_unet.py --workdir runs/deblur_unet
    jaxgan train --config experiments/configs/transfer_deblur_to_seg.py --workdir runs/transfer_seg
"""

from pathlib import Path

import ml_collections

from jaxgan.config_io import load_config_file


def get_config() -> ml_collections.ConfigDict:
    c = load_config_file(Path(__file__).with_name("seg_quick.py"))  # same U-Net, D and losses
    c.train.steps = 2000
    c.train.eval_every = 1000
    c.train.checkpoint_every = 1000
    c.variants.labelled_fraction = 1 / 8
    c.variants.transfer_from = "runs/deblur_unet"
    c.variants.transfer_model = "generator"
    c.variants.transfer_prefixes = ("down_",)
    c.variants.freeze_prefixes = ("down_",)
    c.variants.unfreeze_step = 500
    return c
