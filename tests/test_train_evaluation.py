"""jaxgan.train.evaluation: the scores of a generator over an eval split against closed forms and
scikit-image, over the valid rows only."""

import flax.linen as nn
import numpy as np
from scipy import ndimage as scipy_ndimage

from jaxgan.train import run_evaluation
from train_helpers import fake_eval_iterator, loop_test_config, patch_engine, tiny_config


class _Identity(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        return x


class _RedChannelLogit(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        return x[..., :1] - 0.2  # foreground where red > 0.2


def _numpy_psnr(a, b):
    mse = np.mean((((a + 1) / 2) - ((b + 1) / 2)) ** 2, axis=(1, 2, 3))
    return 10 * np.log10(1.0 / mse)


def test_deblur_evaluation_against_closed_form(monkeypatch):
    patch_engine(monkeypatch.setattr)
    config = loop_test_config()
    config.train.eval_lpips = True
    results, samples = run_evaluation(config, _Identity(), {}, num_samples=5)
    batches = list(fake_eval_iterator(config))
    x = np.concatenate([b["input"][b["valid"]] for b in batches])
    t = np.concatenate([b["target"][b["valid"]] for b in batches])
    assert results["num_examples"] == 7  # padded rows of the last batch are left out
    np.testing.assert_allclose(results["input_psnr"], np.mean(_numpy_psnr(x, t)), rtol=1e-5)
    for name in ("psnr", "ssim", "lpips"):  # G = identity: output metrics = input baseline
        np.testing.assert_allclose(results[name], results[f"input_{name}"], rtol=1e-5)
    assert 0 < results["lpips"] and 0 < results["ssim"] < 1
    assert samples["output"].shape == (5, 16, 16, 3)


def test_deblur_evaluation_ssim_and_psnr_equal_scikit_image_on_real_photos(monkeypatch):
    """Evaluation (identity G) over real photo crops, the last batch padded: its SSIM and PSNR are
    the means over the valid rows of scikit-image's on the [0, 1] images."""
    from skimage import data as skdata
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    photo = skdata.astronaut().astype(np.float32) / 127.5 - 1.0
    sharp = np.stack([photo[40 * i:40 * i + 24, 60 * i:60 * i + 24] for i in range(6)])
    blurred = np.stack([np.clip(scipy_ndimage.gaussian_filter(s, (1.2, 1.2, 0)), -1, 1) for s in sharp])
    valid = np.array([True, True, True, True, True, False])

    def real_eval_iterator(config, split=None):
        for rows in (slice(0, 3), slice(3, 6)):
            yield {"input": blurred[rows], "target": sharp[rows], "valid": valid[rows]}

    patch_engine(monkeypatch.setattr, eval_iterator=real_eval_iterator)
    config = loop_test_config()
    config.data.eval_batch_size = 3
    results, _ = run_evaluation(config, _Identity(), {}, lpips=False)
    unit = lambda x: (x.astype(np.float64) + 1) / 2  # noqa: E731
    pairs = [(unit(b), unit(s)) for b, s, v in zip(blurred, sharp, valid) if v]
    ssim = np.mean([structural_similarity(b, s, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                          data_range=1.0, channel_axis=-1) for b, s in pairs])
    psnr = np.mean([peak_signal_noise_ratio(s, b, data_range=1.0) for b, s in pairs])
    assert results["num_examples"] == 5 and 0.3 < ssim < 0.95
    np.testing.assert_allclose(results["ssim"], ssim, rtol=0, atol=2e-5)
    np.testing.assert_allclose(results["input_ssim"], ssim, rtol=0, atol=2e-5)
    np.testing.assert_allclose(results["psnr"], psnr, rtol=0, atol=1e-4)


def test_segment_evaluation_counts_valid_rows_only(monkeypatch):
    patch_engine(monkeypatch.setattr)
    config = tiny_config("segment")
    results, _ = run_evaluation(config, _RedChannelLogit(), {})
    batches = list(fake_eval_iterator(config))
    pred = np.concatenate([(b["input"][..., 0] > 0.2)[b["valid"]] for b in batches]).astype(int)
    labels = np.concatenate([b["target"][b["valid"]] for b in batches])
    iou = [np.sum((pred == c) & (labels == c)) / np.sum((pred == c) | (labels == c)) for c in (0, 1)]
    np.testing.assert_allclose(results["iou"], iou, rtol=1e-6)
    np.testing.assert_allclose(results["mean_iou"], np.mean(iou), rtol=1e-6)
    np.testing.assert_allclose(results["pixel_accuracy"], np.mean(pred == labels), rtol=1e-6)
    assert results["num_examples"] == 7 and len(results["dice"]) == 2


class _RedChannelLogitWithRamps(nn.Module):
    """_RedChannelLogit plus ramps along the rows and the columns, each antisymmetric about the centre:
    flipped both ways and back, the ramps average to zero."""

    @nn.compact
    def __call__(self, x, train: bool = False):
        h, w = x.shape[1], x.shape[2]
        rows = (np.arange(h) - (h - 1) / 2) / h
        cols = (np.arange(w) - (w - 1) / 2) / w
        return x[..., :1] - 0.2 + 2.0 * (rows[:, None, None] + cols[None, :, None])


def test_evaluation_with_four_flip_views_scores_the_mean_of_the_flipped_back_outputs(monkeypatch):
    """eval.flip_views=4 cancels the ramps: the scores are _RedChannelLogit's; one view keeps them
    (other scores); two views cancel the column ramp only."""
    patch_engine(monkeypatch.setattr)
    config = tiny_config("segment")
    plain, _ = run_evaluation(config, _RedChannelLogit(), {})
    scores = {}
    for views in (1, 2, 4):
        config.eval.flip_views = views
        scores[views], _ = run_evaluation(config, _RedChannelLogitWithRamps(), {})
    np.testing.assert_allclose(scores[4]["iou"], plain["iou"], rtol=1e-6)
    assert abs(scores[1]["mean_iou"] - plain["mean_iou"]) > 0.02
    assert abs(scores[2]["mean_iou"] - plain["mean_iou"]) > 0.02


class _Pointwise(nn.Module):
    """A per-pixel generator: its output at a pixel does not depend on the padding around it."""

    @nn.compact
    def __call__(self, x, train: bool = False):
        return nn.tanh(nn.Conv(3, (1, 1))(x) + x)


def test_whole_image_evaluation_with_buckets_compiles_once_per_bucket_and_scores_the_crop(monkeypatch):
    """5 whole images of 5 sizes (batch 1, eval_size 0): 5 compiles of G without buckets, 1 with
    (every size falls into the 128 x 128 bucket); the scores of the cropped outputs are today's."""
    import jax

    from test_predict import _count_compiles

    rng = np.random.default_rng(3)
    sizes = [(21, 30), (25, 17), (31, 50), (20, 45), (30, 35)]
    examples = [tuple(rng.uniform(-1, 1, (2, 1, h, w, 3)).astype(np.float32)) for h, w in sizes]  # (input, target)

    def mixed_sizes(config, split=None):
        for x, t in examples:
            yield {"input": x, "target": t, "valid": np.ones(1, bool)}

    patch_engine(monkeypatch.setattr, eval_iterator=mixed_sizes)
    config = loop_test_config()
    config.data.eval_batch_size, config.data.eval_size = 1, 0
    g = _Pointwise()
    variables = g.init(jax.random.PRNGKey(0), examples[0][0])

    def evaluate(buckets):
        config.eval.buckets = buckets
        runs = []
        count = _count_compiles(lambda: runs.append(run_evaluation(config, g, variables, num_samples=5)), "_generate")
        return count, *runs[0]

    today, results_today, samples_today = evaluate(False)
    bucketed, results_bucketed, samples_bucketed = evaluate(True)
    assert today == len(sizes) and bucketed == 1
    assert results_bucketed["num_examples"] == results_today["num_examples"] == 5
    for name in ("psnr", "ssim", "input_psnr"):
        np.testing.assert_allclose(results_bucketed[name], results_today[name], rtol=0, atol=1e-5)
    assert samples_bucketed["output"].shape == samples_today["output"].shape == (1, 21, 30, 3)  # the first size's
    np.testing.assert_allclose(samples_bucketed["output"], samples_today["output"], rtol=0, atol=1e-5)
