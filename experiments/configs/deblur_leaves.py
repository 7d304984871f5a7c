"""The shipped deblurring model's recipe: deblur_pretrained's two stages trained on `leaves_blur`, whose
training images do not run out of variety (dead-leaves scenes mixed with crops of 9 photos, camera
shake / defocus / noise / JPEG from jaxgan.data.blur's camera model).

Front end (classical, jaxgan/blind_deconvolution.py, computed once per example and cached on disk, so
the training pool is the dataset's train split: config.data.num_train_examples images of 256x256 with
their front-end channels, from which every step cuts fresh random 128x128 crops, flips and rotations):
blind kernel estimation, then three non-blind deconvolutions with gradient-prior weights 1e-2 (the
baseline `prior_*`), 1e-3 and 1e-1. Learned stage: NAFNet-style U-Net (space-to-depth 4, width 32) on
[blurred, the three deconvolutions] (12 channels), residual on the 1e-2 one; L1 x 100 + LSGAN x 0.2 from a
conditional PatchGAN (pix2pix's recipe, junyanz/pytorch-CycleGAN-and-pix2pix models/pix2pix_model.py,
with LSGAN as its --gan_mode lsgan), Adam 5e-4 after 100 warm-up steps, EMA 0.995 of G's weights.
The best checkpoint is chosen on leaves_blur's val split (scenes of another stream and crops of the
motorcycle photos, never trained on); the test split (chelsea, coffee, rocket) is evaluated once.

    jaxgan train --config experiments/configs/deblur_leaves.py --workdir /work/runs/deblur_leaves
    # the ablation: the same run without the adversarial term
    jaxgan train --config experiments/configs/deblur_leaves.py --workdir /work/runs/deblur_leaves_noadv \\
        --config.loss.adversarial_weight=0
"""

from pathlib import Path

import ml_collections

from jaxgan.config_io import load_config_file


def get_config() -> ml_collections.ConfigDict:
    c = load_config_file(Path(__file__).with_name("deblur_pretrained.py"))  # the same recipe, on leaves_blur
    c.data.name = "leaves_blur"
    c.data.num_train_examples = 1536
    c.data.synthetic_fraction = 0.5
    c.data.num_eval_examples = 0  # every example of val and test
    c.train.steps = 30000  # stopped (SIGTERM checkpoints) and exported from the best checkpoint
    return c
