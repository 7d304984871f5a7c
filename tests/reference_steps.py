"""Full train steps of the published setups in jaxgan and in PyTorch (reference/losses.py: the originals'
step code, line by line), from the same weights, batches, dropout masks and penalty alphas; each
setup returns its errors grouped as the parity table reports them.

    python tests/reference_steps.py            # the parity table, every setup (XLA's default level)
    python tests/reference_steps.py deblurganv2 --raw     # every entry of one setup
    python tests/reference_steps.py deblurganv2_frozen deblurganv2 --float64   # jaxgan's step in float64

Groups: losses (every loss term of every step), g_output, g_params, g_moments (Adam mu and nu), d_params,
d_moments, and per setup a few extras (BatchNorm statistics, null leaves). Every entry is a max
relative error; moments are compared leaf by leaf, each leaf relative to its own largest entry
(floored as `param_errors` says).
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

if __name__ == "__main__":  # run as a script: the repository root and tests/ importable
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:0] = [os.path.dirname(here), here]
    os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import ml_collections  # noqa: E402
import torch  # noqa: E402

from jaxgan.config import base_config  # noqa: E402
from jaxgan.train import state as state_lib  # noqa: E402
from jaxgan.train import steps  # noqa: E402
from reference_helpers import (flat_tree, injected_dropout, nchw, nhwc, numpy_state, param_errors,  # noqa: E402
                               randomize_norm_stats, rel_error, with_variables)

GROUPS = ("losses", "g_output", "g_params", "g_moments", "d_params", "d_moments")
FLOOR = 1e-3  # Adam entries whose gradient is below this fraction of the tree's largest: see param_errors


def patchgan_table(num_layers: int, norm: str = "batch", torch_prefix: str = "model", flax_prefix: str = ""):
    """NLayerDiscriminator (model.{i}) -> jaxgan PatchGAN (Conv_k, Norm_k); batch norm: no conv bias."""
    from jaxgan.weights.mapping import Table

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


def grouped(errors: dict) -> dict:
    """{group: max error} of a flat {name: error} dict (names prefixed by their group's key)."""
    def group(name):
        if "null" in name or "running" in name:
            return "extra/" + name
        if name == "g_output":
            return "g_output"
        for g in ("g_mu", "g_nu"):
            if name.startswith(g):
                return "g_moments"
        for g in ("d_mu", "d_nu"):
            if name.startswith(g):
                return "d_moments"
        if name.startswith("g_params"):
            return "g_params"
        if name.startswith("d_params"):
            return "d_params"
        if name.startswith("loss/"):
            return "losses"
        return "extra/" + name

    out = {}
    for name, value in errors.items():
        g = group(name)
        out[g] = max(out.get(g, 0.0), float(value))
    return out


def _leaf_report(what, ref, table, new, opt, null):
    """Prints every leaf's max relative error of mu and nu (PARITY_LEAVES=1), worst first."""
    from reference_helpers import adam_moments, flax_of

    names = dict(ref.named_parameters())
    mu, nu = adam_moments(new.opt_state)
    rows = []
    for label, tree, key in (("mu", mu, "exp_avg"), ("nu", nu, "exp_avg_sq")):
        want = flax_of(table, {k: opt.state[v][key].numpy() for k, v in names.items() if v in opt.state}, None)
        got = flat_tree(jax.device_get(tree))
        top = max(np.abs(want[k]).max() for k in got if k not in null)
        for k in got:
            if k not in null:
                rows.append((float(np.abs(got[k] - want[k]).max() / max(np.abs(want[k]).max(), 1e-30)),
                             f"{what}_{label}/{k}", float(np.abs(want[k]).max() / top)))
    for row in sorted(rows, reverse=True)[:12]:
        print("%.2e %s (leaf max / tree max %.1e)" % row)


def _moment_errors(what, ref, table, new, opt, null=(), floor=0.0, before=None, lr=0.0):
    """param_errors without the tree-relative entries (every leaf is held to its own scale)."""
    if os.environ.get("PARITY_LEAVES"):
        _leaf_report(what, ref, table, new, opt, null)
    e = param_errors(what, ref, table, new, opt, null, floor=floor, before=before, lr=lr)
    e.pop(f"{what}_small_step", None)
    return {k: v for k, v in e.items() if not k.endswith("_tree")}


def _jax_state(config, x, g_ref, g_table, g_what, d_ref, d_table, d_what):
    g_mod, d_mod = state_lib.make_modules(config)
    state = jax.jit(lambda k: state_lib.create_state(config, g_mod, d_mod, {"input": x}, k))(jax.random.PRNGKey(0))
    state = state.replace(g=with_variables(state.g, numpy_state(g_ref), g_table, g_what),
                          d=with_variables(state.d, numpy_state(d_ref), d_table, d_what))
    return g_mod, state


def _vgg19_pair(tmp_dir):
    """(torch features[:15] of a random full-size VGG19, jaxgan's params loaded from its saved state dict)."""
    from jaxgan.nets import vgg19
    from reference.torchvision_layout import VGG, VGG19_CFG, vgg19_features_upto

    torch.manual_seed(1)
    vgg = VGG(VGG19_CFG).eval()
    with torch.no_grad():  # VGG's He-scale weights: keep activations O(1) through the layers
        for m in vgg.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.mul_(1.5)
    for p in vgg.parameters():
        p.requires_grad_(False)
    path = os.path.join(tmp_dir, "vgg19.pth")
    torch.save(vgg.state_dict(), path)
    return vgg19_features_upto(vgg, 14), vgg19.load_vgg19_params(path)


# ---- jaxgan's traced program evaluated in float64 ----------------------------------------------------

def _to_float64(x):
    return x.astype(np.float64) if getattr(x, "dtype", None) == np.float32 else x


def _float64_param(value):
    if isinstance(value, np.dtype) and value == np.float32:
        return np.dtype(np.float64)
    if isinstance(value, jax.extend.core.ClosedJaxpr):
        avals = [jax.ShapeDtypeStruct(v.aval.shape, np.float64 if v.aval.dtype == np.float32 else v.aval.dtype)
                 for v in value.jaxpr.invars]
        return jax.make_jaxpr(lambda *a: _eval_float64(value.jaxpr, value.consts, *a))(*avals)
    if type(value) is tuple:  # e.g. cond's branches (not a namedtuple such as conv dimension numbers)
        return tuple(_float64_param(v) for v in value)
    return value


# calls whose inner program is evaluated inline (their other parameters, e.g. a custom rule, are not
# needed: the program was traced after differentiation, so every derivative is in it as primitives)
_INLINE = {"pjit": "jaxpr", "jit": "jaxpr", "closed_call": "call_jaxpr", "custom_jvp_call": "call_jaxpr",
           "custom_vjp_call": "call_jaxpr", "custom_vjp_call_jaxpr": "fun_jaxpr", "remat": "jaxpr",
           "checkpoint": "jaxpr"}


def _eval_float64(jaxpr, consts, *args):
    env = {}
    for var, value in zip(jaxpr.constvars, consts):
        env[var] = _to_float64(value)
    for var, value in zip(jaxpr.invars, args):
        env[var] = _to_float64(value)
    read = lambda v: _to_float64(v.val) if isinstance(v, jax.extend.core.Literal) else env[v]  # noqa: E731
    for eqn in jaxpr.eqns:
        values = [read(v) for v in eqn.invars]
        name = eqn.primitive.name
        if name in _INLINE:
            inner = eqn.params[_INLINE[name]]
            if isinstance(inner, jax.extend.core.ClosedJaxpr):
                outs = _eval_float64(inner.jaxpr, inner.consts, *values)
            else:
                outs = _eval_float64(inner, (), *values)
        else:
            outs = eqn.primitive.bind(*values, **{k: _float64_param(v) for k, v in eqn.params.items()})
            outs = outs if eqn.primitive.multiple_results else [outs]
        for var, value in zip(eqn.outvars, outs):
            env[var] = value
    return [read(v) for v in jaxpr.outvars]


def in_float64(fn):
    """fn's program as jaxgan traces it (float32 inputs, every trace-time choice as in training),
    evaluated with every float32 value and operation in float64: the same algorithm without float32
    rounding (other dtypes, e.g. a bfloat16 cast, stay). Needs jax_enable_x64."""
    def run(*args):
        closed, shapes = jax.make_jaxpr(fn, return_shape=True)(*args)
        outs = _eval_float64(closed.jaxpr, closed.consts, *jax.tree.leaves(args))
        return jax.tree.unflatten(jax.tree.structure(shapes), outs)
    return run


# ---- DeblurGAN-v2: FPN-MobileNet G, double-scale D, RaGAN-LS on a pool of D outputs ---------------

def deblurganv2_config(pool_size: int = 50, centres: str = "pool"):
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
    c.loss.relativistic_centres, c.loss.relativistic_pool_size = centres, pool_size
    c.loss.pixel, c.loss.pixel_weight, c.loss.pixel_input = "l2", 0.5, "imagenet"
    c.loss.perceptual_weight, c.loss.perceptual_layers = 0.006, ("conv3_3",)
    c.loss.perceptual_net, c.loss.perceptual_input = "vgg19", "imagenet"
    c.optim.g_lr = c.optim.d_lr = 1e-4
    c.optim.b1, c.optim.b2 = 0.9, 0.999
    c.train.ema_decay = 0.0
    return c


class _Expected:
    """A torch module / optimizer look-alike holding expected parameters and Adam moments (for
    param_errors): named_parameters() and state[param]['exp_avg' | 'exp_avg_sq']."""

    def __init__(self, params: dict, moments: dict):
        self.params = {k: torch.as_tensor(v) for k, v in params.items()}
        self.state = {self.params[k]: {"exp_avg": torch.as_tensor(m), "exp_avg_sq": torch.as_tensor(v)}
                      for k, (m, v) in moments.items()}

    def named_parameters(self):
        return self.params.items()


def _expected_g(net_g, opt) -> _Expected:
    """G's expected params and Adam moments after one step of the original (`opt`: its optimizer_G).
    Leaves that optimizer never saw (the frozen backbone) are expected unchanged with zero moments
    (jaxgan's frozen Adam state is held at its start). MobileNetV2's unused tail is not in jaxgan's G."""
    params, moments = {}, {}
    for name, p in net_g.named_parameters():
        if "fpn.features." in name and int(name.split(".")[2]) >= 16:
            continue
        value = p.detach().numpy()
        if not opt.state.get(p):
            params[name], moments[name] = value, (np.zeros_like(value), np.zeros_like(value))
        else:
            params[name], moments[name] = value, (opt.state[p]["exp_avg"].numpy(), opt.state[p]["exp_avg_sq"].numpy())
    return _Expected(params, moments)


def deblurganv2(tmp_dir, frozen: bool = False, pool_size: int = 50, loss: str = "ragan_ls",
                float64: bool = False) -> dict:
    """One train step of the published setup (batch 1, as released), from the same weights. frozen:
    the first epoch's step (train.py:164: G's Adam over the trainable params, the backbone frozen by
    fpn_mobilenet.py:112-113; jaxgan: variants.freeze_prefixes with unfreeze_step 1). Else the
    unfreezing epoch's step (train.py:35-38: netG.unfreeze() and a new Adam for all of G), from fresh
    optimizer states on both sides (jaxgan: nothing frozen); the carry of the head's Adam across the
    unfreezing, where jaxgan differs, is in docs/fidelity.md. float64: jaxgan's step and forward (the
    programs jaxgan traces, unchanged) evaluated in float64 (`in_float64`), as the reference runs."""
    from jaxgan.weights.formats import fpn_mobilenet_table
    from reference import deblurganv2 as ref
    from reference import losses as ref_losses

    torch.manual_seed(0)
    g_ref = ref.FPNMobileNet(3, num_filters=8, num_filters_fpn=16)
    randomize_norm_stats(g_ref, 1)
    d_ref = ref.DoubleScaleD(3, ndf=4, padw=2)
    vgg_features, vgg_params = _vgg19_pair(tmp_dir)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (1, 96, 96, 3)).astype(np.float32)
    y = np.clip(x + 0.3 * rng.standard_normal(x.shape), -1, 1).astype(np.float32)

    config = deblurganv2_config(pool_size)
    config.loss.adversarial = loss
    if frozen:
        config.variants.transfer_model = "generator"
        config.variants.freeze_prefixes, config.variants.unfreeze_step = ("backbone/",), 1
    g_table = fpn_mobilenet_table(dict(config.generator.options))
    d_table = patchgan_table(3, "instance", "patch.model", "patch/")
    full = patchgan_table(5, "instance", "full.model", "full/")
    d_table.entries.update(full.entries)
    d_table.unused.update(full.unused)
    g_mod, before = _jax_state(config, x, g_ref, g_table, "deblurganv2_fpn_mobilenet", d_ref, d_table,
                               "double_scale")
    precise = in_float64 if float64 else (lambda f: f)
    forward = jax.jit(precise(lambda s, x: g_mod.apply({"params": s.g.params, "batch_stats": s.g.batch_stats}, x,
                                                       train=True, mutable=["batch_stats"])[0]))
    output = forward(before, jnp.asarray(x))
    state, m = jax.jit(precise(steps.make_step_fns(config).train_step))(
        before, {"input": jnp.asarray(x), "target": jnp.asarray(y)}, {"vgg": vgg_params})

    # PyTorch: train.py with DoubleGAN over the criterion of models/losses.py get_loss('ragan-ls' / 'ragan'),
    # in float64 (same weights, cast after jaxgan took them): at float32 its own rounding through the
    # 52-layer backbone with batch-1 BatchNorm is as large as jaxgan's (moments 4.7e-4 apart)
    g_ref.double(), d_ref.double(), vgg_features.double()
    criterion = (ref_losses.RelativisticDiscLossLS if loss == "ragan_ls" else ref_losses.RelativisticDiscLoss)(
        pool_size)
    adv_trainer = ref_losses.DoubleGAN(d_ref.patch, d_ref.full, criterion)
    g_ref.train(), d_ref.train()
    trainer = ref_losses.DeblurGANv2Trainer(g_ref, adv_trainer, ref_losses.PerceptualLossV2(vgg_features),
                                            warmup_num=1)
    out = trainer.epoch(0 if frozen else 1, nchw(x).double(), nchw(y).double())

    content = 0.5 * m["g_pixel"] + 0.006 * m["g_perceptual"]
    errors = {f"loss/{name}": rel_error(got, want) for name, got, want in (
        ("d_loss", m["d_loss"], out["d_loss"]), ("g_adv", m["g_adv"], out["g_adv"]),
        ("g_content", content, out["g_content"]), ("g_loss", m["g_loss"], out["g_loss"]))}
    errors["g_output"] = rel_error(output, nhwc(out["output"]))
    if frozen:  # the backbone's params bitwise unchanged
        old, new = (flat_tree(jax.device_get(s.g.params["backbone"])) for s in (before, state))
        errors["frozen_backbone_moved"] = max(float(np.abs(new[k] - old[k]).max()) for k in new)
    # Null leaves: conv biases before an instance norm, and each critic's last bias (it cancels in
    # r - mean of the pool on the D side while the pool holds this batch only; on the G side a constant).
    g_null = ("smooth/bias", "smooth2/bias", "top_down_1/bias", "top_down_2/bias", "top_down_3/bias")
    d_null = tuple(f"{d}/Conv_{k}/bias" for d, n in (("patch", 3), ("full", 5)) for k in range(1, n + 2))
    expected_g = _expected_g(g_ref, trainer.optimizer_g)
    errors.update(_moment_errors("g", expected_g, g_table, state.g, expected_g, g_null, FLOOR, before.g, 1e-4))
    errors.update(_moment_errors("d", d_ref, d_table, state.d, trainer.optimizer_d, d_null, FLOOR, before.d, 1e-4))
    got, after = flat_tree(jax.device_get(state.g.batch_stats)), numpy_state(g_ref)
    errors["g_running_mean"] = max(rel_error(got[path[len("batch_stats/"):]], after[key])
                                   for path, (key, _) in g_table.entries.items()
                                   if path.startswith("batch_stats/") and key.endswith("running_mean"))
    pool = jax.device_get(state.logit_pool)
    want_real = [float(torch.mean(c.real_pool.query())) for c in (adv_trainer.criterion, adv_trainer.full_criterion)]
    want_fake = [float(torch.mean(c.fake_pool.query())) for c in (adv_trainer.criterion, adv_trainer.full_criterion)]
    from jaxgan.losses import logit_pool

    centres = logit_pool.centres(pool)
    errors["loss/pool_means"] = max(rel_error([c[0] for c in centres], want_real),
                                    rel_error([c[1] for c in centres], want_fake))
    return errors


ADV_LAMBDA = 0.001  # config.yaml adv_lambda


def ragan_pool_steps(tmp_dir, n_steps: int = 3, pool_size: int = 3, loss: str = "ragan_ls") -> dict:
    """The pool across steps: `n_steps` train steps of batch 2 through pools of 3 outputs per D (the
    second step drops the oldest), DeblurGAN-v2's double-scale D and adversarial code (train.py,
    adversarial_trainer.py DoubleGAN, models/losses.py) with a small ResNet G and its 'l1' content
    loss (models/losses.py:15-23 ContentLoss(nn.L1Loss()), get_loss :282-284). The critics' last
    biases take rounding-noise Adam steps in the first step (their gradient is 0 while the pool holds
    only that batch) and are copied from torch after it; every other leaf is compared after the last step."""
    del tmp_dir
    from jaxgan.weights.formats import deblurgan_table
    from reference import deblurgan as ref_g
    from reference import deblurganv2 as ref
    from reference import losses as ref_losses
    from reference.pix2pix import init_weights

    torch.manual_seed(0)
    g_ref = init_weights(ref_g.ResnetGenerator(3, 3, ngf=4, norm="instance", use_dropout=False, n_blocks=1,
                                               learn_residual=True))
    d_ref = ref.DoubleScaleD(3, ndf=4, padw=2)
    rng = np.random.default_rng(0)
    # each step's batch at its own contrast: D's outputs move between steps, so the pooled means differ
    # from the batch's and the critics' last biases get gradients well above rounding
    contrast = np.linspace(1.0, 0.2, n_steps, dtype=np.float32).reshape(-1, 1, 1, 1, 1)
    xs = (contrast * rng.uniform(-1, 1, (n_steps, 2, 96, 96, 3))).astype(np.float32)
    ys = np.clip(xs + 0.3 * contrast * rng.standard_normal(xs.shape), -1, 1).astype(np.float32)
    config = deblurganv2_config(pool_size)
    config.loss.adversarial = loss
    config.generator.name = "resnet"
    config.generator.options = ml_collections.ConfigDict(dict(
        in_channels=3, out_channels=3, num_blocks=1, base_width=4, norm="instance", dropout=False,
        learn_residual=True, upsample="transpose"))
    config.loss.pixel, config.loss.pixel_weight, config.loss.pixel_input = "l1", 1.0, "raw"
    config.loss.perceptual_weight = 0.0
    config.loss.adversarial_weight = config.loss.d_loss_weight = ADV_LAMBDA
    g_table = deblurgan_table(dict(config.generator.options))
    d_table = patchgan_table(3, "instance", "patch.model", "patch/")
    full = patchgan_table(5, "instance", "full.model", "full/")
    d_table.entries.update(full.entries)
    d_table.unused.update(full.unused)
    g_mod, state = _jax_state(config, xs[0], g_ref, g_table, "deblurgan", d_ref, d_table, "double_scale")
    train_step = jax.jit(steps.make_step_fns(config).train_step)
    forward = jax.jit(lambda s, x: g_mod.apply({"params": s.g.params}, x, train=True))

    criterion = (ref_losses.RelativisticDiscLossLS if loss == "ragan_ls" else ref_losses.RelativisticDiscLoss)(
        pool_size)
    adv_trainer = ref_losses.DoubleGAN(d_ref.patch, d_ref.full, criterion)
    opt_g = torch.optim.Adam(g_ref.parameters(), lr=1e-4)
    opt_d = torch.optim.Adam(adv_trainer.get_params(), lr=1e-4)
    g_ref.train(), d_ref.train()
    last_biases = {"patch/Conv_4/bias": d_ref.patch.model[-1].bias, "full/Conv_6/bias": d_ref.full.model[-1].bias}
    errors = {}
    for t in range(n_steps):
        x, y = xs[t], ys[t]
        output = forward(state, jnp.asarray(x))
        before = state
        state, metrics = train_step(state, {"input": jnp.asarray(x), "target": jnp.asarray(y)}, {})
        out = ref_losses.deblurganv2_train_step(g_ref, adv_trainer, torch.nn.L1Loss(), opt_g, opt_d, nchw(x), nchw(y),
                                                ADV_LAMBDA)
        for name, got, want in (("d_loss", metrics["d_loss"], out["d_loss"]), ("g_adv", metrics["g_adv"], out["g_adv"]),
                                ("g_content", metrics["g_pixel"], out["g_content"]),
                                ("g_loss", metrics["g_loss"], out["g_loss"])):
            errors[f"loss/{name}"] = max(errors.get(f"loss/{name}", 0.0), rel_error(got, want))
        errors["g_output"] = max(errors.get("g_output", 0.0), rel_error(output, nhwc(out["output"])))
        if t == 0:  # the critics' last biases: null in the first step (see the docstring)
            params = jax.tree.map(np.asarray, jax.device_get(state.d.params))
            for path, bias in last_biases.items():
                d, conv = path.split("/")[:2]
                params[d][conv]["bias"] = bias.detach().numpy().copy()
            state = state.replace(d=state.d.replace(params=jax.tree.map(jnp.asarray, params)))
    g_null = tuple(k for k in flat_tree(jax.device_get(state.g.params)) if k.endswith("bias") and k != "head/bias")
    d_null = tuple(f"{d}/Conv_{k}/bias" for d, n in (("patch", 3), ("full", 5)) for k in range(1, n + 1))
    # moments per leaf relative to max(its largest, FLOOR x the tree's largest), as the other setups:
    # the critics' last biases have gradients that are differences of nearly equal means
    errors.update(_moment_errors("g", g_ref, g_table, state.g, opt_g, g_null, FLOOR, before.g, 1e-4))
    errors.update(_moment_errors("d", d_ref, d_table, state.d, opt_d, d_null, FLOOR, before.d, 1e-4))
    from jaxgan.losses import logit_pool

    centres = logit_pool.centres(jax.device_get(state.logit_pool))
    for i, c in enumerate((adv_trainer.criterion, adv_trainer.full_criterion)):
        errors["loss/pool_means"] = max(errors.get("loss/pool_means", 0.0),
                                        rel_error(centres[i][0], float(torch.mean(c.real_pool.query()))),
                                        rel_error(centres[i][1], float(torch.mean(c.fake_pool.query()))))
    return errors


# ---- DeblurGAN: WGAN-GP (the original's penalty), 5 critic updates, VGG19 perceptual x 100 ----------

def deblurgan_config(penalty: str = "wgan_gp_deblurgan"):
    """deblurgan_gopro.py at tiny widths: ResNet G (2 blocks, dropout, learn_residual), unconditional
    PatchGAN critic (padding 1), WGAN-GP x 10, 5 critic updates, 100 x VGG19 conv3_3 MSE on raw images."""
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
                                                             norm="instance", padding=1))
    c.loss.adversarial, c.loss.gradient_penalty, c.loss.gradient_penalty_weight = "wgan", penalty, 10.0
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


def deblurgan(tmp_dir) -> dict:
    """One step of conditional_gan_model.py optimize_parameters with DiscLossWGANGP (reference/losses.py)."""
    from jaxgan.weights.formats import deblurgan_table
    from reference import deblurgan as ref
    from reference import losses as ref_losses
    from reference.common import dropouts
    from reference.pix2pix import init_weights

    torch.manual_seed(0)
    g_ref = init_weights(ref.ResnetGenerator(3, 3, ngf=4, norm="instance", use_dropout=True, n_blocks=2,
                                             learn_residual=True))
    d_ref = ref.NLayerDiscriminator(3, 4, 3, "instance", padw=1)  # PyTorch's default init: a livelier critic
    vgg_features, vgg_params = _vgg19_pair(tmp_dir)
    rng = np.random.default_rng(0)
    n_critic = 5
    x = rng.uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    y = np.clip(x + 0.3 * rng.standard_normal(x.shape), -1, 1).astype(np.float32)
    gp_alpha = rng.uniform(size=(n_critic,)).astype(np.float32)  # one per critic update (losses.py:142)

    config = deblurgan_config()
    g_table, d_table = deblurgan_table(dict(config.generator.options)), patchgan_table(3, "instance")
    g_mod, state = _jax_state(config, x, g_ref, g_table, "deblurgan", d_ref, d_table, "patchgan")
    shapes = _dropout_shapes(g_mod, {"params": state.g.params}, x)
    torch_drops = dropouts(g_ref)
    assert len(shapes) == len(torch_drops) == 2
    masks = {}
    for (path, shape), (_, drop) in zip(sorted(shapes.items()), torch_drops):
        mask = (rng.uniform(size=shape) < 0.5).astype(np.float32)  # (B, H, W, C)
        masks[path] = jnp.asarray(mask)
        drop.mask = torch.from_numpy(np.ascontiguousarray(mask.transpose(0, 3, 1, 2)))
    fns = steps.make_step_fns(config)

    def step(state, batch, loss_nets, masks):
        with injected_dropout(masks):
            return fns.train_step(state, batch, loss_nets)

    def forward(state, masks):
        with injected_dropout(masks):
            return g_mod.apply({"params": state.g.params}, jnp.asarray(x), train=True,
                               rngs={"dropout": jax.random.PRNGKey(0)})

    batch = {"input": jnp.asarray(x), "target": jnp.asarray(y), "gp_alpha": jnp.asarray(gp_alpha)}
    new_state, metrics = jax.jit(step)(state, batch, {"vgg": vgg_params}, masks)
    output = jax.jit(forward)(state, masks)

    opt_g = torch.optim.Adam(g_ref.parameters(), lr=1e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d_ref.parameters(), lr=1e-4, betas=(0.5, 0.999))
    g_ref.train(), d_ref.train()
    disc_loss = ref_losses.DiscLossWGANGP()
    out = ref_losses.deblurgan_optimize_parameters(g_ref, d_ref, disc_loss, ref_losses.PerceptualLoss(vgg_features),
                                                   opt_g, opt_d, nchw(x), nchw(y), gp_alpha)

    # Null leaves (see param_errors): every conv bias before an instance norm, and the critic's last
    # bias, whose WGAN gradient is mean(1) - mean(1) = 0. That bias shifts G's adversarial term by a
    # constant (no gradient): compare -mean(D(fake)) without it.
    g_null = tuple(k for k in flat_tree(jax.device_get(new_state.g.params)) if k.endswith("bias") and k != "head/bias")
    d_null = ("Conv_1/bias", "Conv_2/bias", "Conv_3/bias", "Conv_4/bias")
    last_bias = (float(new_state.d.params["Conv_4"]["bias"][0]), float(d_ref.model[-1].bias[0].detach()))
    errors = {"loss/d_adv": rel_error(metrics["d_adv"], out["d_adv"]),
              "loss/d_penalty": rel_error(10.0 * metrics["d_penalty"], out["d_penalty"]),
              "loss/d_loss": rel_error(metrics["d_loss"], out["d_loss"]),
              "loss/g_adv": rel_error(metrics["g_adv"] + last_bias[0], out["g_adv"] + last_bias[1]),
              "loss/g_perceptual": rel_error(100.0 * metrics["g_perceptual"], out["g_content"]),
              "loss/g_loss": rel_error(metrics["g_loss"] + last_bias[0], out["g_loss"] + last_bias[1]),
              "g_output": rel_error(output, nhwc(out["output"]))}
    errors.update(_moment_errors("g", g_ref, g_table, new_state.g, opt_g, g_null))
    errors.update(_moment_errors("d", d_ref, d_table, new_state.d, opt_d, d_null))
    return errors


# ---- pix2pix: U-Net + PatchGAN with batch norm, vanilla GAN + 100 x L1, D loss x 0.5 ---------------

def pix2pix_config():
    c = base_config()
    c.task = "deblur"
    c.data.crop_size = 64
    c.generator.name = "unet"
    c.generator.options = ml_collections.ConfigDict(dict(in_channels=3, out_channels=3, base_width=4, depth=6,
                                                         norm="batch"))
    c.discriminator.options = ml_collections.ConfigDict(dict(base_width=4, num_layers=3, norm="batch"))
    c.loss.adversarial, c.loss.pixel, c.loss.pixel_weight = "vanilla", "l1", 100.0
    c.loss.d_loss_weight = 0.5  # pix2pix_model.py:106 (fake + real) x 0.5, as pix2pix_pets_seg.py
    c.optim.g_lr = c.optim.d_lr = 2e-4
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


def pix2pix(tmp_dir) -> dict:
    """One step of pix2pix_model.py optimize_parameters (reference/losses.py), batch 2 (batch-norm
    statistics over two images), with the dropout mask of the U-Net's dropout level injected."""
    del tmp_dir
    from jaxgan.weights.formats import pix2pix_table
    from reference import losses as ref_losses
    from reference import pix2pix as ref
    from reference.common import dropouts

    torch.manual_seed(0)
    g_ref = ref.init_weights(ref.UnetGenerator(3, 3, num_downs=6, ngf=4))
    d_ref = ref.init_weights(ref.NLayerDiscriminator(6, 4, 3, "batch", padw=1))
    randomize_norm_stats(g_ref, 1)
    randomize_norm_stats(d_ref, 2)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (2, 64, 64, 3)).astype(np.float32)
    y = np.clip(x + 0.3 * rng.standard_normal(x.shape), -1, 1).astype(np.float32)

    config = pix2pix_config()
    g_table, d_table = pix2pix_table(dict(depth=6, norm="batch")), patchgan_table(3)
    g_mod, state = _jax_state(config, x, g_ref, g_table, "pix2pix", d_ref, d_table, "patchgan")
    (name, drop), = dropouts(g_ref)  # level 4 of a depth-6 U-Net: the one use_dropout level
    mask = (rng.uniform(size=(2, 4 * 8, 4, 4)) < 0.5).astype(np.float32)  # (B, C, H, W) at level 4's output
    drop.mask = torch.from_numpy(mask)
    masks = {"dropout_4": jnp.asarray(mask.transpose(0, 2, 3, 1))}
    fns = steps.make_step_fns(config)

    def step(state, batch, masks):
        with injected_dropout(masks):
            return fns.train_step(state, batch, {})

    def forward(state, masks):
        with injected_dropout(masks):
            return g_mod.apply({"params": state.g.params, "batch_stats": state.g.batch_stats}, jnp.asarray(x),
                               train=True, mutable=["batch_stats"], rngs={"dropout": jax.random.PRNGKey(0)})[0]

    new_state, metrics = jax.jit(step)(state, {"input": jnp.asarray(x), "target": jnp.asarray(y)}, masks)
    output = jax.jit(forward)(state, masks)
    g_stats_before, d_stats_before = numpy_state(g_ref), numpy_state(d_ref)
    opt_g = torch.optim.Adam(g_ref.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d_ref.parameters(), lr=2e-4, betas=(0.5, 0.999))
    g_ref.train(), d_ref.train()
    out = ref_losses.pix2pix_optimize_parameters(g_ref, d_ref, opt_g, opt_d, nchw(x), nchw(y))

    errors = {"loss/d_loss": rel_error(metrics["d_loss"], out["d_loss"]),
              "loss/g_adv": rel_error(metrics["g_adv"], out["g_adv"]),
              "loss/g_pixel": rel_error(100.0 * metrics["g_pixel"], out["g_l1"]),
              "loss/g_loss": rel_error(metrics["g_loss"], out["g_loss"]),
              "g_output": rel_error(output, nhwc(out["output"]))}
    errors.update(_moment_errors("g", g_ref, g_table, new_state.g, opt_g, floor=FLOOR, before=state.g, lr=2e-4))
    errors.update(_moment_errors("d", d_ref, d_table, new_state.d, opt_d, floor=FLOOR, before=state.d, lr=2e-4))
    # BatchNorm statistics: means equal; PyTorch's running variance takes the unbiased batch variance,
    # flax's the biased one, so torch's increment = n / (n - 1) x jaxgan's (n = B*H*W at the norm).
    # D updates its statistics twice in its update (fake pass, real pass): decay 0.9**2 of the old value.
    d_after = {k: v for k, v in out["d_state_after_d"].items() if not k.endswith("tracked")}
    for what, table, new, before, after, decay, pixels in (
            ("g", g_table, new_state.g, g_stats_before, numpy_state(g_ref), 0.9, _g_norm_pixels),
            ("d", d_table, new_state.d, d_stats_before, d_after, 0.81, _d_norm_pixels)):
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
    return errors


def deblurganv2_frozen(tmp_dir, float64: bool = False) -> dict:
    return deblurganv2(tmp_dir, frozen=True, float64=float64)


SETUPS = {"pix2pix": pix2pix, "deblurgan": deblurgan, "deblurganv2": deblurganv2,
          "deblurganv2_frozen": deblurganv2_frozen,
          "ragan_ls_pool_3_steps": ragan_pool_steps}


def table(names, tmp_dir, **kwargs) -> dict:
    return {name: grouped(SETUPS[name](tmp_dir, **kwargs)) for name in names}


def print_table(results: dict) -> None:
    columns = list(GROUPS) + sorted({g for r in results.values() for g in r if g not in GROUPS})
    widths = [max(len(c) - len("extra/") * c.startswith("extra/"), 9) + 2 for c in columns]
    print("setup".ljust(24) + "".join(c.replace("extra/", "").rjust(w) for c, w in zip(columns, widths)))
    for name, r in results.items():
        print(name.ljust(24) + "".join((f"{r[c]:.2e}" if c in r else "-").rjust(w) for c, w in zip(columns, widths)))


def main(argv):
    import tempfile

    names = [a for a in argv if not a.startswith("--")] or list(SETUPS)
    kwargs = {}
    if "--float64" in argv:  # the DeblurGAN-v2 setups with jaxgan's step evaluated in float64
        jax.config.update("jax_enable_x64", True)
        kwargs = {"float64": True}
    with tempfile.TemporaryDirectory() as tmp:
        if "--raw" in argv or "--flat" in argv:
            results = {name: {k: float(v) for k, v in SETUPS[name](tmp, **kwargs).items()} for name in names}
        else:
            results = table(names, tmp, **kwargs)
    if "--json" in argv:
        print("PARITY_JSON " + json.dumps(results))
    elif "--raw" in argv:
        print(json.dumps(results, indent=1))
    else:
        print_table(results)


if __name__ == "__main__":
    main(sys.argv[1:])
