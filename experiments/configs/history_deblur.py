"""Image history buffer (pix2pix / CycleGAN image pool, Shrivastava et al. 2017) on `photo_blur`:
the deblurring quick config (read from experiments/configs/deblur_quick.py) with D updated on a mix
of the current fakes and up to 50 earlier ones (each stored with its own blurred condition).

    jaxgan train --config experiments/configs/history_deblur.py --workdir runs/history_deblur
"""

from pathlib import Path

import ml_collections

from jaxgan.config_io import load_config_file


def get_config() -> ml_collections.ConfigDict:
    c = load_config_file(Path(__file__).with_name("deblur_quick.py"))
    c.variants.history_size = 50
    return c
