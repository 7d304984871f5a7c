"""Shipped-model files: checksum verified before loading, clear errors, round trip of the arrays."""

import json

import jax
import ml_collections
import numpy as np
import pytest

from jaxgan import pretrained
from jaxgan.config import base_config
from jaxgan.data import prior as prior_lib
from jaxgan.train.checkpoint import config_dict
from jaxgan.train.state import make_modules


def _tiny_model(directory, name="tiny"):
    config = base_config()
    config.generator.options = ml_collections.ConfigDict(dict(
        in_channels=3, out_channels=3, depth=2, base_width=4, norm="none", dropout=False,
        upsample="resize", learn_residual=True))
    g, _ = make_modules(config)
    variables = g.init(jax.random.PRNGKey(0), np.zeros((1, 16, 16, 3), np.float32))
    flat = pretrained.flatten(jax.tree.map(np.asarray, dict(variables)))
    npz = directory / f"{name}.npz"
    np.savez(npz, **flat)
    (directory / f"{name}.json").write_text(json.dumps(
        {"sha256": pretrained.sha256_of(npz), "config": config_dict(config), "card": {}}))
    return g, variables


def test_round_trip_and_prediction_keeps_size_and_range(tmp_path):
    g, variables = _tiny_model(tmp_path)
    config, module, loaded = pretrained.load("tiny", tmp_path)
    chex_equal = jax.tree.map(lambda a, b: np.array_equal(np.asarray(a), b), dict(variables), loaded)
    assert all(jax.tree.leaves(chex_equal))
    from jaxgan.predict import Predictor

    p = Predictor(config.task, config.generator.name, module, loaded, config.generator.options)
    image = np.random.default_rng(0).uniform(-1, 1, (21, 34, 3)).astype(np.float32)
    out = p.predict_array(image)
    assert out.shape == image.shape and out.min() >= -1 and out.max() <= 1
    expected = module.apply(loaded, image[None])[0]
    np.testing.assert_allclose(out, np.clip(expected, -1, 1), atol=1e-5)


def test_corrupted_file_fails_with_checksum_message(tmp_path):
    _tiny_model(tmp_path)
    npz = tmp_path / "tiny.npz"
    data = bytearray(npz.read_bytes())
    data[len(data) // 2] ^= 0xFF
    npz.write_bytes(bytes(data))
    with pytest.raises(pretrained.PretrainedError, match=r"tiny\.npz: checksum mismatch"):
        pretrained.load_variables("tiny", tmp_path)


def test_unknown_name_lists_available(tmp_path):
    _tiny_model(tmp_path, "one")
    with pytest.raises(pretrained.PretrainedError, match=r"'nope'.*available: one"):
        pretrained.load_variables("nope", tmp_path)


def test_flatten_unflatten_inverse():
    tree = {"params": {"a": {"kernel": np.ones((2, 2))}, "b": np.zeros(3)}, "batch_stats": {"m": np.ones(1)}}
    back = pretrained.unflatten(pretrained.flatten(tree))
    assert jax.tree.structure(back) == jax.tree.structure(tree)


# ---- the model shipped in the package (jaxgan/weights/deblur.*) ------------------------------

def test_shipped_deblur_is_listed_and_its_checksum_verifies():
    assert "deblur" in pretrained.available()
    card, variables = pretrained.load_variables("deblur")
    assert card["sha256"] == pretrained.sha256_of(pretrained.PRETRAINED_DIR / "deblur.npz")
    assert (pretrained.PRETRAINED_DIR / "deblur.npz").stat().st_size < 20 * 2**20
    assert {"steps", "metrics_test", "known_limits", "inference_1280x720"} <= set(card["card"])
    assert card["config"]["data"]["prior"] == "blind_deconv"  # predict recomputes the front end itself
    assert "params" in variables


def test_corrupted_shipped_copy_fails_with_one_clear_line(tmp_path, monkeypatch, capsys):
    from PIL import Image

    from jaxgan import cli

    for suffix in (".npz", ".json"):
        (tmp_path / f"deblur{suffix}").write_bytes((pretrained.PRETRAINED_DIR / f"deblur{suffix}").read_bytes())
    data = bytearray((tmp_path / "deblur.npz").read_bytes())
    data[len(data) // 3] ^= 0x01
    (tmp_path / "deblur.npz").write_bytes(bytes(data))
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", tmp_path)
    Image.fromarray(np.zeros((70, 90, 3), np.uint8)).save(tmp_path / "photo.png")
    code = cli.main(["predict", "--pretrained", "deblur", str(tmp_path / "photo.png"), "--output",
                     str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "deblur.npz: checksum mismatch" in err and "reinstall" in err
    assert not list((tmp_path / "out").glob("*.png"))


def _cheap_front_end(image, config, what="image"):
    """Stands in for the blind deconvolution (whose compile takes tens of seconds): the image itself
    as every candidate, so the test exercises the shipped network on an odd-sized input."""
    candidates = (prior_lib.input_channels(config.data) - 3) // 3
    return np.concatenate([image] * (1 + candidates), axis=-1)


def test_shipped_model_predicts_small_non_square_image_keeping_size_and_range(monkeypatch):
    monkeypatch.setattr(prior_lib, "with_prior", _cheap_front_end)
    monkeypatch.setattr(pretrained, "_PREDICTORS", {})
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    out = pretrained.deblur(photo)
    assert out.shape == photo.shape and out.dtype == np.uint8
    unit = pretrained.deblur(photo.astype(np.float32) / 255.0)
    assert unit.shape == photo.shape and unit.min() >= 0.0 and unit.max() <= 1.0
    np.testing.assert_allclose(unit * 255.0, out, atol=1.0)  # the same prediction in both ranges
    config, module, variables = pretrained.load("deblur")
    x = _cheap_front_end(photo.astype(np.float32) / 127.5 - 1.0, config)
    expected = (np.clip(np.asarray(module.apply(variables, x[None]))[0], -1, 1) + 1) / 2
    np.testing.assert_allclose(unit, expected, atol=2e-3)


def test_fine_tuning_from_pretrained_starts_from_its_weights():
    from jaxgan.train import loop, parallel
    from jaxgan.train.state import create_state

    config, module, shipped = pretrained.load("deblur")
    config.train.init_from = "pretrained:deblur"
    g, d = make_modules(config)
    channels = config.generator.options.in_channels
    mesh = parallel.make_mesh()
    fresh = parallel.create_sharded_state(
        lambda key: create_state(config, g, d, {"input": np.zeros((1, 32, 32, channels), np.float32)}, key),
        mesh, jax.random.PRNGKey(1))
    state = loop._init_from(config, fresh, mesh)
    leaves = lambda tree: [np.asarray(x) for x in jax.tree.leaves(tree)]  # noqa: E731
    assert not all(np.array_equal(a, b) for a, b in zip(leaves(fresh.g.params), leaves(shipped["params"])))
    for a, b in zip(leaves(state.g.params), leaves(shipped["params"])):
        np.testing.assert_array_equal(a, b)
    assert int(state.step) == 0  # a fresh run (optimizer and step), not a resume
