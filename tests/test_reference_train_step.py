"""One full pix2pix train step in jaxgan and in PyTorch (reference modules) from the same weights,
batch and dropout masks: every loss term, G's output, the updated parameters and the Adam moments of
G and D agree (relative error <= 1e-4, float32); BatchNorm running means too, and running variances
once PyTorch's unbiased (Bessel-corrected) batch variance is accounted for (flax takes the biased one).

The PyTorch step is pix2pix's optimize_parameters (models/pix2pix_model.py): fake = G(A); D update on
D(cat(A, fake.detach())) then D(cat(A, B)); G update against the updated D, GAN + 100 x L1; Adam
(0.5, 0.999). D's loss is halved on both sides (the published loss.d_loss_weight = 0.5).
"""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

torch = pytest.importorskip("torch")

from jaxgan.config import base_config  # noqa: E402
from jaxgan.train import state as state_lib  # noqa: E402
from jaxgan.train import steps  # noqa: E402
from jaxgan.weights.formats import pix2pix_table  # noqa: E402
from jaxgan.weights.mapping import Table, convert, to_flax  # noqa: E402
from reference import pix2pix  # noqa: E402
from reference.common import dropouts  # noqa: E402
from reference_helpers import injected_dropout, nchw, nhwc, randomize_norm_stats  # noqa: E402

TOL = 1e-4
D_LOSS_SCALE = 0.5  # pix2pix_model.py backward_D: (fake + real) x 0.5; jaxgan's loss.d_loss_weight
LR = 2e-4


def patchgan_table(num_layers: int) -> Table:
    """NLayerDiscriminator (model.{i}) -> jaxgan PatchGAN (Conv_k, Norm_k) with batch norm."""
    t = Table()
    t.conv("Conv_0", "model.0")
    for n in range(1, num_layers + 1):
        at = 2 + 3 * (n - 1)
        t.conv(f"Conv_{n}", f"model.{at}", bias=False)
        t.batch_norm(f"Norm_{n - 1}/BatchNorm_0", f"model.{at + 1}")
    t.conv(f"Conv_{num_layers + 1}", f"model.{2 + 3 * num_layers}")
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


def _numpy_state(module):
    return {k: v.detach().numpy().copy() for k, v in module.state_dict().items() if not k.endswith("tracked")}


def _rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


def _adam_moments(opt_state):
    adam = [s for s in jax.tree.leaves(opt_state, is_leaf=lambda s: isinstance(s, optax.ScaleByAdamState))
            if isinstance(s, optax.ScaleByAdamState)]
    assert len(adam) == 1
    return adam[0].mu, adam[0].nu


def _flax_of(table: Table, values: dict, shapes) -> dict:
    """Torch-keyed arrays (parameters or their Adam moments) in the flax layout of `table`."""
    flat = {}
    for path, (key, layout) in table.entries.items():
        if path.startswith("params/") and key in values:
            flat[path[len("params/"):]] = to_flax(values[key], layout)
    return flat


def _flat(tree, prefix=""):
    out = {}
    for k, v in tree.items():
        p = f"{prefix}/{k}" if prefix else k
        out.update(_flat(v, p) if isinstance(v, dict) else {p: np.asarray(v)})
    return out


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
    g_vars = convert(_numpy_state(g_ref), g_table, {"params": state.g.params, "batch_stats": state.g.batch_stats},
                     "pix2pix", "G")
    d_vars = convert(_numpy_state(d_ref), d_table, {"params": state.d.params, "batch_stats": state.d.batch_stats},
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

    g_stats_before, d_stats_before = _numpy_state(g_ref), _numpy_state(d_ref)

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
    d_stats_after_d = _numpy_state(d_ref)  # jaxgan keeps D's statistics of the D update only
    for p in d_ref.parameters():
        p.requires_grad_(False)
    pred = d_ref(torch.cat([a, fake], 1))
    g_adv = bce(pred, torch.ones_like(pred))
    g_l1 = torch.nn.functional.l1_loss(fake, b)
    g_loss = g_adv + 100.0 * g_l1
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()

    errors = {"d_loss": _rel(metrics["d_loss"], d_loss.item()), "g_adv": _rel(metrics["g_adv"], g_adv.item()),
              "g_pixel": _rel(metrics["g_pixel"], g_l1.item()), "g_loss": _rel(metrics["g_loss"], g_loss.item())}
    for what, ref, table, new, opt in (("g", g_ref, g_table, new_state.g, opt_g), ("d", d_ref, d_table, new_state.d, opt_d)):
        names = dict(ref.named_parameters())
        torch_params = {k: v.detach().numpy() for k, v in names.items()}
        exp_avg = {k: opt.state[v]["exp_avg"].numpy() for k, v in names.items()}
        exp_avg_sq = {k: opt.state[v]["exp_avg_sq"].numpy() for k, v in names.items()}
        mu, nu = _adam_moments(new.opt_state)
        for label, values, tree in (("params", torch_params, new.params), ("mu", exp_avg, mu), ("nu", exp_avg_sq, nu)):
            expected, got = _flax_of(table, values, None), _flat(jax.device_get(tree))
            assert sorted(expected) == sorted(got)
            errors[f"{what}_{label}"] = max(_rel(got[k], expected[k]) for k in expected)
    # BatchNorm statistics: means equal; PyTorch's running variance takes the unbiased batch variance,
    # flax's the biased one, so torch's increment = n / (n - 1) x jaxgan's (n = B*H*W at the norm).
    # D updates its statistics twice (fake pass, real pass): decay 0.9**2 of the old value.
    for what, table, new, before, after, decay, pixels in (
            ("g", g_table, new_state.g, g_stats_before, _numpy_state(g_ref), 0.9, _g_norm_pixels),
            ("d", d_table, new_state.d, d_stats_before, d_stats_after_d, 0.81, _d_norm_pixels)):
        got = _flat(jax.device_get(new.batch_stats))
        mean_err, var_err = 0.0, 0.0
        for path, (key, _) in table.entries.items():
            if not path.startswith("batch_stats/"):
                continue
            value = got[path[len("batch_stats/"):]]
            if key.endswith("running_mean"):
                mean_err = max(mean_err, _rel(value, after[key]))
            else:
                n = 2 * pixels(path) ** 2
                corrected = decay * before[key] + (value - decay * before[key]) * n / (n - 1)
                var_err = max(var_err, _rel(corrected, after[key]))
        errors[f"{what}_running_mean"], errors[f"{what}_running_var_bessel"] = mean_err, var_err
    print(errors)
    assert max(errors.values()) <= TOL, errors
