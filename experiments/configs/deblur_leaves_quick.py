"""Quick deblurring on the built-in `leaves_blur` (dead-leaves scenes and photo crops, camera blur), minutes on a CPU.

Two stages. A classical front end, computed once per example before training and cached on disk
(config.data.prior = 'blind_deconv', jaxgan/blind_deconvolution.py): blind kernel estimation with an L0 gradient
prior, coarse to fine (Pan et al. 2014 / Xu et al. 2013), then Tikhonov-gradient deconvolution of the
valid region by preconditioned conjugate gradients. Then a small NAFNet-style U-Net (space-to-depth 4,
width 32) that sees [blurred, deconvolved] (6 channels) and predicts a residual on the deconvolved
image, trained 500 steps with L1 x 100 + LSGAN x 0.2 from a conditional PatchGAN on 128x128 crops
(pix2pix's recipe, junyanz/pytorch-CycleGAN-and-pix2pix models/pix2pix_model.py, with --gan_mode lsgan),
Adam with warm-up and cosine decay. The training pool: 256 examples of 256x256 (half dead-leaves scenes,
half crops of 9 photos; camera shake, defocus, sensor noise, sometimes JPEG: jaxgan.data.blur's camera
model). The checkpoint kept is chosen on leaves_blur's val split (32 examples: other scenes, the
motorcycle photos); the test split (80 crops of chelsea, coffee, rocket, never trained on) is
evaluated once at the end, on the full 256x256 crops (the kernel estimator needs the larger view).
Measurements: README ("What you get: the experiments").

    jaxgan train --config experiments/configs/deblur_leaves_quick.py --workdir runs/deblur_leaves_quick
"""

from pathlib import Path

import ml_collections

from jaxgan.config_io import load_config_file


def get_config() -> ml_collections.ConfigDict:
    c = load_config_file(Path(__file__).with_name("deblur_quick.py"))  # the same recipe, on leaves_blur
    c.data.name = "leaves_blur"
    c.data.num_train_examples = 256
    c.data.synthetic_fraction = 0.5
    return c
