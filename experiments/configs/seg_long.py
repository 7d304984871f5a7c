"""The best segmentation model: seg_quick's recipe (experiments/configs/seg_quick.py) trained for hours
on `seg_scenes` (13x the steps, every scene new), with an EMA of the generator and a two-scale
PatchGAN; resumable (checkpoints every 500 steps; `jaxgan train` with the same workdir continues exactly).

Follows pix2pix (junyanz/pytorch-CycleGAN-and-pix2pix models/pix2pix_model.py) as seg_quick does; the
multi-scale D follows pix2pixHD (two PatchGANs, the second on the 2x-downsampled pair). Differs on
purpose: sigmoid cross-entropy + Dice for the mask in place of L1, Adam 1e-3 for G with cosine decay
(pix2pix: 2e-4, linear decay), batch 8 rather than 1.

    nice -n 5 jaxgan train --config experiments/configs/seg_long.py --workdir /work/runs/seg_long
    python experiments/seg_transfer.py /work/runs/seg_long

Measurements: README (segmentation).
"""

from pathlib import Path

import ml_collections

from jaxgan.config_io import load_config_file


def get_config() -> ml_collections.ConfigDict:
    c = load_config_file(Path(__file__).with_name("seg_quick.py"))
    c.discriminator.name = "multiscale"
    c.optim.warmup_steps = 200
    c.train.steps = 8000
    c.train.ema_decay = 0.999
    c.train.log_every = 100
    c.train.eval_every = 1000
    c.train.checkpoint_every = 500
    return c
