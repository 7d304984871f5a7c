"""Shipped models (generator bundles in jaxgan/pretrained/): checksum verified before loading, clear
errors, round trip of the arrays."""

import json

import jax
import ml_collections
import numpy as np
import pytest

from jaxgan import bundle, pretrained
from jaxgan.config import base_config


def _tiny_model(directory, name="tiny"):
    config = base_config()
    config.generator.options = ml_collections.ConfigDict(dict(
        in_channels=3, out_channels=3, depth=2, base_width=4, norm="none", dropout=False,
        upsample="resize", learn_residual=True))
    g = bundle.GeneratorBundle(config, {}).module()
    variables = g.init(jax.random.PRNGKey(0), np.zeros((1, 16, 16, 3), np.float32))
    bundle.GeneratorBundle(config, jax.tree.map(np.asarray, dict(variables))).save(directory / name)
    return g, variables


def test_round_trip_and_prediction_keeps_size_and_range(tmp_path):
    g, variables = _tiny_model(tmp_path)
    model = pretrained.load("tiny", tmp_path)
    module, loaded = model.module(), model.variables
    chex_equal = jax.tree.map(lambda a, b: np.array_equal(np.asarray(a), b), dict(variables), loaded)
    assert all(jax.tree.leaves(chex_equal))
    from jaxgan.predict import Predictor

    p = Predictor(model)
    image = np.random.default_rng(0).uniform(-1, 1, (21, 34, 3)).astype(np.float32)
    out = p.predict_array(image)
    assert out.shape == image.shape and out.min() >= -1 and out.max() <= 1
    expected = module.apply(loaded, image[None])[0]
    np.testing.assert_allclose(out, np.clip(expected, -1, 1), atol=1e-5)


def test_corrupted_file_fails_with_checksum_message(tmp_path):
    _tiny_model(tmp_path)
    npz = tmp_path / "tiny" / bundle.VARIABLES_FILE
    data = bytearray(npz.read_bytes())
    data[len(data) // 2] ^= 0xFF
    npz.write_bytes(bytes(data))
    with pytest.raises(pretrained.PretrainedError, match=r"tiny/variables\.npz: checksum mismatch"):
        pretrained.load_variables("tiny", tmp_path)


def test_unknown_name_lists_available(tmp_path):
    _tiny_model(tmp_path, "one")
    with pytest.raises(pretrained.PretrainedError, match=r"'nope'.*available: one"):
        pretrained.load_variables("nope", tmp_path)


def test_flatten_unflatten_inverse():
    rng = np.random.default_rng(0)
    tree = {"params": {"a": {"kernel": rng.normal(size=(2, 2))}, "b": rng.normal(size=3)},
            "batch_stats": {"m": rng.normal(size=1)}}
    back = bundle.unflatten(bundle.flatten(tree))
    assert jax.tree.structure(back) == jax.tree.structure(tree)
    for got, want in zip(jax.tree.leaves(back), jax.tree.leaves(tree), strict=True):
        np.testing.assert_array_equal(got, want)



# ---- the deblurring model shipped in the package (jaxgan/pretrained/deblur/) ------------------------

SHIPPED = "deblur"


def test_shipped_deblur_model_is_listed_checksummed_and_carded():
    assert SHIPPED in pretrained.available()
    card, variables = pretrained.load_variables(SHIPPED)  # verifies the sha256 first
    assert (pretrained.PRETRAINED_DIR / SHIPPED / bundle.VARIABLES_FILE).stat().st_size < 20 * 2**20
    info = card["card"]
    for key in ("config_file", "steps", "train_seconds", "metrics_test", "inference_1280x720", "known_limits",
                "note", "validation_split"):
        assert info.get(key) not in (None, ""), key
    assert info["metrics_test"]["psnr"] > info["metrics_test"]["input_psnr"]
    # on full-size photos blurred by a kernel generator it never saw, better than its input and its front end
    heldout = info["metrics_heldout_tremor"]
    assert heldout["psnr"] > heldout["prior_psnr"] > heldout["input_psnr"]
    assert heldout["lpips"] < heldout["prior_lpips"] < heldout["input_lpips"]
    assert set(variables) >= {"params"}


def test_corrupted_copy_of_the_shipped_model_is_one_clear_line(tmp_path, monkeypatch, capsys):
    import shutil

    from jaxgan import cli, images

    shutil.copytree(pretrained.PRETRAINED_DIR / SHIPPED, tmp_path / SHIPPED)
    npz = tmp_path / SHIPPED / bundle.VARIABLES_FILE
    data = bytearray(npz.read_bytes())
    data[len(data) // 3] ^= 0x01
    npz.write_bytes(bytes(data))
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", tmp_path)
    photo = tmp_path / "photo.png"
    images.write_png(photo, np.full((64, 64, 3), 128, np.uint8))
    code = cli.main(["predict", "--pretrained", SHIPPED, str(photo), "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert "checksum mismatch" in err[0] and "deblur/variables.npz" in err[0]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# Stated floor for the shipped model on a held-out crop (chelsea, a test-split photo, 128 x 144,
# realistic blur, seed 3): blurred 24.7 dB, shipped model 29.1 dB (2026-12-07).
PSNR_FLOOR_DB, GAIN_FLOOR_DB = 28.0, 3.0


def _psnr(a, b):
    return 10 * np.log10(255.0**2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


@pytest.fixture(scope="module")
def held_crop():
    """(sharp, blurred, the shipped model's output) of the held-out crop."""
    from jaxgan.data import blur, photo_blur
    from jaxgan.predict import deblur

    assert "chelsea.png" in photo_blur.TEST_PHOTOS  # never trained on
    sharp = photo_blur.skimage_photo("chelsea.png")[20:148, 90:234]
    blurred, _ = blur.synthesize_blur(np.random.default_rng(3), sharp, "realistic")
    return sharp, blurred, deblur(blurred)


def test_shipped_model_deblurs_a_held_non_square_photo_above_its_psnr_floor(held_crop):
    from jaxgan.predict import deblur

    sharp, blurred, out = held_crop
    assert out.shape == blurred.shape and out.dtype == np.uint8
    before, after = _psnr(blurred, sharp), _psnr(out, sharp)
    assert after >= PSNR_FLOOR_DB and after - before >= GAIN_FLOOR_DB, (before, after)
    unit = deblur(blurred.astype(np.float32) / 255.0)
    assert unit.shape == blurred.shape and unit.min() >= 0.0 and unit.max() <= 1.0
    np.testing.assert_allclose(unit * 255.0, out, atol=1.0)


def test_predict_pretrained_deblur_through_the_command_line(held_crop, tmp_path, capsys):
    from PIL import Image

    from jaxgan import cli, images

    sharp, blurred, out = held_crop
    images.write_png(tmp_path / "held.png", blurred)
    code = cli.main(["predict", "--pretrained", SHIPPED, str(tmp_path / "held.png"), "--output",
                     str(tmp_path / "out")])
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["held.png"]
    with Image.open(tmp_path / "out" / "held.png") as im:
        written = np.asarray(im.convert("RGB"))
    np.testing.assert_array_equal(written, out)  # the library call's result, so above the floor too
    assert _psnr(written, sharp) >= PSNR_FLOOR_DB


def test_fine_tuning_starts_from_the_shipped_weights(tmp_path, monkeypatch):
    """`train.init_from='pretrained:deblur'` with zero learning rates: after one step the run's
    generator (its EMA, what a run exports) is the shipped one, to float rounding of the EMA update;
    a fresh initialisation would differ by orders of magnitude more."""
    from jaxgan import config_io
    from jaxgan.train import restore_generator, train_and_evaluate
    from train_helpers import patch_engine

    card, shipped = pretrained.load_variables(SHIPPED)
    config = config_io.config_from_json(json.dumps(card["config"]))
    config.data.crop_size = 32
    config.data.batch_size = 2
    config.data.eval_batch_size = 2
    config.optim.g_lr = 0.0
    config.optim.d_lr = 0.0
    config.optim.warmup_steps = 0
    config.train.steps = 1
    config.train.eval_every = 1
    config.train.eval_lpips = False
    config.train.checkpoint_every = 1
    config.train.best_metric = ""
    config.train.init_from = f"pretrained:{SHIPPED}"
    channels = 3 * (1 + len(config.data.prior_options.deconv_weights))

    def batch(seed):
        x = np.random.default_rng(seed).uniform(-1, 1, (2, 32, 32, channels)).astype(np.float32)
        return {"input": x, "target": x[..., 3:6].copy()}

    def train_batches(config, start_step):
        while True:
            yield batch(start_step)

    def eval_batches(config, split=None):
        yield {**batch(99), "valid": np.ones(2, bool)}

    patch_engine(monkeypatch.setattr, train_iterator=train_batches, eval_iterator=eval_batches)
    train_and_evaluate(config, str(tmp_path / "w"))
    _, _, variables = restore_generator(str(tmp_path / "w"))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(np.asarray(a), b, rtol=1e-6, atol=1e-7),
                 dict(variables["params"]), shipped["params"])
