"""Semi-supervised segmentation (Hung et al. 2018): confidence mask and self-training loss against
hand-computed cases, the labelled / unlabelled split of the data, and the semi-supervised step."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan.losses import semi
from jaxgan.train import create_state, make_modules, make_step_fns
from train_helpers import enable_compilation_cache, fixed_batch, tiny_config

enable_compilation_cache()


def test_confidence_mask_and_self_training_ce_softmax_hand_computed():
    # one image, 1 x 3 pixels, 2 classes
    logits = jnp.array([[[[2.0, 0.0], [0.0, 1.0], [0.5, 0.0]]]])  # argmax: 0, 1, 0
    d_logits = jnp.array([[[[0.0], [-2.0], [1.0]]]])  # sigmoid: 0.5, 0.1192, 0.7311
    np.testing.assert_allclose(semi.confidence_map(d_logits, 1, 3)[0, 0], [0.5, 0.11920292, 0.73105858], rtol=1e-6)
    loss, selected = semi.self_training_loss(logits, d_logits, threshold=0.2)
    # pixels 0 and 2 pass 0.2; CE with their argmax labels: log(1 + e^-2) and log(1 + e^-0.5)
    expected = (np.log1p(np.exp(-2.0)) + np.log1p(np.exp(-0.5))) / 2
    np.testing.assert_allclose(loss, expected, rtol=1e-6)
    np.testing.assert_allclose(selected, 2 / 3, rtol=1e-6)
    # a threshold above every confidence selects nothing: loss 0 (not NaN)
    loss, selected = semi.self_training_loss(logits, d_logits, threshold=0.9)
    assert float(loss) == 0.0 and float(selected) == 0.0


def test_self_training_ce_sigmoid_and_coarse_d_upsampled():
    logits = jnp.array([[[[1.0], [-3.0]], [[0.2], [-0.1]]]])  # (1, 2, 2, 1): labels 1, 0, 1, 0
    d_logits = jnp.full((1, 1, 1, 1), 0.0)  # coarse D: confidence 0.5 everywhere after upsampling
    conf = semi.confidence_map(d_logits, 2, 2)
    np.testing.assert_allclose(conf, 0.5)
    loss, selected = semi.self_training_loss(logits, d_logits, threshold=0.4)
    # CE of a logit z with its own sign label: log(1 + e^-|z|)
    expected = np.mean(np.log1p(np.exp(-np.abs([1.0, -3.0, 0.2, -0.1]))))
    np.testing.assert_allclose(loss, expected, rtol=1e-6)
    assert float(selected) == 1.0


def test_no_gradient_flows_through_the_mask_or_the_pseudo_labels():
    logits = jnp.array([[[[2.0, 0.0], [0.0, 1.0]]]])
    d_logits = jnp.array([[[[0.0], [1.0]]]])
    grad_d = jax.grad(lambda d: semi.self_training_loss(logits, d, 0.2)[0])(d_logits)
    np.testing.assert_array_equal(grad_d, 0.0)
    # w.r.t. G's logits: the softmax CE gradient softmax - onehot(argmax), over the 2 selected pixels
    grad_g = jax.grad(lambda z: semi.self_training_loss(z, d_logits, 0.2)[0])(logits)
    p = jax.nn.softmax(logits, -1)
    onehot = jax.nn.one_hot(jnp.argmax(logits, -1), 2)
    np.testing.assert_allclose(grad_g, (p - onehot) / 2, rtol=1e-6)


def test_confidence_map_rejects_a_list_of_logits_shape():
    with pytest.raises(ValueError, match="one logit map"):
        semi.confidence_map(jnp.zeros((1, 4, 4, 2)), 4, 4)


def test_resize_aligned_is_corner_aligned_bilinear_by_hand():
    """AdvSemiSeg's interp (nn.Upsample bilinear, align_corners=True): the corner samples stay, the
    ones between interpolate linearly along each axis."""
    x = jnp.array([[0.0, 2.0], [4.0, 6.0]])[None, :, :, None]
    np.testing.assert_allclose(semi.resize_aligned(x, 3, 3)[0, :, :, 0], [[0, 1, 2], [2, 3, 4], [4, 5, 6]],
                               atol=1e-6)
    # 2 -> 4 samples the input at 0, 1/3, 2/3, 1
    np.testing.assert_allclose(semi.resize_aligned(x, 2, 4)[0, 0, :, 0], [0, 2 / 3, 4 / 3, 2], rtol=1e-6)
    np.testing.assert_array_equal(semi.resize_aligned(x, 2, 2), x)
    np.testing.assert_allclose(semi.resize_aligned(jnp.full((1, 1, 1, 1), 3.0), 2, 5), 3.0)
    # the threshold keeps a confidence equal to it (train.py ignores confidence < mask_T only)
    _, selected = semi.self_training_loss(jnp.zeros((1, 1, 2, 2)), jnp.array([[[[0.0], [-1.0]]]]), 0.5)
    assert float(selected) == 0.5


def test_mask_input_probabilities_gives_d_the_unscaled_maps():
    """discriminator.mask_input 'probabilities': D sees softmax(logits) and one_hot(labels) in [0, 1]
    (train.py model_D(F.softmax(pred)), one_hot), 'signed' (the default) 2 p - 1."""
    from jaxgan.train import steps

    logits = jnp.array([[[[1.0, 0.0, -1.0]]]])
    labels = jnp.array([[[2]]])
    for mask_input, scale in (("probabilities", lambda p: p), ("signed", lambda p: 2 * p - 1)):
        config = _semi_config()
        config.discriminator.mask_input = mask_input
        s = steps.StepConfig.from_config(config)
        np.testing.assert_allclose(steps.fake_image(s, logits), scale(jax.nn.softmax(logits, -1)), rtol=1e-6)
        np.testing.assert_allclose(steps.real_image(s, labels, 3)[0, 0, 0], scale(jnp.array([0.0, 0.0, 1.0])))
    config = tiny_config("deblur")
    config.discriminator.mask_input = "probabilities"
    with pytest.raises(ValueError, match="mask_input.*segment"):
        make_step_fns(config)


def test_g_judged_by_d_before_its_update_is_g_step_on_the_state_before():
    """loss.g_sees_updated_d False (Hung et al.: both optimizers step at the end): train_step's G
    update is g_step's on the state before D's update, its D update d_step's."""
    config = _semi_config(semi_adversarial_weight=0.5, semi_self_training_weight=2.0)
    config.loss.g_sees_updated_d = False
    config.discriminator.upsample_logits = True
    g, d = make_modules(config)
    batch = _semi_batch(config)
    state = create_state(config, g, d, batch, jax.random.PRNGKey(0))
    fns = make_step_fns(config)
    both, m = jax.jit(fns.train_step)(state, batch, {})
    g_only, m_g = jax.jit(fns.g_step)(state, batch, {})
    d_only, m_d = jax.jit(fns.d_step)(state, batch, {})
    for new, ref in ((both.g.params, g_only.g.params), (both.d.params, d_only.d.params)):
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7), new, ref)
    np.testing.assert_allclose(m["g_loss"], m_g["g_loss"], rtol=1e-6)
    np.testing.assert_allclose(m["d_loss"], m_d["d_loss"], rtol=1e-6)
    # the default judges G with the updated D: another G loss
    config.loss.g_sees_updated_d = True
    _, m_updated = jax.jit(make_step_fns(config).train_step)(state, batch, {})
    assert float(m_updated["g_loss"]) != float(m["g_loss"])


def test_labelled_rows_are_a_deterministic_disjoint_split():
    from jaxgan.data.pipeline import labelled_rows

    a, b = labelled_rows(500, 1 / 8, seed=0)
    assert len(a) == 62 and len(b) == 438
    assert set(a).isdisjoint(b) and set(a) | set(b) == set(range(500))
    a2, _ = labelled_rows(500, 1 / 8, seed=0)
    np.testing.assert_array_equal(a, a2)
    assert not np.array_equal(a, labelled_rows(500, 1 / 8, seed=1)[0])
    with pytest.raises(ValueError, match="labelled_fraction"):
        labelled_rows(10, 0.0, 0)


def _semi_config(**variants):
    c = tiny_config("segment", norm="none", adversarial="vanilla")
    c.discriminator.conditional = False
    c.discriminator.name = "pixelgan"
    with c.discriminator.unlocked():
        c.discriminator.options = dict(in_channels=1, base_width=4, norm="none")
    c.variants.semi_supervised = True
    c.variants.labelled_fraction = 0.25
    for k, v in variants.items():
        c.variants[k] = v
    return c


def _semi_batch(config, index=0):
    batch = fixed_batch(config, index)
    batch["unlabelled_input"] = fixed_batch(config, 100 + index)["input"]
    return batch


def test_semi_supervised_step_adds_the_adversarial_term_at_once_and_self_training_from_the_start_step():
    """Hung et al. (AdvSemiSeg train.py: semi_start_adv 0, semi_start 5000): the unlabelled
    adversarial term counts from step 0; only the self-training CE waits for semi_start_step."""
    config = _semi_config(semi_adversarial_weight=0.5, semi_self_training_weight=2.0, semi_threshold=0.0)
    g, d = make_modules(config)
    batch = _semi_batch(config)
    state = create_state(config, g, d, batch, jax.random.PRNGKey(0))
    fns = make_step_fns(config)
    _, m = jax.jit(fns.train_step)(state, batch, {})
    assert {"g_semi_adv", "g_semi_ce", "semi_selected"} <= set(m)
    assert all(np.isfinite(float(v)) for v in m.values())
    assert float(m["semi_selected"]) == 1.0  # threshold 0: every pixel passes
    supervised = m["g_adv"] + 100.0 * m["g_mask"]
    np.testing.assert_allclose(m["g_loss"], supervised + 0.5 * m["g_semi_adv"] + 2.0 * m["g_semi_ce"], rtol=1e-5)
    # before semi_start_step the self-training CE weighs nothing, the adversarial term does
    config_late = _semi_config(semi_adversarial_weight=0.5, semi_self_training_weight=2.0, semi_threshold=0.0,
                               semi_start_step=5)
    _, m_late = jax.jit(make_step_fns(config_late).train_step)(state, batch, {})
    np.testing.assert_allclose(m_late["g_loss"], m_late["g_adv"] + 100.0 * m_late["g_mask"]
                               + 0.5 * m_late["g_semi_adv"], rtol=1e-5)


def test_d_also_learns_the_unlabelled_predictions_as_fake():
    """AdvSemiSeg train.py D_remain: D's fake batch is cat(labelled preds, unlabelled preds). With
    the unlabelled images a copy of the labelled ones the fake mean, so D's loss, is unchanged; with
    other unlabelled images it changes, and only when semi_d_unlabelled is on."""
    results = {}
    for d_unlabelled in (True, False):
        config = _semi_config(semi_d_unlabelled=d_unlabelled)
        g, d = make_modules(config)
        batch = _semi_batch(config)
        state = create_state(config, g, d, batch, jax.random.PRNGKey(0))
        d_step = jax.jit(make_step_fns(config).d_step)
        copy = {**batch, "unlabelled_input": batch["input"]}
        results[d_unlabelled] = [d_step(state, b, {})[1] for b in (batch, copy)]
    (other_on, copy_on), (other_off, copy_off) = results[True], results[False]
    for name in ("d_adv", "d_fake_logit"):  # the fakes' mean: unchanged by the copies
        np.testing.assert_allclose(copy_on[name], copy_off[name], rtol=1e-4)
        np.testing.assert_allclose(other_off[name], copy_off[name], rtol=1e-6)  # unlabelled rows ignored
    # other unlabelled images: other fakes in D's mean (untrained D: tiny logits, compared relatively)
    assert abs(float(other_on["d_fake_logit"]) / float(other_off["d_fake_logit"]) - 1.0) > 0.01


def test_semi_supervised_needs_segmentation():
    config = tiny_config("deblur")
    config.variants.semi_supervised = True
    with pytest.raises(ValueError, match="segment"):
        make_step_fns(config)


def test_data_pipeline_serves_disjoint_labelled_and_unlabelled_batches():
    """Real shapes_seg rows, whole images (no crop / flip / rot90), 1/8 of the labels: every labelled
    input is one of the labelled rows' images, every unlabelled input one of the others'; batch n is
    the same after starting at n."""
    import tensorflow as tf

    from jaxgan.config import base_config
    from jaxgan.data import make_semi_train_iterator
    from jaxgan.data.pipeline import labelled_rows
    from jaxgan.data.sources import make_source

    c = base_config()
    c.task, c.data.name = "segment", "shapes_seg"
    c.data.crop_size, c.data.batch_size = 160, 2
    c.data.flip = c.data.rot90 = False
    c.data.cache = False
    c.variants.semi_supervised = True
    c.variants.labelled_fraction = 1 / 8
    source = make_source(c, "train")
    labelled, unlabelled = labelled_rows(len(source), 1 / 8, c.seed)
    images = np.stack([tf.io.decode_png(b, channels=3).numpy() for b in source.columns["image"][labelled]])
    labelled_images = images.astype(np.float32) / 255.0 * 2 - 1

    def row_of(x):
        distance = np.abs(labelled_images - x[None]).reshape(len(labelled_images), -1).max(1)
        return int(np.argmin(distance)), float(distance.min())

    batches = make_semi_train_iterator(c, process_index=0, process_count=1)
    first = [next(batches) for _ in range(4)]
    for batch in first:
        assert set(batch) == {"input", "target", "unlabelled_input"}
        assert batch["unlabelled_input"].shape == batch["input"].shape == (2, 160, 160, 3)
        for x in batch["input"]:
            assert row_of(x)[1] < 1e-5
        for x in batch["unlabelled_input"]:
            assert row_of(x)[1] > 1e-2
    resumed = next(make_semi_train_iterator(c, start_step=3, process_index=0, process_count=1))
    for name in resumed:
        np.testing.assert_array_equal(resumed[name], first[3][name])
