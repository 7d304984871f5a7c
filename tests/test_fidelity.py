"""The published configs follow the original code: one behavioural or closed-form test per item of
docs/fidelity.md (resize-then-crop, test-time mode, D loss weight, schedules, gradient penalty forms,
perceptual and pixel inputs, dropout, critic padding, augmentation, semi-supervised D, the optimizer
state at unfreezing, progressive resolution)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.config_io import load_config_file
from jaxgan.train import optim
from jaxgan.train import state as state_lib
from jaxgan.train import steps
from train_helpers import fixed_batch, tiny_config

CONFIGS = "experiments/configs/"


def _published(name):
    return load_config_file(CONFIGS + name + ".py")


# ---- pix2pix -------------------------------------------------------------------------------------

def _ramp_example(height, width):
    """uint8 image whose value is its column index (0..width-1), and a mask of the left half."""
    import tensorflow as tf

    cols = np.broadcast_to(np.arange(width, dtype=np.uint8)[None, :, None], (height, width, 3))
    mask = (np.arange(width)[None, :, None] < width // 2).astype(np.int32) * np.ones((height, 1, 1), np.int32)
    return {"input": tf.constant(cols), "target": tf.constant(mask)}


def test_resize_to_load_size_then_random_crop():
    """A column ramp of slope 1/255 per pixel, resized from width 240 to load width 120 then cropped:
    the crop's slope doubles (2/255), and the mask's edge stays at the resized half (nearest)."""
    from jaxgan.data.pipeline import train_transform

    c = base = tiny_config("segment").data
    c.crop_size, c.flip, c.rot90 = 60, False, False
    c.load_size = (60, 120)
    image, mask = train_transform(_ramp_example(100, 240), np.array([3, 4], np.int64), c, is_mask=True)
    image, mask = np.asarray(image), np.asarray(mask)[..., 0]
    assert image.shape == (60, 60, 3) and mask.shape == (60, 60)
    slope = np.diff(image[:, 5:-5, 0], axis=1)
    np.testing.assert_allclose(slope.mean(), 2.0 / 255, rtol=0.02)
    left = int(round(image[0, 0, 0] * 255 / 2))  # the crop's left column in the resized image
    np.testing.assert_array_equal(mask[0], (np.arange(60) + left < 60).astype(np.int32))
    base.load_size = (0, 0)  # native size: slope 1/255
    image, _ = train_transform(_ramp_example(100, 240), np.array([3, 4], np.int64), base, is_mask=True)
    np.testing.assert_allclose(np.diff(np.asarray(image)[:, :, 0], axis=1).mean(), 1.0 / 255, rtol=0.02)


def test_bad_load_size_is_named():
    from jaxgan.data.pipeline import load_size

    c = tiny_config().data
    c.load_size = (286, 0)
    with pytest.raises(ValueError, match="load_size"):
        load_size(c)


class _NormDrop:
    """A tiny G: 3x3 conv -> batch norm -> dropout 0.5 (the layers whose test-time mode matters)."""

    @staticmethod
    def make(dropout=True):
        import flax.linen as nn

        class NormDrop(nn.Module):
            @nn.compact
            def __call__(self, x, train: bool = False):
                h = nn.Conv(3, (3, 3))(x)
                h = nn.BatchNorm(use_running_average=not train, momentum=0.9)(h)
                return nn.Dropout(0.5 if dropout else 0.0, deterministic=not train)(h)

        g = NormDrop()
        x = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (2, 12, 12, 3)), jnp.float32)  # SSIM: >= 11
        return g, g.init(jax.random.PRNGKey(0), x), x


def test_train_mode_inference_keeps_dropout_and_uses_the_test_batch_statistics():
    from jaxgan.nets.inference import apply_generator

    g, variables, x = _NormDrop.make()
    run = jax.jit(lambda v, x, key: apply_generator(g.apply, v, x, True, key))
    eval_out = apply_generator(g.apply, variables, x)
    a, b = run(variables, x, jax.random.PRNGKey(5)), run(variables, x, jax.random.PRNGKey(6))
    assert float(jnp.max(jnp.abs(a - b))) > 1e-3  # dropout on: other key, other output
    assert float(jnp.mean(a == 0)) == pytest.approx(0.5, abs=0.1)  # half of the activations dropped
    # without dropout, train-mode output = a train=True pass (batch statistics), not the running ones
    g2, v2, _ = _NormDrop.make(dropout=False)
    expected, _ = g2.apply(v2, x, train=True, mutable=["batch_stats"])
    got = apply_generator(g2.apply, v2, x, True, jax.random.PRNGKey(0))
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert float(jnp.max(jnp.abs(got - apply_generator(g2.apply, v2, x)))) > 1e-3
    # one image's output depends on the other images of the batch (their statistics)
    alone = apply_generator(g2.apply, v2, x[:1], True, jax.random.PRNGKey(0))
    assert float(jnp.max(jnp.abs(alone - expected[:1]))) > 1e-4


def test_evaluate_and_predict_use_train_mode_when_configured(monkeypatch):
    import importlib

    from jaxgan import predict

    evaluate = importlib.import_module("jaxgan.train.evaluation")
    g, variables, x = _NormDrop.make()
    config = tiny_config("deblur")
    config.train.eval_lpips = False
    batch = {"input": np.asarray(x), "target": np.asarray(x), "valid": np.ones(2, bool)}
    monkeypatch.setattr(evaluate, "_make_eval_iterator", lambda c, s: iter([batch]))
    plain, _ = evaluate.run_evaluation(config, g, variables)
    config.eval.train_mode_inference = True
    train_mode, _ = evaluate.run_evaluation(config, g, variables)
    assert abs(plain["psnr"] - train_mode["psnr"]) > 1e-3
    config.seed = 1  # other dropout masks
    other, _ = evaluate.run_evaluation(config, g, variables)
    assert abs(other["psnr"] - train_mode["psnr"]) > 1e-4
    image = np.asarray(x[0])
    off = predict.Predictor.from_config(tiny_config("deblur"), g, variables)
    on = predict.Predictor.from_config(config, g, variables)
    assert on.train_mode and not off.train_mode
    # eval mode: G's plain eval-mode output (running statistics, no dropout), clipped as a deblurred image;
    # the 1-pixel border is left out (prediction pads the image, the 3x3 conv sees the padding there)
    expected = np.clip(np.asarray(g.apply(variables, x[:1], train=False))[0], -1, 1)
    np.testing.assert_allclose(off.predict_array(image)[1:-1, 1:-1], expected[1:-1, 1:-1], atol=1e-5)
    assert np.abs(on.predict_array(image) - off.predict_array(image)).max() > 1e-3


def test_d_loss_weight_halves_the_adversarial_loss_exactly():
    config = tiny_config("segment", norm="none", d_loss_weight=0.5)
    g, d = state_lib.make_modules(config)
    batch = fixed_batch(config)
    state = state_lib.create_state(config, g, d, batch, jax.random.PRNGKey(0))
    _, metrics = jax.jit(steps.make_step_fns(config).d_step)(state, batch, {})
    assert float(metrics["d_adv"]) > 0.1
    assert float(metrics["d_loss"]) == pytest.approx(0.5 * float(metrics["d_adv"]), rel=1e-7)


def test_pix2pix_schedule_is_the_original_lambda_rule():
    """models/networks.py get_scheduler: lr(e) = base x (1 - max(0, e + 1 - niter) / (niter_decay + 1))
    at every step of epoch e (niter = niter_decay = 100)."""
    config = _published("pix2pix_pets_seg")
    epoch = config.optim.schedule_period
    lr = optim.make_schedule(config, 2e-4)
    for e in (0, 50, 99, 100, 101, 150, 199):
        expected = 2e-4 * (1.0 - max(0, e + 1 - 100) / 101.0)
        for within in (0, epoch - 1):
            assert float(lr(e * epoch + within)) == pytest.approx(expected, rel=1e-5, abs=1e-12)


def test_pix2pix_published_values():
    c = _published("pix2pix_pets_seg")
    assert tuple(c.data.load_size) == (286, 286) and c.data.crop_size == 256 and c.data.flip
    assert c.loss.d_loss_weight == 0.5 and c.variants.history_size == 0
    assert c.eval.train_mode_inference and (c.optim.b1, c.optim.b2) == (0.5, 0.999)
    assert c.data.eval_batch_size == 1  # test.py:41: train-mode batch norm on one image at a time


# ---- DeblurGAN -----------------------------------------------------------------------------------

def test_deblurgan_generator_has_dropout_in_train_and_test_mode_and_the_same_params():
    from jaxgan import nets
    from jaxgan.nets.inference import apply_generator

    c = _published("deblurgan_gopro")
    options = dict(c.generator.options)
    assert options["dropout"] and c.eval.train_mode_inference
    full = nets.make_generator("resnet", **options)
    shapes = jax.eval_shape(lambda: full.init(jax.random.PRNGKey(0), jnp.zeros((1, 64, 64, 3)))["params"])
    assert state_lib.count_params(shapes) == 11_378_179  # dropout adds no parameter: checkpoints still load
    options.update(base_width=4, num_blocks=2)
    g = nets.make_generator("resnet", **options)
    x = jnp.asarray(np.random.default_rng(1).uniform(-0.5, 0.5, (1, 16, 16, 3)), jnp.float32)
    variables = jax.jit(g.init)(jax.random.PRNGKey(0), x)
    run = jax.jit(lambda v, x, key: (apply_generator(g.apply, v, x, True, key), apply_generator(g.apply, v, x)))
    (a, plain_a), (b, plain_b) = (run(variables, x, jax.random.PRNGKey(k)) for k in (1, 2))
    assert float(jnp.max(jnp.abs(a - b))) > 1e-4
    np.testing.assert_array_equal(plain_a, plain_b)


def test_deblurgan_critic_padding_is_the_python2_runs_and_sets_the_output_size():
    """The paper-era code (Python 2: bare xrange at 926f4f4 conditional_gan_model.py:101) computes
    networks.py:289 padw = int(np.ceil((kw-1)/2)) with integer division: 1 (Python 3: 2)."""
    from jaxgan import nets

    c = _published("deblurgan_gopro")
    kw = 4
    python2_padw, python3_padw = int(np.ceil((kw - 1) // 2)), int(np.ceil((kw - 1) / 2))
    assert (python2_padw, python3_padw) == (1, 2)
    assert c.discriminator.options.padding == python2_padw
    x = jnp.zeros((1, 32, 32, 3))
    out = {}
    for p in (1, 2):
        d = nets.make_discriminator("patchgan", in_channels=3, base_width=2, num_layers=3, norm="instance", padding=p)
        variables = jax.eval_shape(d.init, jax.random.PRNGKey(0), x)
        out[p] = (jax.eval_shape(d.apply, variables, x).shape, state_lib.count_params(variables["params"]))

    def side(n, p):  # torch Conv2d(k=4) output sides: 3 stride-2 convs, then 2 stride-1 convs
        for stride in (2, 2, 2, 1, 1):
            n = (n + 2 * p - 4) // stride + 1
        return n

    assert out[1][0] == (1, side(32, 1), side(32, 1), 1) == (1, 2, 2, 1)
    assert out[2][0] == (1, side(32, 2), side(32, 2), 1) == (1, 7, 7, 1)
    assert out[1][1] == out[2][1]


def _quadratic_critic(scale):
    return lambda x: 0.5 * scale * jnp.sum(jnp.square(x), axis=(1, 2, 3))  # grad = scale * x


def test_gradient_penalty_forms_against_their_formulas():
    from jaxgan import losses

    rng = np.random.default_rng(0)
    real = rng.normal(size=(3, 4, 5, 2)).astype(np.float32)
    fake = rng.normal(size=(3, 4, 5, 2)).astype(np.float32)
    critic = _quadratic_critic(0.7)
    key = jax.random.PRNGKey(0)
    # Gulrajani et al.: one alpha per sample, norm over all of a sample's axes
    alpha = np.array([0.1, 0.5, 0.9], np.float32)
    x_hat = alpha[:, None, None, None] * real + (1 - alpha[:, None, None, None]) * fake
    norms = np.sqrt(np.sum(np.square(0.7 * x_hat), axis=(1, 2, 3)))
    np.testing.assert_allclose(losses.wgan_gp(critic, real, fake, key, alpha), np.mean((norms - 1) ** 2), rtol=1e-5)
    # DeblurGAN: one alpha for the batch, norm over channels per pixel, mean over (B, H, W)
    x_hat = 0.3 * real + 0.7 * fake
    norms = np.sqrt(np.sum(np.square(0.7 * x_hat), axis=-1))
    np.testing.assert_allclose(losses.wgan_gp_deblurgan(critic, real, fake, key, 0.3), np.mean((norms - 1) ** 2),
                               rtol=1e-5)
    # drawn from the key: the faithful form uses a single alpha (it equals the injected form with it)
    a = float(jax.random.uniform(key, (1,))[0])
    np.testing.assert_allclose(losses.wgan_gp_deblurgan(critic, real, fake, key),
                               losses.wgan_gp_deblurgan(critic, real, fake, key, a), rtol=1e-6)


def test_injected_gp_alphas_reach_the_critic_update():
    config = tiny_config("deblur", norm="instance", adversarial="wgan", gradient_penalty="wgan_gp")
    config.discriminator.conditional = False
    config.discriminator.options.in_channels = 3
    g, d = state_lib.make_modules(config)
    batch = fixed_batch(config)
    d_step = jax.jit(steps.make_step_fns(config).d_step)
    penalties = []
    for seed in (0, 1):
        state = state_lib.create_state(config, g, d, batch, jax.random.PRNGKey(0))
        state = state.replace(key=jax.random.PRNGKey(seed + 10))  # same weights, other step randomness
        _, drawn = d_step(state, {**batch, "gp_alpha": np.asarray(jax.random.uniform(state.key, (1, 4)))}, {})
        # alpha 1: the penalty is taken at the real images, whatever the key
        _, injected = d_step(state, {**batch, "gp_alpha": np.ones((1, 4), np.float32)}, {})
        penalties.append((float(drawn["d_penalty"]), float(injected["d_penalty"])))
    assert penalties[0][1] == pytest.approx(penalties[1][1], rel=1e-6)
    assert penalties[0][0] != pytest.approx(penalties[1][0], rel=1e-4)


def test_perceptual_raw_input_is_the_network_on_the_unnormalised_images():
    from jaxgan import losses
    from jaxgan.nets.vgg import IMAGENET_MEAN, IMAGENET_STD, load_vgg16_params

    params = load_vgg16_params()
    rng = np.random.default_rng(0)
    pred, target = (jnp.asarray(rng.uniform(-1, 1, (1, 8, 8, 3)), jnp.float32) for _ in range(2))

    def as_normalised(x):  # the image whose ImageNet normalisation is x itself
        return (x * jnp.asarray(IMAGENET_STD) + jnp.asarray(IMAGENET_MEAN)) * 2.0 - 1.0

    raw = losses.perceptual_loss(params, pred, target, ("conv2_2",), input="raw")
    same = losses.perceptual_loss(params, as_normalised(pred), as_normalised(target), ("conv2_2",))
    np.testing.assert_allclose(raw, same, rtol=1e-4)
    assert abs(float(raw) - float(losses.perceptual_loss(params, pred, target, ("conv2_2",)))) > 1e-3


@pytest.mark.parametrize("name, needles", [
    ("deblurgan_gopro", (".cache/jaxgan/weights/vgg19.pth", "vgg19-dcbb9e9d.pth", "JAXGAN_VGG19_WEIGHTS",
                         "perceptual_net='vgg16'")),
    ("deblurganv2_mobilenet_gopro", (".cache/jaxgan/weights/mobilenet_v2.pth", "mobilenet_v2-b0353104.pth",
                                     "variants.transfer_file", "JAXGAN_MOBILENET_V2_WEIGHTS"))])
def test_a_published_config_without_its_imagenet_weights_stops_at_once(name, needles, tmp_path, monkeypatch,
                                                                       capsys):
    """`jaxgan train` of DeblurGAN (VGG19) / DeblurGAN-v2 (MobileNetV2) with no weights file: one error
    line naming the file and where to put it, before any model is built."""
    from jaxgan import cli
    from jaxgan.train import state as state_module
    from train_helpers import patch_engine

    patch_engine(monkeypatch.setattr)
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ("JAXGAN_VGG19_WEIGHTS", "JAXGAN_MOBILENET_V2_WEIGHTS"):
        monkeypatch.delenv(var, raising=False)

    def built(config):
        raise AssertionError("a model was built before the weights file was looked for")

    monkeypatch.setattr(state_module, "make_modules", built)
    code = cli.main(["train", "--config", CONFIGS + name + ".py", "--workdir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_unknown_perceptual_net_or_layer_is_refused():
    config = tiny_config("deblur", perceptual_weight=1.0, perceptual_net="vgg11")
    with pytest.raises(ValueError, match="perceptual_net"):
        steps.make_step_fns(config)
    from jaxgan.losses import perceptual

    with pytest.raises(ValueError, match="conv3_5"):
        perceptual.check_net_layers("vgg19", ("conv3_5",))
    assert perceptual.check_net_layers("vgg19", "conv3_4") == ("conv3_4",)


def test_deblurgan_published_values():
    c = _published("deblurgan_gopro")
    assert tuple(c.data.load_size) == (360, 640) and c.data.crop_size == 256 and c.data.flip
    assert (c.loss.perceptual_net, c.loss.perceptual_input, c.loss.perceptual_weight) == ("vgg19", "raw", 100.0)
    # the original's penalty (models/losses.py:141-159): one alpha per batch, norm over channels
    assert c.loss.gradient_penalty == "wgan_gp_deblurgan" and c.loss.n_critic == 5
    lr = optim.make_schedule(c, 1e-4)  # conditional_gan_model.py update_learning_rate, per epoch
    epoch = c.optim.schedule_period
    for e in (0, 150, 151, 200, 299):
        assert float(lr(e * epoch + 7)) == pytest.approx(1e-4 * (1 - max(0, e - 150) / 150), rel=1e-5)


# ---- transfer learning: the optimizer state of unfrozen leaves -----------------------------------

def _update_ratio(tx, start, steps_after=5):
    """Mean |update| / lr of leaf 'a' (frozen until update `start`) over its first updates after
    unfreezing, over the same of the always-trained leaf 'b' over its first updates; 'a' then gets
    the gradients 'b' got from update 0 on (a fresh Adam on both gives ratio 1)."""
    rng = np.random.default_rng(0)
    grads = rng.normal(size=(start + steps_after, 64)).astype(np.float32) + 0.3
    params = {"a": jnp.zeros(64), "b": jnp.zeros(64)}
    state = tx.init(params)
    update = jax.jit(tx.update)
    a_moves, b_moves = [], []
    for t in range(start + steps_after):
        g_a = grads[t - start] if t >= start else rng.normal(size=64).astype(np.float32)
        updates, state = update({"a": jnp.asarray(g_a), "b": jnp.asarray(grads[t])}, state, params)
        if t >= start:
            a_moves.append(float(jnp.mean(jnp.abs(updates["a"]))))
        if t < steps_after:
            b_moves.append(float(jnp.mean(jnp.abs(updates["b"]))))
    return np.mean(a_moves) / np.mean(b_moves)


def test_unfrozen_leaves_start_with_a_fresh_adam_state():
    config = tiny_config()
    config.optim.b1 = 0.5
    make = lambda offset: optim.make_optimizer(config, 1e-3, 1, offset)  # noqa: E731
    tx = optim.with_freezing(make, ("a",), unfreeze_step=300)
    assert _update_ratio(tx, 300) <= 1.5  # measured 1.0
    # the former form (moments fed zeros while Adam's count ran on) fails this measure
    stale = optax_multi(make, 300)
    assert _update_ratio(stale, 300) > 4.0  # measured 8.0
    # schedule position: the first update after unfreezing has the trained leaves' rate at that step
    config.optim.schedule, config.train.steps = "linear_decay", 100
    tx = optim.with_freezing(make, ("a",), unfreeze_step=40)
    params = {"a": jnp.zeros(3), "b": jnp.zeros(3)}
    state = tx.init(params)
    for _ in range(41):
        updates, state = tx.update({"a": jnp.ones(3), "b": jnp.ones(3)}, state, params)
    np.testing.assert_allclose(np.abs(updates["a"]), 1e-3 * (1 - 40 / 100), rtol=1e-4)


def optax_multi(make, start):
    """The stale-count freezing: zeroed gradients into an Adam whose count advances."""
    import optax

    def gate(start):
        def update(updates, count, params=None):
            on = count >= start
            return jax.tree.map(lambda u: jnp.where(on, u, 0.0), updates), count + 1
        return optax.GradientTransformation(lambda p: jnp.zeros((), jnp.int32), update)

    frozen = optax.chain(gate(start), make(0), gate(start))
    return optax.multi_transform({"train": make(0), "frozen": frozen}, {"a": "frozen", "b": "train"})


# ---- DeblurGAN-v2 --------------------------------------------------------------------------------

def test_remap_reflects_and_interpolates_bilinearly():
    import tensorflow as tf

    from jaxgan.data.deblurganv2_aug import remap

    image = tf.constant(np.arange(12, dtype=np.float32).reshape(3, 4, 1))
    x = tf.constant([[0.0, 1.5, -1.0, 4.0]])
    y = tf.constant([[0.0, 0.5, 0.0, 2.0]])
    out = remap(image, x, y).numpy()[0, :, 0]
    # (0,0) -> 0; (row .5, col 1.5) -> mean of 1, 2, 5, 6; borders as cv2.BORDER_REFLECT_101 (the edge
    # not repeated): col -1 reflects to col 1, col 4 (row 2) to col 2
    np.testing.assert_allclose(out, [0.0, 3.5, 1.0, 10.0])


def test_deblurganv2_augmentation_statistics():
    """Paired geometric transforms, half of the time none (then the sharp crop is a plain window of
    the sharp image); corruption of the blurred input only, half of the time."""
    import tensorflow as tf

    from jaxgan.data.pipeline import train_transform

    rng = np.random.default_rng(0)
    sharp = rng.integers(0, 256, (24, 28, 3)).astype(np.uint8)
    example = {"input": tf.constant(sharp), "target": tf.constant(sharp)}
    c = tiny_config().data
    c.crop_size, c.flip, c.rot90, c.augment = 16, False, False, "deblurganv2"
    plain, corrupted = 0, 0
    s01 = sharp.astype(np.float32) / 255
    windows = [s01[t:t + 16, l:l + 16] for t in range(9) for l in range(13)]
    n = 48
    for i in range(n):
        x, y = train_transform(example, np.array([i, 7], np.int64), c, is_mask=False)
        x, y = x.numpy(), y.numpy()
        assert x.shape == y.shape == (16, 16, 3)
        plain += any(np.allclose(y, w, atol=1e-6) for w in windows)
        corrupted += not np.allclose(x, y, atol=1e-6)
    assert 0.25 < plain / n < 0.75 and 0.2 < corrupted / n < 0.8
    with pytest.raises(ValueError, match="augment"):
        c.augment = "strong"
        train_transform(example, np.array([0, 0], np.int64), c, is_mask=False)


def test_deblurganv2_schedule_is_the_released_linear_decay():
    """schedulers.py LinearDecay (config.yaml: lr 1e-4, start_epoch 50, min_lr 1e-7, num_epochs 200):
    lr(e) = base for e < 50, else base - (base - min_lr) / num_epochs x (e - 50), once per epoch."""
    c = _published("deblurganv2_mobilenet_gopro")
    epoch = c.optim.schedule_period
    lr = optim.make_schedule(c, 1e-4)
    for e in (0, 49, 50, 51, 120, 199):
        expected = 1e-4 if e < 50 else 1e-4 - (1e-4 - 1e-7) / 200 * (e - 50)
        for within in (0, epoch - 1):
            assert float(lr(e * epoch + within)) == pytest.approx(expected, rel=1e-5)


def test_imagenet_normalised_mse_against_its_formula():
    config = tiny_config("deblur", pixel="l2", pixel_weight=0.5, pixel_input="imagenet", adversarial_weight=0.0)
    rng = np.random.default_rng(0)
    out = jnp.asarray(rng.uniform(-1, 1, (2, 4, 4, 3)), jnp.float32)
    target = jnp.asarray(rng.uniform(-1, 1, (2, 4, 4, 3)), jnp.float32)
    s = steps.StepConfig.from_config(config)
    total, metrics = steps.supervised_loss(s, out, target, {})
    std = np.array([0.229, 0.224, 0.225], np.float32)
    expected = np.mean(np.square((np.asarray(out) - np.asarray(target)) / 2 / std))
    np.testing.assert_allclose(metrics["g_pixel"], expected, rtol=1e-5)
    np.testing.assert_allclose(total, 0.5 * expected, rtol=1e-5)


def test_deblurganv2_published_values():
    c = _published("deblurganv2_mobilenet_gopro")
    assert (c.optim.b1, c.optim.b2) == (0.9, 0.999)
    assert (c.loss.pixel, c.loss.pixel_weight, c.loss.pixel_input) == ("l2", 0.5, "imagenet")
    assert (c.loss.perceptual_weight, c.loss.perceptual_net, c.loss.perceptual_input) == (0.006, "vgg19", "imagenet")
    assert c.loss.adversarial_weight == 0.001 and c.loss.d_loss_weight == 0.001
    assert c.data.augment == "deblurganv2" and c.eval.train_mode_inference
    assert c.variants.transfer_from == "imagenet:mobilenet_v2" and c.variants.freeze_prefixes == ("backbone/",)
    assert c.variants.unfreeze_step == 3 * c.optim.schedule_period
    assert c.variants.unfreeze_restart == "model"  # train.py:37-40: a new optimizer and scheduler for all of G
    assert c.discriminator.options.padding == 2


# ---- initialisation: PyTorch's default where the originals keep it --------------------------------

def _torch_default_init_errors(torch_module, table, flax_params, skip_prefix=""):
    """Per conv of `table` (flax path -> torch key): jaxgan's initial kernel against torch's default
    init of the same layer, kaiming_uniform(a=sqrt(5)) = U(-b, b) with b = 1/sqrt(torch's fan_in):
    [(path, max|w| / b, std(w) / (b / sqrt(3)), max|bias| / b)]."""
    import torch
    from reference_helpers import flat_tree

    weights = dict(torch_module.named_parameters())
    flat = flat_tree(flax_params)
    rows = []
    for path, (key, _) in table.entries.items():
        if not (path.startswith("params/") and path.endswith("/kernel")) or (
                skip_prefix and path.startswith("params/" + skip_prefix)):
            continue
        fan_in = torch.nn.init._calculate_fan_in_and_fan_out(weights[key])[0]
        bound = 1.0 / np.sqrt(fan_in)
        torch_w = weights[key].detach().numpy()
        assert np.abs(torch_w).max() <= bound * (1 + 1e-6)  # torch's own init: the bound is right
        kernel = flat[path[len("params/"):]]
        bias = flat.get(path[len("params/"):-len("kernel")] + "bias")
        rows.append((path, float(np.abs(kernel).max() / bound), float(kernel.std() / (bound / np.sqrt(3))),
                     None if bias is None else float(np.abs(bias).max() / bound), kernel.size))
    assert rows
    return rows


def _assert_torch_like(rows):
    for path, top, spread, bias, size in rows:
        assert top <= 1.0 + 1e-6, (path, top)  # inside torch's bound
        if size >= 256:  # enough entries for the statistics of U(-b, b)
            assert top >= 0.9 and abs(spread - 1.0) <= 0.15, (path, top, spread)
        if bias is not None:
            assert 0.0 < bias <= 1.0 + 1e-6, (path, bias)


def test_deblurganv2_head_and_discriminators_start_as_pytorch_defaults():
    """DeblurGAN-v2 never re-initialises its FPN head or D's (models/fpn_mobilenet.py, models/networks.py:
    no init call; only the backbone comes from ImageNet): the published config's weight_init='torch'
    gives every head / D conv torch's U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (N(0, 0.02) would not)."""
    pytest.importorskip("torch")
    from jaxgan import nets
    from jaxgan.weights.formats import fpn_mobilenet_table
    from reference import deblurganv2 as ref
    from reference_steps import patchgan_table

    c = _published("deblurganv2_mobilenet_gopro")
    assert c.generator.options.weight_init == "torch" and c.discriminator.options.weight_init == "torch"
    g_options = dict(c.generator.options, base_width=8)
    g = nets.make_generator("fpn_mobilenet", **g_options)
    g_params = jax.jit(g.init)(jax.random.PRNGKey(0), jnp.zeros((1, 64, 64, 3)))["params"]
    g_rows = _torch_default_init_errors(ref.FPNMobileNet(3, num_filters=8, num_filters_fpn=16),
                                        fpn_mobilenet_table(g_options), jax.device_get(g_params), "backbone/")
    d_options = dict(c.discriminator.options, base_width=8)
    d = nets.make_discriminator("double_scale", **d_options)
    d_params = jax.jit(d.init)(jax.random.PRNGKey(1), jnp.zeros((1, 96, 96, 3)))["params"]
    d_table = patchgan_table(3, "instance", "patch.model", "patch/")
    d_table.entries.update(patchgan_table(5, "instance", "full.model", "full/").entries)
    d_rows = _torch_default_init_errors(ref.DoubleScaleD(3, ndf=8, padw=2), d_table, jax.device_get(d_params))
    _assert_torch_like(g_rows + d_rows)
    # pix2pix's N(0, 0.02) on the same layers is not PyTorch's default
    d_normal = nets.make_discriminator("double_scale", **dict(d_options, weight_init="normal"))
    normal_rows = _torch_default_init_errors(ref.DoubleScaleD(3, ndf=8, padw=2), d_table, jax.device_get(
        jax.jit(d_normal.init)(jax.random.PRNGKey(1), jnp.zeros((1, 96, 96, 3)))["params"]))
    with pytest.raises(AssertionError):
        _assert_torch_like(normal_rows)


def test_hung_discriminator_starts_as_pytorch_default():
    """AdvSemiSeg train.py:225-228 builds FCDiscriminator and never re-initialises it."""
    pytest.importorskip("torch")
    from jaxgan import nets
    from jaxgan.weights.formats import fc_discriminator_table
    from reference.advsemiseg import FCDiscriminator

    c = _published("semi_seg")
    options = dict(c.discriminator.options, base_width=16)
    d = nets.make_discriminator("fc", **options)
    params = jax.jit(d.init)(jax.random.PRNGKey(0), jnp.zeros((1, 64, 64, options["in_channels"])))["params"]
    rows = _torch_default_init_errors(FCDiscriminator(options["in_channels"], ndf=16), fc_discriminator_table(),
                                      jax.device_get(params))
    _assert_torch_like(rows)


# ---- DeblurGAN-v2's pool of D outputs: in the state, advanced by D, checkpointed ---------------------

def test_relativistic_pool_lives_in_the_state_and_resumes_exactly(tmp_path):
    """RaGAN-LS with loss.relativistic_centres 'pool': every D update adds D's outputs, G's loss only
    queries (train_step == d_step then g_step, pool included); the pool is saved with the checkpoint
    and a restored run continues exactly."""
    from jaxgan.train.checkpoint import Checkpointer
    from reference_helpers import flat_tree

    config = tiny_config("deblur", norm="none", adversarial="ragan_ls", relativistic_pool_size=6)
    g, d = state_lib.make_modules(config)
    batches = [fixed_batch(config, n) for n in range(3)]
    state = state_lib.create_state(config, g, d, batches[0], jax.random.PRNGKey(0))
    assert int(state.logit_pool["count"]) == 0 and state.logit_pool["real"].shape == (1, 6)
    fns = steps.make_step_fns(config)
    d_step, g_step, train_step = (jax.jit(f) for f in fns)
    fused, _ = train_step(state, batches[0], {})
    split, _ = g_step(*d_step(state, batches[0], {})[:1], batches[0], {})
    for a, b in ((fused.logit_pool, split.logit_pool), (fused.g.params, split.g.params)):
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
            np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6)  # two XLA programs: rounding apart
    assert int(fused.logit_pool["count"]) == 4  # one D update of a batch of 4
    state, _ = train_step(fused, batches[1], {})
    assert int(state.logit_pool["count"]) == 6  # full: the oldest two dropped
    checkpoints = Checkpointer(tmp_path / "run", config)
    checkpoints.save(2, state)
    checkpoints.wait()
    restored = checkpoints.restore(jax.tree.map(jnp.zeros_like, state))
    checkpoints.close()
    np.testing.assert_array_equal(restored.logit_pool["real"], state.logit_pool["real"])
    went_on, _ = train_step(state, batches[2], {})
    resumed, _ = train_step(restored, batches[2], {})
    for path, value in flat_tree(jax.device_get({"pool": went_on.logit_pool, "d": went_on.d.params})).items():
        np.testing.assert_array_equal(value, flat_tree(jax.device_get({"pool": resumed.logit_pool,
                                                                       "d": resumed.d.params}))[path])
    batch_config = tiny_config("deblur", norm="none", adversarial="ragan_ls", relativistic_centres="batch")
    assert state_lib.create_state(batch_config, g, d, batches[0], jax.random.PRNGKey(0)).logit_pool is None


def test_deblurganv2_cutout_always_cuts_once_chosen():
    """aug.py:69-72: albumentations' OneOf applies the transform it picks with force_apply=True, so
    the cutout's own prob 0.5 weights the pick and gates nothing: every call cuts holes."""
    import tensorflow as tf

    from jaxgan.data import deblurganv2_aug

    image = tf.ones([64, 64, 3])
    for i in range(12):
        seeds = tf.random.experimental.stateless_split(tf.constant([i, 3], tf.int64), 8)
        out = deblurganv2_aug._cutout(image, seeds).numpy()
        assert (out == 0).any() and (out == 1).any(), i
