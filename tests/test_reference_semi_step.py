"""One semi-supervised train step of Hung et al. 2018 in jaxgan and in PyTorch from the same weights
and batch: every loss term, G's output, the updated parameters and the Adam moments of G and D agree
(relative error <= 1e-4, float32), with the self-training branch on (start step 0), so that every term
of the original's loss is checked.

The PyTorch step is `reference.advsemiseg.semi_train_step`, a transcription of hfslyc/AdvSemiSeg
train.py's iteration (lines 308-453): G on the unlabelled images (unlabelled adversarial term +
self-training CE on the pixels where sigmoid(D) >= mask_T), G on the labelled ones (CE + adversarial
term), D on the labelled and unlabelled predictions as fake and the one-hot masks as real (each
BCE / 2), every D map upsampled (bilinear, corners aligned) to the label size; both optimizers step
at the end. D is its FCDiscriminator; G, since jaxgan has no DeepLab-v2, the pix2pix U-Net (instance
norm, so that the original's two G passes and jaxgan's one pass over both batches normalise alike).
G uses Adam here as jaxgan does (the original: SGD); D's Adam has the original's betas (0.9, 0.99).
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
from jaxgan.weights.formats import fc_discriminator_table, pix2pix_table  # noqa: E402
from reference import advsemiseg, pix2pix  # noqa: E402
from reference_helpers import nchw, nhwc, numpy_state, param_errors, rel_error, with_variables  # noqa: E402

TOL = 1e-4
SIZE, BATCH, CLASSES, DEPTH = 64, 2, 3, 5  # 64 x 64: D's map is 2 x 2, so its upsampling matters
G_LR, D_LR, BETAS = 2.5e-4, 1e-4, (0.9, 0.99)  # train.py LEARNING_RATE, LEARNING_RATE_D, Adam betas of D
# the loss weights, larger than train.py's (0.01, 0.001, 0.1) so that every term moves the gradients
ADV, SEMI_ADV, SEMI = 0.1, 0.05, 0.5
# rounding can flip a pseudo-label or a mask pixel only within this margin of a tie (float32 G and D
# outputs agree to ~1e-6); the test checks its batch has none there
MARGIN = 1e-5


def _config(threshold: float):
    c = base_config()
    c.task = "segment"
    c.data.crop_size = SIZE
    c.data.num_classes = CLASSES
    c.generator.name = "unet"
    c.generator.options = ml_collections.ConfigDict(dict(
        in_channels=3, out_channels=CLASSES, depth=DEPTH, base_width=4, norm="instance", dropout=False,
        upsample="transpose", out_activation="tanh"))  # pix2pix's UnetGenerator ends in Tanh
    c.discriminator.name = "fc"
    c.discriminator.conditional = False
    c.discriminator.options = ml_collections.ConfigDict(dict(in_channels=CLASSES, base_width=4))
    c.discriminator.mask_input = "probabilities"
    c.discriminator.upsample_logits = True
    c.loss.adversarial, c.loss.adversarial_weight = "vanilla", ADV
    c.loss.mask, c.loss.mask_weight, c.loss.pixel = "softmax_ce", 1.0, "none"
    c.loss.d_loss_weight = 0.5
    c.loss.g_sees_updated_d = False
    c.optim.g_lr, c.optim.d_lr = G_LR, D_LR
    c.optim.b1, c.optim.b2 = BETAS
    c.train.ema_decay = 0.0
    c.variants.semi_supervised = True
    c.variants.semi_adversarial_weight = SEMI_ADV
    c.variants.semi_self_training_weight = SEMI
    c.variants.semi_threshold = threshold
    c.variants.semi_start_step = 0
    c.variants.semi_d_unlabelled = True
    return c


def _threshold(confidence: np.ndarray) -> tuple[float, float]:
    """(threshold, gap): the middle of the widest gap between sorted confidences in their central
    half, so that a quarter to three quarters of the pixels pass and none lies near the threshold."""
    values = np.sort(confidence.ravel())
    lo, hi = len(values) // 4, 3 * len(values) // 4
    gaps = np.diff(values[lo:hi])
    k = int(np.argmax(gaps))
    return float((values[lo + k] + values[lo + k + 1]) / 2), float(gaps[k])


def _null_g_leaves(depth: int) -> tuple:
    """Biases of the U-Net convs followed by an instance norm (zero gradient, see param_errors): the
    down convs of levels 1 .. depth - 2 and the up convs of levels 1 .. depth - 1."""
    return (tuple(f"down_{k}/bias" for k in range(1, depth - 1))
            + tuple(f"up_{k}/ConvTranspose_0/bias" for k in range(1, depth)))


@pytest.mark.slow
def test_semi_supervised_train_step_matches_adv_semi_seg():
    torch.manual_seed(0)
    g_ref = pix2pix.init_weights(pix2pix.UnetGenerator(3, CLASSES, num_downs=DEPTH, ngf=4, norm="instance",
                                                       use_dropout=False), gain=0.2)
    d_ref = advsemiseg.FCDiscriminator(CLASSES, ndf=4)  # PyTorch's default init, as the original
    with torch.no_grad():
        d_ref.classifier.weight.mul_(100.0)  # D's logits on probability maps are ~0.01: spread them
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (BATCH, SIZE, SIZE, 3)).astype(np.float32)
    x_u = rng.uniform(-1, 1, (BATCH, SIZE, SIZE, 3)).astype(np.float32)
    y = rng.integers(0, CLASSES, (BATCH, SIZE, SIZE)).astype(np.int32)

    # the threshold: from the confidence map of the initial G and D (both frameworks threshold it)
    with torch.no_grad():
        logits_u = g_ref(nchw(x_u))
        d_u = advsemiseg.interp(d_ref(torch.softmax(logits_u, 1)), (SIZE, SIZE))
        confidence = torch.sigmoid(d_u).squeeze(1).numpy()
    threshold, gap = _threshold(confidence)
    top2 = np.sort(logits_u.numpy(), axis=1)[:, -2:]
    assert gap > 2 * MARGIN and (top2[:, 1] - top2[:, 0]).min() > MARGIN, (gap, (top2[:, 1] - top2[:, 0]).min())

    config = _config(threshold)
    g_mod, d_mod = state_lib.make_modules(config)
    state = jax.jit(lambda k: state_lib.create_state(config, g_mod, d_mod, {"input": x}, k))(jax.random.PRNGKey(0))
    g_table = pix2pix_table(dict(depth=DEPTH, norm="instance"))
    d_table = fc_discriminator_table()
    state = state.replace(g=with_variables(state.g, numpy_state(g_ref), g_table, "pix2pix"),
                          d=with_variables(state.d, numpy_state(d_ref), d_table, "fc"))
    batch = {"input": jnp.asarray(x), "target": jnp.asarray(y), "unlabelled_input": jnp.asarray(x_u)}
    new_state, metrics = jax.jit(steps.make_step_fns(config).train_step)(state, batch, {})
    output = jax.jit(lambda s: g_mod.apply({"params": s.g.params}, jnp.concatenate([batch["input"],
                                           batch["unlabelled_input"]]), train=True))(state)

    opt_g = torch.optim.Adam(g_ref.parameters(), lr=G_LR, betas=BETAS)
    opt_d = torch.optim.Adam(d_ref.parameters(), lr=D_LR, betas=BETAS)
    g_ref.train(), d_ref.train()
    labels = torch.from_numpy(y.astype(np.int64))
    ref = advsemiseg.semi_train_step(g_ref, d_ref, opt_g, opt_d, nchw(x), labels, nchw(x_u), labels,
                                     lambda_adv_pred=ADV, lambda_semi_adv=SEMI_ADV, lambda_semi=SEMI,
                                     mask_t=threshold)
    assert 0.2 < ref["semi_ratio"] < 0.8  # the mask selects some pixels, not all
    g_loss = ref["loss_seg"] + ADV * ref["loss_adv_pred"] + SEMI_ADV * ref["loss_semi_adv"] + SEMI * ref["loss_semi"]

    errors = {"g_mask": rel_error(metrics["g_mask"], ref["loss_seg"]),
              "g_adv": rel_error(metrics["g_adv"], ref["loss_adv_pred"]),
              "g_semi_adv": rel_error(metrics["g_semi_adv"], ref["loss_semi_adv"]),
              "g_semi_ce": rel_error(metrics["g_semi_ce"], ref["loss_semi"]),
              "g_loss": rel_error(metrics["g_loss"], g_loss),
              "d_loss": rel_error(metrics["d_loss"], ref["loss_D"]),
              "g_output": rel_error(output, np.concatenate([nhwc(ref["pred"]), nhwc(ref["pred_remain"])]))}
    errors.update(param_errors("g", g_ref, g_table, new_state.g, opt_g, _null_g_leaves(DEPTH)))
    errors.update(param_errors("d", d_ref, d_table, new_state.d, opt_d))
    print(errors, "threshold", threshold, "selected", ref["semi_ratio"])
    assert float(metrics["semi_selected"]) == pytest.approx(ref["semi_ratio"], abs=1e-7)
    assert max(errors.values()) <= TOL, errors
