"""The segmentation model README reports as the best: seg_vgg_quick's recipe (frozen ImageNet VGG16
encoder, experiments/configs/seg_vgg_quick.py) trained for 2,000 steps (an hour on the 2-core VM) on
`seg_scenes` with an EMA of the generator (weights and batch-norm statistics); resumable (checkpoints
every 200 steps; `jaxgan train` with the same workdir continues exactly). The best checkpoint is chosen
on seg_scenes' val split.

    nice -n 5 jaxgan train --config experiments/configs/seg_vgg_long.py --workdir /work/runs/seg_vgg_long
    python experiments/seg_transfer.py /work/runs/seg_vgg_long

Measurements: README (segmentation).
"""

from pathlib import Path

import ml_collections

from jaxgan.config_io import load_config_file


def get_config() -> ml_collections.ConfigDict:
    c = load_config_file(Path(__file__).with_name("seg_vgg_quick.py"))
    c.optim.warmup_steps = 100
    c.train.steps = 2000
    c.train.ema_decay = 0.99
    c.train.log_every = 50
    c.train.eval_every = 200
    c.train.checkpoint_every = 200
    return c
