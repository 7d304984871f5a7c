"""jaxgan.data.prior: the blind-deconvolution input prior computed once per example, carried through
crops, flips and rotations of the training pipeline, in evaluation crops and in `Predictor`."""

import os

import numpy as np
import pytest

from jaxgan.config import base_config
from jaxgan.data import DataError, blur, make_eval_iterator, make_train_iterator, photo_blur, prior

ONE = dict(process_index=0, process_count=1)


def _config(data_dir, **data):
    c = base_config()
    c.data.name = "photo_blur"
    c.data.data_dir = data_dir
    c.data.num_train_examples = 8  # test split: 8
    c.data.crop_size = 32
    c.data.batch_size = 2
    c.data.eval_batch_size = 2
    c.data.prior = "blind_deconv"
    c.data.prior_options.kernel_size = 15  # small and quick; photo_blur's kernels are up to 25 px
    c.data.prior_options.iterations = 2
    c.data.prior_cache_dir = os.path.join(data_dir, "priors") if data_dir else ""
    for k, v in data.items():
        c.data[k] = v
    return c


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


def _psnr(a, b):
    return 10 * np.log10(255.0**2 / np.mean((a.astype(np.float64) - b) ** 2))


def test_prior_channels_deblur_each_image(tmp_path):
    c = _config(str(tmp_path))
    c.data.prior_options.iterations = 5
    photo = photo_blur.skimage_photo("astronaut.png")[30:200, 170:340].astype(np.float64) / 255.0
    sharp, blurred = [], []
    kernels = [blur.linear_motion_kernel(9, 60), blur.linear_motion_kernel(9, 120),
               blur.camera_shake_kernel(np.random.default_rng(0), 9, 13)]
    for kernel, size in zip(kernels, (128, 128, 112)):  # two shapes: two compiled batches
        b = blur.blur_image(photo, kernel)[20:20 + size, 20:20 + size]
        sharp.append(np.round(photo[20:20 + size, 20:20 + size] * 255))
        blurred.append(np.round(b * 255).astype(np.uint8))
    out = prior.with_prior_uint8(blurred, c)
    assert [o.shape for o in out] == [(128, 128, 6), (128, 128, 6), (112, 112, 6)]
    for o, b, s in zip(out, blurred, sharp):
        np.testing.assert_array_equal(o[..., :3], b)
        print(_psnr(o[..., 3:], s) - _psnr(b, s))
        assert o.dtype == np.uint8 and _psnr(o[..., 3:], s) > _psnr(b, s) + 2.0


def test_pipeline_batches_carry_the_prior_through_every_transform(data_dir):
    c = _config(data_dir, eval_size=0, eval_batch_size=1, num_eval_examples=1)
    full = next(make_eval_iterator(c, **ONE))["input"][0]  # whole 256x256 example 0 with its prior
    assert full.shape == (256, 256, 6)
    c = _config(data_dir, flip=True, rot90=True, eval_size=64)
    batch = next(make_train_iterator(c, **ONE))
    assert batch["input"].shape == (2, 32, 32, 6) and batch["target"].shape == (2, 32, 32, 3)
    # every train crop is a window of some example transformed alike in all six channels: the
    # blurred and prior channels of a crop keep the relation they have in the whole example
    for x in batch["input"]:
        assert not np.allclose(x[..., :3], x[..., 3:], atol=0.02)
    centre = next(make_eval_iterator(c, **ONE))["input"][0]
    np.testing.assert_array_equal(centre, full[96:160, 96:160])


def test_prior_needs_the_cache_and_a_deblur_task(data_dir):
    with pytest.raises(DataError, match="needs config.data.cache=true"):
        make_train_iterator(_config(data_dir, cache=False), **ONE)
    c = _config(data_dir)
    c.task = "segment"
    with pytest.raises(ValueError, match="is for task 'deblur'"):
        prior.check(c)
    with pytest.raises(ValueError, match="valid: none, blind_deconv"):
        prior.check(_config(data_dir, prior="wiener"))
    c = _config(data_dir)
    c.data.prior_options.kernel_size = 16
    with pytest.raises(ValueError, match="odd"):
        prior.check(c)


def test_too_small_images_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"20x24 is too small .* >= 30 px"):
        prior.with_prior_uint8([np.zeros((24, 20, 3), np.uint8)], _config(str(tmp_path)), what="photo.png")
    with pytest.raises(ValueError, match=r"^photo\.png of size 20x24 is too small"):
        prior.with_prior(np.zeros((24, 20, 3), np.float32), _config(str(tmp_path)), what="photo.png")


def test_several_deconvolution_weights_and_the_disk_cache(tmp_path, monkeypatch):
    c = _config(str(tmp_path))
    c.data.prior_options.deconv_weights = (1e-2, 1e-3)
    assert prior.input_channels(c.data) == 9
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (40, 40, 3), dtype=np.uint8) for _ in range(2)]
    first = prior.with_prior_uint8(images, c)
    assert [x.shape for x in first] == [(40, 40, 9)] * 2
    # weaker regularisation: a rougher deconvolution of the same image
    tv = lambda a: np.abs(np.diff(a.astype(np.float64), axis=0)).mean()  # noqa: E731
    assert tv(first[0][..., 6:]) > tv(first[0][..., 3:6])
    assert len(list((tmp_path / "priors").glob("blind_deconv_*.npz"))) == 1

    def fail(*args, **kwargs):
        raise AssertionError("recomputed a cached prior")

    monkeypatch.setattr(prior, "compute_priors", fail)
    for a, b in zip(prior.with_prior_uint8(images, c), first):
        np.testing.assert_array_equal(a, b)
    changed = [images[0], images[1] ^ 1]  # other data: another key, so computed again
    with pytest.raises(AssertionError, match="recomputed"):
        prior.with_prior_uint8(changed, c)
    c.data.prior_options.gamma = 4.0  # other options: likewise
    with pytest.raises(AssertionError, match="recomputed"):
        prior.with_prior_uint8(images, c)


def test_evaluation_reports_the_prior_as_a_baseline_and_predictor_computes_it(data_dir):
    import jax

    from jaxgan.nets.nafnet import NAFNet
    from jaxgan.predict import Predictor
    from jaxgan.train.evaluation import run_evaluation

    c = _config(data_dir, eval_size=64, num_eval_examples=4)
    c.train.eval_lpips = False
    c.generator.name = "nafnet"
    g = NAFNet(in_channels=6, out_channels=3, residual_from=3, base_width=4, depth=1, blocks=1,
               middle_blocks=0, space_to_depth=2)
    variables = g.init(jax.random.key(0), np.zeros((1, 64, 64, 6), np.float32))  # identity on the prior
    results, samples = run_evaluation(c, g, variables, num_samples=2)
    assert results["num_examples"] == 4
    assert results["psnr"] == pytest.approx(results["prior_psnr"], abs=1e-4)
    assert results["ssim"] == pytest.approx(results["prior_ssim"], abs=1e-5)
    assert results["prior_psnr"] != pytest.approx(results["input_psnr"], abs=0.05)
    assert samples["input"].shape == (2, 64, 64, 6)

    image = next(make_eval_iterator(c, **ONE))["input"][0, ..., :3]
    predictor = Predictor.from_config(c, g, variables)
    out = predictor.predict_array(image)
    np.testing.assert_allclose(out, prior.with_prior(image, c)[..., 3:], atol=1e-6)
    assert np.abs(out - image).mean() > 0.01
