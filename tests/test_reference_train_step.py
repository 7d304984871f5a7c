"""One full train step of pix2pix, DeblurGAN and DeblurGAN-v2 in jaxgan and in PyTorch (reference
modules) from the same weights, batch, dropout masks and WGAN-GP alphas: every loss term, G's output,
the updated parameters and the Adam moments of G and D agree (relative error <= 1e-4, float32);
BatchNorm running means too, and (pix2pix) running variances once PyTorch's unbiased
(Bessel-corrected) batch variance is accounted for (flax takes the biased one). What cannot be
compared one to one (zero-gradient leaves, DeblurGAN-v2's backbone) is checked as docs/fidelity.md says.

The PyTorch step is pix2pix's optimize_parameters (models/pix2pix_model.py): fake = G(A); D update on
D(cat(A, fake.detach())) then D(cat(A, B)); G update against the updated D, GAN + 100 x L1; Adam
(0.5, 0.999). D's loss is halved on both sides (the published loss.d_loss_weight = 0.5).
"""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from jaxgan.config import base_config  # noqa: E402
from jaxgan.train import state as state_lib  # noqa: E402
from jaxgan.train import steps  # noqa: E402
from jaxgan.weights.formats import deblurgan_table, pix2pix_table  # noqa: E402
from jaxgan.weights.mapping import Table, convert  # noqa: E402
from reference import pix2pix  # noqa: E402
from reference.common import dropouts  # noqa: E402
from reference_helpers import (adam_max_steps, flat_tree, injected_dropout, nchw, nhwc, numpy_state, param_errors,  # noqa: E402
                               randomize_norm_stats, rel_error, with_variables)

TOL = 1e-4
# G's gradients through the 52-layer MobileNetV2 backbone (batch-1 BatchNorm down to 3 x 3 maps) are
# ill-conditioned: at XLA's default optimisation level its moments agree to 3e-4 per leaf (params
# 1e-6), at the suite's --xla_backend_optimization_level=0 to 0.5 % of the tree's largest (docs/fidelity.md).
DEEP_TOL = 1e-2
FLOOR = 1e-3  # gradients below this fraction of the largest are at the rounding level for Adam (param_errors)
D_LOSS_SCALE = 0.5  # pix2pix_model.py backward_D: (fake + real) x 0.5; jaxgan's loss.d_loss_weight
LR = 2e-4


def patchgan_table(num_layers: int, norm: str = "batch", torch_prefix: str = "model", flax_prefix: str = "") -> Table:
    """NLayerDiscriminator (model.{i}) -> jaxgan PatchGAN (Conv_k, Norm_k); batch norm: no conv bias."""
    t, batch, f = Table(), norm == "batch", flax_prefix
    t.conv(f"{f}Conv_0", f"{torch_prefix}.0")
    for n in range(1, num_layers + 1):
        at = 2 + 3 * (n - 1)
        t.conv(f"{f}Conv_{n}", f"{torch_prefix}.{at}", bias=not batch)
        if batch:
            t.batch_norm(f"{f}Norm_{n - 1}/BatchNorm_0", f"{torch_prefix}.{at + 1}")
        else:
            t.instance_norm(f"{torch_prefix}.{at + 1}")
    t.conv(f"{f}Conv_{num_layers + 1}", f"{torch_prefix}.{2 + 3 * num_layers}")
    return t


def _config():
    c = base_config()
    c.task = "deblur"
    c.data.crop_size = 64
    c.generator.name = "unet"
    c.generator.options = ml_collections.ConfigDict(dict(in_channels=3, out_channels=3, base_width=4, depth=6,
                                                         norm="batch"))
    c.discriminator.options = ml_collections.ConfigDict(dict(base_width=4, num_layers=3, norm="batch"))
    c.loss.adversarial, c.loss.pixel, c.loss.pixel_weight = "vanilla", "l1", 100.0
    c.loss.d_loss_weight = D_LOSS_SCALE  # as experiments/configs/pix2pix_pets_seg.py
    c.optim.g_lr = c.optim.d_lr = LR
    c.train.ema_decay = 0.0
    return c


def _g_norm_pixels(path: str) -> int:
    """Side of the feature map at a U-Net norm of a 64 x 64 input: down_norm_L at 64 / 2**(L+1),
    up_norm_L (after level L's up conv) at 64 / 2**L."""
    level = int(path.split("/")[1].split("_")[-1])
    return 64 // 2 ** (level + 1) if "down_norm" in path else 64 // 2 ** level


def _d_norm_pixels(path: str) -> int:
    """PatchGAN(3 layers, padding 1) on 64 x 64: Norm_0 at 16, Norm_1 at 8, Norm_2 (stride 1) at 7."""
    return (16, 8, 7)[int(path.split("/")[1].split("_")[-1])]


@pytest.mark.slow
def test_pix2pix_train_step_matches_pytorch():
    torch.manual_seed(0)
    g_ref = pix2pix.init_weights(pix2pix.UnetGenerator(3, 3, num_downs=6, ngf=4))
    d_ref = pix2pix.init_weights(pix2pix.NLayerDiscriminator(6, 4, 3, "batch", padw=1))
    randomize_norm_stats(g_ref, 1)
    randomize_norm_stats(d_ref, 2)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (2, 64, 64, 3)).astype(np.float32)
    y = np.clip(x + 0.3 * rng.standard_normal(x.shape), -1, 1).astype(np.float32)

    # jaxgan: the state from the config, G's and D's variables replaced by the converted torch ones
    config = _config()
    g_mod, d_mod = state_lib.make_modules(config)
    state = jax.jit(lambda k: state_lib.create_state(config, g_mod, d_mod, {"input": x}, k))(jax.random.PRNGKey(0))
    g_table, d_table = pix2pix_table(dict(depth=6, norm="batch")), patchgan_table(3)
    g_vars = convert(numpy_state(g_ref), g_table, {"params": state.g.params, "batch_stats": state.g.batch_stats},
                     "pix2pix", "G")
    d_vars = convert(numpy_state(d_ref), d_table, {"params": state.d.params, "batch_stats": state.d.batch_stats},
                     "patchgan", "D")
    state = state.replace(g=state.g.replace(params=g_vars["params"], batch_stats=g_vars["batch_stats"]),
                          d=state.d.replace(params=d_vars["params"], batch_stats=d_vars["batch_stats"]))

    # the same dropout mask on both sides (level 4 of a depth-6 U-Net: the one use_dropout level)
    (name, drop), = dropouts(g_ref)
    mask = (rng.uniform(size=(2, 4 * 8, 4, 4)) < 0.5).astype(np.float32)  # (B, C, H, W) at level 4's output
    drop.mask = torch.from_numpy(mask)
    masks = {"dropout_4": jnp.asarray(mask.transpose(0, 2, 3, 1))}

    fns = steps.make_step_fns(config)

    def step(state, batch, masks):
        with injected_dropout(masks):
            return fns.train_step(state, batch, {})

    new_state, metrics = jax.jit(step)(state, {"input": jnp.asarray(x), "target": jnp.asarray(y)}, masks)

    g_stats_before, d_stats_before = numpy_state(g_ref), numpy_state(d_ref)

    # PyTorch: pix2pix's optimize_parameters
    opt_g = torch.optim.Adam(g_ref.parameters(), lr=LR, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d_ref.parameters(), lr=LR, betas=(0.5, 0.999))
    bce = torch.nn.BCEWithLogitsLoss()
    g_ref.train(), d_ref.train()
    a, b = nchw(x), nchw(y)
    fake = g_ref(a)
    pred_fake = d_ref(torch.cat([a, fake.detach()], 1))
    pred_real = d_ref(torch.cat([a, b], 1))
    d_fake, d_real = bce(pred_fake, torch.zeros_like(pred_fake)), bce(pred_real, torch.ones_like(pred_real))
    d_loss = D_LOSS_SCALE * (d_fake + d_real)
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()
    d_stats_after_d = numpy_state(d_ref)  # jaxgan keeps D's statistics of the D update only
    for p in d_ref.parameters():
        p.requires_grad_(False)
    pred = d_ref(torch.cat([a, fake], 1))
    g_adv = bce(pred, torch.ones_like(pred))
    g_l1 = torch.nn.functional.l1_loss(fake, b)
    g_loss = g_adv + 100.0 * g_l1
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()

    errors = {"d_loss": rel_error(metrics["d_loss"], d_loss.item()), "g_adv": rel_error(metrics["g_adv"], g_adv.item()),
              "g_pixel": rel_error(metrics["g_pixel"], g_l1.item()), "g_loss": rel_error(metrics["g_loss"], g_loss.item())}
    # entries whose gradient is at the rounding level (below FLOOR of the largest) take Adam steps of
    # about lr with the sign of the noise, which differs between CPUs: checked by Adam's bound instead
    small_steps = []
    for what, ref, table, new, old, opt in (("g", g_ref, g_table, new_state.g, state.g, opt_g),
                                            ("d", d_ref, d_table, new_state.d, state.d, opt_d)):
        errors.update(param_errors(what, ref, table, new, opt, floor=FLOOR, before=old, lr=LR))
        small_steps.append(errors.pop(f"{what}_small_step"))
    # BatchNorm statistics: means equal; PyTorch's running variance takes the unbiased batch variance,
    # flax's the biased one, so torch's increment = n / (n - 1) x jaxgan's (n = B*H*W at the norm).
    # D updates its statistics twice (fake pass, real pass): decay 0.9**2 of the old value.
    for what, table, new, before, after, decay, pixels in (
            ("g", g_table, new_state.g, g_stats_before, numpy_state(g_ref), 0.9, _g_norm_pixels),
            ("d", d_table, new_state.d, d_stats_before, d_stats_after_d, 0.81, _d_norm_pixels)):
        got = flat_tree(jax.device_get(new.batch_stats))
        mean_err, var_err = 0.0, 0.0
        for path, (key, _) in table.entries.items():
            if not path.startswith("batch_stats/"):
                continue
            value = got[path[len("batch_stats/"):]]
            if key.endswith("running_mean"):
                mean_err = max(mean_err, rel_error(value, after[key]))
            else:
                n = 2 * pixels(path) ** 2
                corrected = decay * before[key] + (value - decay * before[key]) * n / (n - 1)
                var_err = max(var_err, rel_error(corrected, after[key]))
        errors[f"{what}_running_mean"], errors[f"{what}_running_var_bessel"] = mean_err, var_err
    print(errors, small_steps)
    assert max(errors.values()) <= TOL and max(small_steps) <= 1.001, (errors, small_steps)


# ---- DeblurGAN: WGAN-GP, 5 critic updates, VGG19 perceptual x 100 ---------------------------------

def _deblurgan_config():
    """deblurgan_gopro.py at tiny widths: ResNet G (2 blocks, dropout, learn_residual), unconditional
    PatchGAN critic (padding 2), WGAN-GP x 10, 5 critic updates, 100 x VGG19 conv3_3 MSE on raw images."""
    c = base_config()
    c.task = "deblur"
    c.data.crop_size = 32
    c.generator.name = "resnet"
    c.generator.options = ml_collections.ConfigDict(dict(
        in_channels=3, out_channels=3, num_blocks=2, base_width=4, norm="instance", dropout=True,
        learn_residual=True, upsample="transpose"))
    c.discriminator.name = "patchgan"
    c.discriminator.conditional = False
    c.discriminator.options = ml_collections.ConfigDict(dict(in_channels=3, base_width=4, num_layers=3,
                                                             norm="instance", padding=2))
    c.loss.adversarial, c.loss.gradient_penalty, c.loss.gradient_penalty_weight = "wgan", "wgan_gp", 10.0
    c.loss.n_critic = 5
    c.loss.pixel = "none"
    c.loss.perceptual_weight, c.loss.perceptual_layers = 100.0, ("conv3_3",)
    c.loss.perceptual_net, c.loss.perceptual_input = "vgg19", "raw"
    c.optim.g_lr = c.optim.d_lr = 1e-4
    c.optim.b1, c.optim.b2 = 0.5, 0.999
    c.train.ema_decay = 0.0
    return c


def _dropout_shapes(module, variables, x) -> dict:
    """{flax path of every nn.Dropout: its input shape} of one train-mode forward."""
    import flax.linen as nn

    shapes = {}

    def record(next_fun, args, kwargs, context):
        if isinstance(context.module, nn.Dropout) and context.method_name == "__call__":
            shapes["/".join(context.module.scope.path)] = args[0].shape
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(record):
        jax.eval_shape(lambda v: module.apply(v, x, train=True, rngs={"dropout": jax.random.PRNGKey(0)}),
                       variables)
    return shapes


def _vgg19_pair(tmp_path):
    """(torch features[:15] of a random full-size VGG19, jaxgan's params loaded from its saved state dict)."""
    from jaxgan.nets import vgg19
    from reference.torchvision_layout import VGG, VGG19_CFG, vgg19_features_upto

    vgg = VGG(VGG19_CFG).eval()
    with torch.no_grad():  # VGG's He-scale weights: keep activations O(1) through the layers
        for m in vgg.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.mul_(1.5)
    for p in vgg.parameters():
        p.requires_grad_(False)
    torch.save(vgg.state_dict(), tmp_path / "vgg19.pth")
    return vgg19_features_upto(vgg, 14), vgg19.load_vgg19_params(tmp_path / "vgg19.pth")


def _train_forward(module, model, x, masks):
    """G's train-mode output with the injected dropout masks (the fake both steps start from)."""
    with injected_dropout(masks):
        return module.apply({"params": model.params}, jnp.asarray(x), train=True,
                            rngs={"dropout": jax.random.PRNGKey(0)})


@pytest.mark.slow
def test_deblurgan_train_step_matches_pytorch(tmp_path):
    from reference import deblurgan

    torch.manual_seed(0)
    g_ref = pix2pix.init_weights(deblurgan.ResnetGenerator(3, 3, ngf=4, norm="instance", use_dropout=True,
                                                            n_blocks=2, learn_residual=True))
    d_ref = deblurgan.NLayerDiscriminator(3, 4, 3, "instance", padw=2)  # PyTorch's default init: a livelier critic
    vgg_features, vgg_params = _vgg19_pair(tmp_path)
    rng = np.random.default_rng(0)
    n_critic, batch_size = 5, 2
    x = rng.uniform(-1, 1, (batch_size, 32, 32, 3)).astype(np.float32)
    y = np.clip(x + 0.3 * rng.standard_normal(x.shape), -1, 1).astype(np.float32)
    gp_alpha = rng.uniform(size=(n_critic, batch_size)).astype(np.float32)

    config = _deblurgan_config()
    g_mod, d_mod = state_lib.make_modules(config)
    state = jax.jit(lambda k: state_lib.create_state(config, g_mod, d_mod, {"input": x}, k))(jax.random.PRNGKey(0))
    g_table = deblurgan_table(dict(config.generator.options))
    d_table = patchgan_table(3, "instance")
    state = state.replace(g=with_variables(state.g, numpy_state(g_ref), g_table, "deblurgan"),
                          d=with_variables(state.d, numpy_state(d_ref), d_table, "patchgan"))
    shapes = _dropout_shapes(g_mod, {"params": state.g.params}, x)
    torch_drops = dropouts(g_ref)
    assert len(shapes) == len(torch_drops) == 2
    masks = {}
    for (path, shape), (_, drop) in zip(sorted(shapes.items()), torch_drops):
        mask = (rng.uniform(size=shape) < 0.5).astype(np.float32)  # (B, H, W, C)
        masks[path] = jnp.asarray(mask)
        drop.mask = torch.from_numpy(np.ascontiguousarray(mask.transpose(0, 3, 1, 2)))
    loss_nets = {"vgg": vgg_params}
    fns = steps.make_step_fns(config)

    def step(state, batch, loss_nets, masks):
        with injected_dropout(masks):
            return fns.train_step(state, batch, loss_nets)

    batch = {"input": jnp.asarray(x), "target": jnp.asarray(y), "gp_alpha": jnp.asarray(gp_alpha)}
    new_state, metrics = jax.jit(step)(state, batch, loss_nets, masks)

    # PyTorch: DeblurGAN's optimize_parameters (conditional_gan_model.py): one forward, 5 critic
    # updates on the detached fake (DiscLossWGANGP with Gulrajani's per-sample penalty), then G
    opt_g = torch.optim.Adam(g_ref.parameters(), lr=1e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d_ref.parameters(), lr=1e-4, betas=(0.5, 0.999))
    g_ref.train(), d_ref.train()
    a, b = nchw(x), nchw(y)
    fake = g_ref(a)
    for k in range(n_critic):
        opt_d.zero_grad()
        d_adv = d_ref(fake.detach()).mean() - d_ref(b).mean()
        alpha = torch.from_numpy(gp_alpha[k]).view(-1, 1, 1, 1)
        mixed = (alpha * b + (1 - alpha) * fake.detach()).requires_grad_(True)
        grads, = torch.autograd.grad(d_ref(mixed).sum(), mixed, create_graph=True)
        d_penalty = ((grads.flatten(1).norm(2, dim=1) - 1) ** 2).mean()
        d_loss = d_adv + 10.0 * d_penalty
        d_loss.backward()
        opt_d.step()
    for p in d_ref.parameters():
        p.requires_grad_(False)
    g_adv = -d_ref(fake).mean()
    g_perceptual = torch.nn.functional.mse_loss(vgg_features(fake), vgg_features(b).detach())
    g_loss = g_adv + 100.0 * g_perceptual
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()

    # Null leaves (see param_errors): every conv bias before an instance norm, and the critic's last
    # bias, whose WGAN gradient is mean(1) - mean(1) = 0. That bias shifts G's adversarial term by a
    # constant (no gradient): compare -mean(D(fake)) without it.
    g_null = tuple(k for k in flat_tree(jax.device_get(new_state.g.params)) if k.endswith("bias") and k != "head/bias")
    d_null = ("Conv_1/bias", "Conv_2/bias", "Conv_3/bias", "Conv_4/bias")
    last_bias = (float(new_state.d.params["Conv_4"]["bias"][0]), float(d_ref.model[-1].bias[0]))
    errors = {"d_adv": rel_error(metrics["d_adv"], d_adv.item()), "d_penalty": rel_error(metrics["d_penalty"], d_penalty.item()),
              "d_loss": rel_error(metrics["d_loss"], d_loss.item()),
              "g_adv": rel_error(metrics["g_adv"] + last_bias[0], g_adv.item() + last_bias[1]),
              "g_perceptual": rel_error(metrics["g_perceptual"], g_perceptual.item()),
              "g_loss": rel_error(metrics["g_loss"] + last_bias[0], g_loss.item() + last_bias[1]),
              "g_output": rel_error(np.asarray(jax.jit(lambda s, m: _train_forward(g_mod, s.g, x, m))(state, masks)),
                               nhwc(fake))}
    errors.update(param_errors("g", g_ref, g_table, new_state.g, opt_g, g_null))
    errors.update(param_errors("d", d_ref, d_table, new_state.d, opt_d, d_null))
    print(errors)
    assert max(errors.values()) <= TOL, errors
    for new, before, null, updates in ((new_state.g, state.g, g_null, 1), (new_state.d, state.d, d_null, n_critic)):
        moved = flat_tree(jax.tree.map(lambda a, b: np.abs(np.asarray(a) - np.asarray(b)), new.params, before.params))
        assert max(moved[k].max() for k in null) <= 1e-4 * adam_max_steps(updates, b1=0.5) * 1.001


# ---- DeblurGAN-v2: FPN-MobileNet G, double-scale D, RaGAN-LS, content loss ------------------------

def _deblurganv2_config():
    """deblurganv2_mobilenet_gopro.py at a tiny FPN width (the backbone is MobileNetV2 x 1.0) and
    width-4 D's: RaGAN-LS x 0.001 (G and D), 0.5 x MSE + 0.006 x VGG19 conv3_3, ImageNet-normalised."""
    c = base_config()
    c.task = "deblur"
    c.data.crop_size = 96
    c.generator.name = "fpn_mobilenet"
    c.generator.options = ml_collections.ConfigDict(dict(
        in_channels=3, out_channels=3, base_width=8, backbone_width=1.0, norm="instance", backbone_norm="batch",
        learn_residual=True, upsample="resize"))
    c.discriminator.name = "double_scale"
    c.discriminator.conditional = False
    c.discriminator.options = ml_collections.ConfigDict(dict(in_channels=3, base_width=4, norm="instance",
                                                             padding=2))
    c.loss.adversarial, c.loss.adversarial_weight, c.loss.d_loss_weight = "ragan_ls", 0.001, 0.001
    c.loss.pixel, c.loss.pixel_weight, c.loss.pixel_input = "l2", 0.5, "imagenet"
    c.loss.perceptual_weight, c.loss.perceptual_layers = 0.006, ("conv3_3",)
    c.loss.perceptual_net, c.loss.perceptual_input = "vgg19", "imagenet"
    c.optim.g_lr = c.optim.d_lr = 1e-4
    c.optim.b1, c.optim.b2 = 0.9, 0.999
    c.train.ema_decay = 0.0
    return c


def _imagenet(t):
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return ((t + 1) / 2 - mean) / std


def _ragan_ls(r, f, sign):
    """RaGAN-LS (DeblurGAN-v2 models/losses.py RelativisticDiscLossLS, the batch's means): D sign +1, G -1."""
    return (torch.mean((r - f.mean() - sign) ** 2) + torch.mean((f - r.mean() + sign) ** 2)) / 2


@pytest.mark.slow
def test_deblurganv2_train_step_matches_pytorch(tmp_path):
    from jaxgan.weights.formats import fpn_mobilenet_table
    from reference import deblurganv2

    torch.manual_seed(0)
    g_ref = deblurganv2.FPNMobileNet(3, num_filters=8, num_filters_fpn=16)
    randomize_norm_stats(g_ref, 1)
    d_ref = deblurganv2.DoubleScaleD(3, ndf=4, padw=2)
    vgg_features, vgg_params = _vgg19_pair(tmp_path)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (1, 96, 96, 3)).astype(np.float32)  # batch 1, as released
    y = np.clip(x + 0.3 * rng.standard_normal(x.shape), -1, 1).astype(np.float32)

    config = _deblurganv2_config()
    g_mod, d_mod = state_lib.make_modules(config)
    state = jax.jit(lambda k: state_lib.create_state(config, g_mod, d_mod, {"input": x}, k))(jax.random.PRNGKey(0))
    g_table = fpn_mobilenet_table(dict(config.generator.options))
    d_table = patchgan_table(3, "instance", "patch.model", "patch/")
    full = patchgan_table(5, "instance", "full.model", "full/")
    d_table.entries.update(full.entries)
    d_table.unused.update(full.unused)
    g_stats_before = numpy_state(g_ref)
    state = state.replace(g=with_variables(state.g, g_stats_before, g_table, "deblurganv2_fpn_mobilenet"),
                          d=with_variables(state.d, numpy_state(d_ref), d_table, "double_scale"))
    fns = steps.make_step_fns(config)
    batch = {"input": jnp.asarray(x), "target": jnp.asarray(y)}
    new_state, metrics = jax.jit(fns.train_step)(state, batch, {"vgg": vgg_params})
    output = jax.jit(lambda s: g_mod.apply({"params": s.g.params, "batch_stats": s.g.batch_stats}, jnp.asarray(x),
                                           train=True, mutable=["batch_stats"])[0])(state)

    # PyTorch: train.py _run_epoch: outputs = G(inputs); _update_d (DoubleGAN: the two D's losses
    # averaged, x adv_lambda); then G: content (PerceptualLoss.get_loss) + adv_lambda x adversarial
    opt_g = torch.optim.Adam(g_ref.parameters(), lr=1e-4)
    opt_d = torch.optim.Adam(d_ref.parameters(), lr=1e-4)
    g_ref.train(), d_ref.train()
    a, b = nchw(x), nchw(y)
    fake = g_ref(a)
    d_real, d_fake = d_ref(b), d_ref(fake.detach())
    d_adv = sum(_ragan_ls(r, f, 1.0) for r, f in zip(d_real, d_fake)) / 2
    opt_d.zero_grad()
    (0.001 * d_adv).backward()
    opt_d.step()
    for p in d_ref.parameters():
        p.requires_grad_(False)
    g_real, g_fake = d_ref(b), d_ref(fake)
    g_adv = sum(_ragan_ls(r, f, -1.0) for r, f in zip(g_real, g_fake)) / 2
    g_pixel = torch.nn.functional.mse_loss(_imagenet(fake), _imagenet(b))
    g_perceptual = torch.nn.functional.mse_loss(vgg_features(_imagenet(fake)), vgg_features(_imagenet(b)))
    g_loss = 0.5 * g_pixel + 0.006 * g_perceptual + 0.001 * g_adv
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()

    # Null leaves (see param_errors): conv biases before an instance norm, and each critic's last
    # bias (it cancels in r - mean(f)).
    g_null = ("smooth/bias", "smooth2/bias", "top_down_1/bias", "top_down_2/bias", "top_down_3/bias")
    d_null = tuple(f"{d}/Conv_{k}/bias" for d, n in (("patch", 3), ("full", 5)) for k in range(1, n + 2))
    errors = {"d_adv": rel_error(metrics["d_adv"], d_adv.item()), "d_loss": rel_error(metrics["d_loss"], 0.001 * d_adv.item()),
              "g_adv": rel_error(metrics["g_adv"], g_adv.item()), "g_pixel": rel_error(metrics["g_pixel"], g_pixel.item()),
              "g_perceptual": rel_error(metrics["g_perceptual"], g_perceptual.item()),
              "g_loss": rel_error(metrics["g_loss"], g_loss.item()), "g_output": rel_error(output, nhwc(fake))}
    errors.update(param_errors("g", g_ref, g_table, new_state.g, opt_g, g_null, floor=FLOOR, before=state.g, lr=1e-4))
    errors.update(param_errors("d", d_ref, d_table, new_state.d, opt_d, d_null))
    small_step = errors.pop("g_small_step")
    # the backbone's BatchNorm running means (running variances: flax's biased batch variance vs
    # PyTorch's unbiased one; the Bessel-corrected comparison is in the pix2pix test)
    got, after = flat_tree(jax.device_get(new_state.g.batch_stats)), numpy_state(g_ref)
    errors["g_running_mean"] = max(rel_error(got[path[len("batch_stats/"):]], after[key])
                                   for path, (key, _) in g_table.entries.items()
                                   if path.startswith("batch_stats/") and key.endswith("running_mean"))
    print(errors, small_step)
    per_leaf = {k: errors.pop(k) for k in ("g_mu", "g_nu")}  # reported only (see DEEP_TOL)
    deep = {k: errors.pop(k) for k in ("g_mu_tree", "g_nu_tree", "g_params")}
    print("G backbone figures", deep, per_leaf)
    assert max(errors.values()) <= TOL and max(deep.values()) <= DEEP_TOL and small_step <= 1.001, (
        errors, deep, small_step)
    for new, before, null in ((new_state.g, state.g, g_null), (new_state.d, state.d, d_null)):
        moved = flat_tree(jax.tree.map(lambda a, b: np.abs(np.asarray(a) - np.asarray(b)), new.params, before.params))
        assert max(moved[k].max() for k in null) <= 1e-4 * 1.001
