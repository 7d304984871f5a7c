"""Quick deblurring on the built-in `photo_blur` (realistic camera shake): about 10 minutes on 2 CPU cores.

Chosen for learning fast on a CPU rather than for fidelity to a paper.

Generator: `nafnet` (jaxgan.nets.nafnet), a small NAFNet-style U-Net: space-to-depth by 4 at the
input, so every conv runs at 1/4 resolution with >= 32 channels (cheap on XLA's CPU convs), 3 levels
(32/64/128 channels, 256 at the bottom), NAF blocks with simple gates and a channel attention that
pools over the whole image (the blur kernel is the same everywhere, so image-level statistics
modulate every pixel), LayerNorm, a global residual (output = clip(blurred + net), the identity at
init). 128x128 training crops (kernels up to 25 px need context; the eval crops are 128 too), batch 8.
Loss: 100 x L1 + 0.2 x LSGAN from a small conditional PatchGAN (the adversarial term is kept small
so the pixel loss dominates; PSNR is the target). Adam b1 0.9 (the loss is pixel-dominated), G lr 1e-3
with 100 warm-up steps and cosine decay to 0 at the last step; a higher peak (3e-3) diverged.

Measured (idle 2-core AMD EPYC, jax 0.10.2, 2026-11-25 17:10 UTC, fresh clone and venv): the README
main job (train 1200 steps at ~4-6 steps/s, the end-of-run evaluation with LPIPS, `jaxgan evaluate`,
`jaxgan predict`) 6 min 11 s; test crops (80, 128x128, photos never seen in training): PSNR 26.56 dB vs
26.40 for the blurred input (+0.17 dB), SSIM 0.7404 vs 0.7405, LPIPS 0.3328 vs 0.3132 (worse).
An earlier run (before issue 8's convolution rewrites changed float32 rounding; loaded machine, 8 min
48 s): 26.59 dB (+0.19), SSIM 0.7431, LPIPS 0.3109.
Earlier, the same config at 1100 steps: +0.20 dB (8 min 31 s, loaded machine).
THIS DOES NOT REACH THE +1 dB TARGET: in 10 CPU minutes the net only learns a mild adaptive
sharpening. Pilots (L1 only, equal wall time of 4-5 min, two at once on the shared machine; gain in
test PSNR): this net at 64x64 crops, space-to-depth 2, batch 16: +0.14; at 128 crops, s2d 4, batch 8:
+0.15..0.17; plus 24 / 48 Wiener-deconvolved line-kernel candidates (nafnet's wiener_angles option):
+0.16 / +0.17 (better per step, slower per step); peak lr 3e-3: diverged; 2e-3 (clipped): +0.13.
Earlier: pix2pix-style residual U-Net +0.0, ResNet generator +0.06, s2d U-Net +0.12 (500-750 steps).

    JAX_PLATFORMS=cpu jaxgan train --config experiments/configs/deblur_quick.py --workdir DIR
    jaxgan evaluate --workdir DIR
"""

import ml_collections

from jaxgan.config import base_config


def get_config() -> ml_collections.ConfigDict:
    c = base_config()
    c.task = "deblur"
    c.data.name = "photo_blur"
    c.data.blur_strength = "realistic"
    c.data.crop_size = 128
    c.data.eval_size = 128
    c.data.batch_size = 8
    c.data.eval_batch_size = 16
    c.generator.name = "nafnet"
    c.generator.options = ml_collections.ConfigDict(dict(
        in_channels=3, out_channels=3, base_width=32, depth=3, blocks=1, middle_blocks=2,
        space_to_depth=4, norm="layer"))
    c.discriminator.name = "patchgan"
    c.discriminator.conditional = True
    c.discriminator.options = ml_collections.ConfigDict(dict(
        in_channels=6, base_width=16, num_layers=2, norm="none"))
    c.loss.adversarial = "lsgan"
    c.loss.adversarial_weight = 0.2
    c.loss.pixel = "l1"
    c.loss.pixel_weight = 100.0
    c.optim.g_lr = 1e-3
    c.optim.d_lr = 2e-4
    c.optim.b1 = 0.9
    c.optim.schedule = "cosine"
    c.optim.warmup_steps = 100
    c.train.steps = 1200
    c.train.log_every = 50
    c.train.eval_every = 1200
    c.train.checkpoint_every = 1200
    c.train.best_metric = "psnr"
    return c
