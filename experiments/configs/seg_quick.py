"""Quick segmentation on the built-in `photo_seg` (objects cut from real photos by varied silhouettes,
pasted on other real photos, with occlusion, scale and colour jitter; jaxgan/data/photo_seg.py), on 2
CPU cores.

pix2pix recipe at CPU scale: U-Net (5 levels, width 32, batch norm, resize-conv upsampling) giving
one logit per pixel (object vs background), conditional PatchGAN on concat(image, mask), vanilla
GAN + 100 x (sigmoid cross-entropy + soft Dice), G Adam 1e-3 (100 warm-up steps, cosine decay),
D 2e-4, betas (0.5, 0.999), 128x128 crops, batch 8, 1000 steps; evaluation on the full 160x160 scenes.

    jaxgan train --config experiments/configs/seg_quick.py --workdir runs/seg_quick
    python experiments/seg_transfer.py runs/seg_quick     # in-distribution and held-out IoU

Measured 2026-12-02 (`experiments/seg_transfer.py`, mean IoU over background and object, object IoU
in brackets; Otsu thresholding, `python -m jaxgan.data.photo_seg`, gives object IoU 0.338 on
photo_seg test and 0.417 on heldout):

| trained on | shapes_seg test | photo_seg test (in-distribution) | photo_seg heldout (unseen photos and shapes) |
|---|---|---|---|
| shapes_seg (this config until 2026-12-02) | 0.862 (0.776) | 0.631 (0.436) | 0.646 (0.480) |
| photo_seg (this config) | 0.770 (0.627) | 0.700 (0.532) | 0.681 (0.519) |

Time: the same 1000 steps of the same networks as the shapes_seg config, which took 8 min 37 s for
`jaxgan train` on the idle machine; both runs above took 24 min wall on a machine shared with two
other jobs (about 9.5 min of CPU time each).
"""

import ml_collections

from jaxgan.config import base_config


def get_config() -> ml_collections.ConfigDict:
    c = base_config()
    c.task = "segment"
    c.data.name = "photo_seg"
    c.data.num_classes = 2
    c.data.crop_size = 128
    c.data.eval_size = 0
    c.data.batch_size = 8
    c.data.eval_batch_size = 16
    c.generator.name = "unet"
    c.generator.options = ml_collections.ConfigDict(dict(
        in_channels=3, out_channels=1, depth=5, base_width=32, norm="batch", dropout=False,
        upsample="resize", out_activation="none"))
    c.discriminator.name = "patchgan"
    c.discriminator.conditional = True
    c.discriminator.options = ml_collections.ConfigDict(dict(
        in_channels=4, base_width=32, num_layers=3, norm="batch"))
    c.loss.adversarial = "vanilla"
    c.loss.adversarial_weight = 1.0
    c.loss.mask = "ce_dice"
    c.loss.mask_weight = 100.0
    c.loss.pixel = "none"
    c.optim.g_lr = 1e-3
    c.optim.d_lr = 2e-4
    c.optim.schedule = "cosine"
    c.optim.warmup_steps = 100
    c.train.steps = 1000
    c.train.log_every = 100
    c.train.eval_every = 1000
    c.train.checkpoint_every = 500
    c.train.best_metric = "mean_iou"
    return c
