"""Progressive resolution on the built-in `photo_blur`: the deblurring quick config
(experiments/configs/deblur_quick.py, read from its file so that the two stay comparable) trained
on crops of half its crop size (64x64) for the first third of the steps, then its own 128x128, with a
100-step fade-in of the new resolution. Evaluation is unchanged (256x256 test crops).

    jaxgan train --config experiments/configs/progressive_deblur.py --workdir runs/progressive_deblur
"""

from pathlib import Path

import ml_collections

from jaxgan.config_io import load_config_file


def get_config() -> ml_collections.ConfigDict:
    c = load_config_file(Path(__file__).with_name("deblur_quick.py"))
    final = int(c.data.crop_size)
    c.variants.progressive_sizes = (final // 2, final)
    c.variants.progressive_steps = (int(c.train.steps) // 3,)
    c.variants.progressive_fade_steps = 100
    return c
