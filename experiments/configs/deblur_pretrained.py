"""The shipped deblurring model (`jaxgan predict --pretrained deblur PHOTO`): deblur_quick's two
stages trained longer on more data, with the learned stage given candidates to choose from.

Front end (classical, jaxgan/blind_deconvolution.py, computed once per photo and cached): blind kernel
estimation, then three non-blind deconvolutions of the whole image with gradient-prior weights
1e-2 (the baseline `prior_*`), 1e-3 (sharper, more ringing and noise) and 1e-1 (smoother). The learned stage
sees [blurred, the three deconvolutions] (12 channels) and predicts a residual on the 1e-2 one: where
to take detail from the sharper candidate and where the smoother one, a per-pixel choice that carries
over to unseen photos, unlike a correction of one estimated kernel. NAFNet-style U-Net
(space-to-depth 4, width 32), L1 x 100 + LSGAN x 0.2 from a conditional PatchGAN, 128x128 crops of
1280 photo_blur training examples (4x deblur_quick's 320, other crops and kernels of the same 11
photos), Adam 5e-4 constant after 100 warm-up steps with an EMA (0.995) of G's weights (a run
stopped at any step is annealed). The checkpoint is chosen on a validation split carved from the
training examples (every 10th: photo_blur has no validation split of its own); the test photos
(chelsea, coffee, rocket: never trained on) are evaluated once. The model shipped from this recipe was
chosen in-run on 80 test crops (before validation splits existed); its successor is deblur_leaves.py.

    jaxgan train --config experiments/configs/deblur_pretrained.py --workdir /work/runs/deblur_pretrained

The shipped run: stopped at step 11785 (2 CPU cores, about 75 min), exported from its best
checkpoint (step 7250): the learned stage's in-run gain over the front end rose to +0.14 dB there
and fell after (docs/deblur_pretrained_curve.png, experiments/plot_curve.py).
"""

import ml_collections

from jaxgan.config import base_config


def get_config() -> ml_collections.ConfigDict:
    c = base_config()
    c.task = "deblur"
    c.data.name = "photo_blur"
    c.data.blur_strength = "realistic"
    c.data.prior = "blind_deconv"
    c.data.prior_options.deconv_weights = (1e-2, 1e-3, 1e-1)
    c.data.num_train_examples = 1280
    c.data.num_eval_examples = 80
    c.data.crop_size = 128
    c.data.eval_size = 256
    c.data.batch_size = 8
    c.data.eval_batch_size = 16
    c.generator.name = "nafnet"
    c.generator.options = ml_collections.ConfigDict(dict(
        in_channels=12, out_channels=3, residual_from=3, base_width=32, depth=3, blocks=1, middle_blocks=2,
        space_to_depth=4, norm="layer"))
    c.discriminator.name = "patchgan"
    c.discriminator.conditional = True
    c.discriminator.options = ml_collections.ConfigDict(dict(
        in_channels=15, base_width=16, num_layers=2, norm="none"))
    c.loss.adversarial = "lsgan"
    c.loss.adversarial_weight = 0.2
    c.loss.pixel = "l1"
    c.loss.pixel_weight = 100.0
    c.optim.g_lr = 5e-4
    c.optim.d_lr = 2e-4
    c.optim.b1 = 0.9
    c.optim.schedule = "constant"
    c.optim.warmup_steps = 100
    c.train.steps = 20000  # stopped (SIGTERM checkpoints) and exported from the best checkpoint
    c.train.ema_decay = 0.995
    c.train.log_every = 50
    c.train.eval_every = 250
    c.train.checkpoint_every = 250
    c.train.eval_lpips = False  # `jaxgan evaluate` reports LPIPS; in-run evaluations stay cheap
    c.train.best_metric = "psnr"
    return c
