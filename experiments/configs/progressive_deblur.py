"""Progressive resolution on the built-in `photo_blur`: the deblurring quick config
(experiments/configs/deblur_quick.py, read from its file so that the two stay comparable) trained
low resolution first: for the first third of the steps every 128x128 training window is downscaled
to 64x64 (the whole field of view at half the resolution, so each blur is half as long in pixels),
then the full-resolution 128x128 window, with a 100-step fade-in from the half-resolution view
(variants.progressive_mode 'resolution'; jaxgan.train.progressive). Evaluation is unchanged (256x256
test crops).

A patch-size curriculum instead (Restormer's progressive learning: native-scale crops that grow
while the batch shrinks) is `progressive_mode='patch'` with `progressive_batch_sizes`, e.g.
--config.variants.progressive_mode=patch --config.variants.progressive_fade_steps=0
--config.variants.progressive_batch_sizes="(16,8)".

    jaxgan train --config experiments/configs/progressive_deblur.py --workdir runs/progressive_deblur
"""

from pathlib import Path

import ml_collections

from jaxgan.config_io import load_config_file


def get_config() -> ml_collections.ConfigDict:
    c = load_config_file(Path(__file__).with_name("deblur_quick.py"))
    final = int(c.data.crop_size)
    c.variants.progressive_mode = "resolution"
    c.variants.progressive_sizes = (final // 2, final)
    c.variants.progressive_steps = (int(c.train.steps) // 3,)
    c.variants.progressive_fade_steps = 100
    return c
