"""jaxgan.bundle: a trained generator as its own artefact. Round trip, atomic writes, checksums, the
bundles a run writes beside its checkpoints (EMA params, pruning, the best one), and workdirs written
before bundles existed, read out of their orbax checkpoints."""

import dataclasses
import shutil
import warnings

import jax
import numpy as np
import pytest

from jaxgan import bundle
from jaxgan.predict import Predictor
from train_helpers import tiny_config


def _tree_equal(a, b) -> bool:
    leaves = zip(jax.tree.leaves(a), jax.tree.leaves(b))
    return jax.tree.structure(a) == jax.tree.structure(b) and all(np.array_equal(x, y) for x, y in leaves)


def _variables(config, seed=0):
    g = bundle.GeneratorBundle(config, {}).module()
    return jax.tree.map(np.asarray, dict(g.init(jax.random.PRNGKey(seed), np.zeros((1, 16, 16, 3), np.float32))))


def test_a_bundle_round_trips_config_variables_inference_and_card(tmp_path):
    config = tiny_config("segment")  # batch norm: params and batch_stats
    saved = bundle.GeneratorBundle(config, _variables(config), bundle.Inference(train_mode=True, tile_size=0),
                                   {"note": "x"})
    saved.save(tmp_path / "g")
    loaded = bundle.GeneratorBundle.load(tmp_path / "g")
    assert set(loaded.variables) == {"params", "batch_stats"}
    assert _tree_equal(loaded.variables, saved.variables)
    assert loaded.config == config and loaded.inference == saved.inference and loaded.card == {"note": "x"}
    with pytest.raises(bundle.BundleError, match="never overwritten"):
        saved.save(tmp_path / "g")


def test_a_half_written_bundle_never_appears_and_a_corrupt_one_is_named(tmp_path, monkeypatch):
    config = tiny_config()
    b = bundle.GeneratorBundle(config, _variables(config))

    def disk_full(path, **arrays):
        open(path, "wb").write(b"PK\x03\x04 half")
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(np, "savez", disk_full)
        m.setattr(shutil, "rmtree", lambda *args, **kwargs: None)  # as if killed: nothing cleans up
        with pytest.raises(OSError):
            b.save(tmp_path / "g")
    assert not (tmp_path / "g").exists()  # what was written lies in a temporary folder only
    b.save(tmp_path / "g")
    assert [p.name for p in tmp_path.iterdir()] == ["g"]  # (the leftover removed by the next save)
    npz = tmp_path / "g" / bundle.VARIABLES_FILE
    data = bytearray(npz.read_bytes())
    data[len(data) // 2] ^= 0xFF
    npz.write_bytes(bytes(data))
    with pytest.raises(bundle.BundleError, match=r"variables\.npz: checksum mismatch"):
        bundle.GeneratorBundle.load(tmp_path / "g")


def test_best_bundle_is_replaced_only_by_a_better_value(tmp_path):
    config = tiny_config()
    variables = _variables(config)
    for step, value in ((2, 20.0), (4, 19.0), (6, 21.0), (8, 21.0)):
        bundle.write_best(tmp_path, step, config, variables, "psnr", value, "max")
    kept = list((tmp_path / bundle.BEST_DIR).iterdir())
    assert [p.name for p in kept] == ["6"]
    assert bundle.read_record(kept[0])["card"]["best"] == {"metric": "psnr", "value": 21.0, "mode": "max", "step": 6}
    bundle.write_best(tmp_path / "min", 1, config, variables, "lpips", 0.3, "min")
    bundle.write_best(tmp_path / "min", 2, config, variables, "lpips", 0.2, "min")
    assert [p.name for p in (tmp_path / "min" / bundle.BEST_DIR).iterdir()] == ["2"]


# ---- beside the checkpoints of a run ---------------------------------------------------------------

@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """(workdir, config, state): checkpoints 1, 2 and 3 (max_to_keep 2) of a tiny run with an EMA whose
    params differ from G's, saved by the training's Checkpointer."""
    from jaxgan.train import checkpoint, state as state_lib

    config = tiny_config("deblur")
    config.train.ema_decay = 0.9
    config.train.max_to_keep = 2
    g, d = state_lib.make_modules(config)
    state = state_lib.create_state(config, g, d, {"input": np.zeros((1, 16, 16, 3), np.float32)},
                                   jax.random.PRNGKey(0))
    state = state.replace(ema_params=jax.tree.map(lambda p: p + 0.25, state.g.params))
    workdir = tmp_path_factory.mktemp("bundle") / "run"
    saver = checkpoint.Checkpointer(workdir, config)
    for step in (1, 2, 3):
        saver.save(step, state)
    saver.wait()
    saver.close()
    return workdir, config, state


def test_each_checkpoint_gets_a_bundle_of_the_ema_params_and_old_ones_go(run):
    workdir, config, state = run
    assert sorted(p.name for p in (workdir / bundle.LATEST_DIR).iterdir()) == ["2", "3"]  # as max_to_keep
    loaded = bundle.load_generator(workdir)
    assert _tree_equal(loaded.variables["params"], state.ema_params)  # the EMA, what a run predicts with
    assert not _tree_equal(loaded.variables["params"], state.g.params)
    assert _tree_equal(loaded.variables["batch_stats"], state.g.batch_stats)
    assert loaded.config == config and loaded.inference == bundle.Inference(train_mode=False, tile_size=768)


def test_a_workdir_without_bundles_predicts_the_same_from_its_checkpoint(run, tmp_path):
    """A workdir as an older jaxgan wrote it (checkpoints only): G read out of the orbax checkpoint gives
    the bundle's variables and the same predictions, bit for bit."""
    workdir, config, _ = run
    old = tmp_path / "old"
    shutil.copytree(workdir, old)
    shutil.rmtree(old / bundle.LATEST_DIR)
    new_bundle, old_bundle = bundle.load_generator(workdir), bundle.load_generator(old)
    assert _tree_equal(old_bundle.variables, new_bundle.variables)
    assert old_bundle.config == new_bundle.config and old_bundle.inference == new_bundle.inference
    image = np.random.default_rng(0).uniform(-1, 1, (20, 28, 3)).astype(np.float32)
    np.testing.assert_array_equal(Predictor(old_bundle).predict_array(image),
                                  Predictor(new_bundle).predict_array(image))
    # a bundle older than the newest checkpoint is passed over for that checkpoint
    other = dataclasses.replace(new_bundle, variables=jax.tree.map(lambda a: a * 0, new_bundle.variables))
    other.save(old / bundle.LATEST_DIR / "1")
    assert _tree_equal(bundle.load_generator(old).variables, new_bundle.variables)


def test_a_damaged_newest_bundle_falls_back_with_one_warning(run, tmp_path):
    workdir, _, state = run
    copy = tmp_path / "copy"
    shutil.copytree(workdir, copy)
    (copy / bundle.LATEST_DIR / "3" / bundle.VARIABLES_FILE).write_bytes(b"garbage")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = bundle.load_generator(copy)
    assert [str(w.message) for w in caught if issubclass(w.category, bundle.DamagedBundleWarning)][0].startswith(
        "generator bundle 3")
    assert _tree_equal(loaded.variables["params"], state.ema_params)  # bundle 2 (same state)


def test_an_empty_workdir_is_one_error_naming_it(tmp_path):
    with pytest.raises(bundle.BundleError, match=str(tmp_path)):
        bundle.load_generator(tmp_path)
