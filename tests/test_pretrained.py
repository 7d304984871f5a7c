"""Shipped-model files: checksum verified before loading, clear errors, round trip of the arrays."""

import json

import jax
import ml_collections
import numpy as np
import pytest

from jaxgan import pretrained
from jaxgan.predict import load_pretrained
from jaxgan.config import base_config
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
    config, module, loaded = load_pretrained("tiny", tmp_path)
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

