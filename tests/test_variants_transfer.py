"""Transfer learning: loading by path where shapes match (report of loaded / skipped and why), from
VGG16 and from another run's workdir; freezing (bitwise unchanged) and unfreezing on a schedule."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxgan.train import optim, transfer
from train_helpers import enable_compilation_cache, patch_engine, tiny_config

enable_compilation_cache()


def _tree():
    return {"enc": {"conv": {"kernel": jnp.zeros((3, 3, 3, 4)), "bias": jnp.zeros((4,))},
                    "extra": {"kernel": jnp.zeros((1, 1, 4, 4))}},
            "dec": {"kernel": jnp.zeros((3, 3, 4, 3))}}


def test_load_matching_reports_loaded_and_skipped_with_reasons():
    source = {"enc": {"conv": {"kernel": jnp.ones((3, 3, 3, 4)), "bias": jnp.ones((5,))}},
              "dec": {"kernel": jnp.ones((3, 3, 4, 3))}}
    new, report = transfer.load_matching(_tree(), source, prefixes=("enc/",))
    assert report.loaded == [("enc/conv/kernel", "enc/conv/kernel")]
    assert report.skipped == [("enc/conv/bias", "shape mismatch: source (5,), model (4,)"),
                              ("enc/extra/kernel", "missing in source (enc/extra/kernel)")]
    np.testing.assert_array_equal(new["enc"]["conv"]["kernel"], 1.0)
    np.testing.assert_array_equal(new["enc"]["conv"]["bias"], 0.0)
    np.testing.assert_array_equal(new["dec"]["kernel"], 0.0)  # outside the prefixes: untouched, unreported
    text = str(report)
    assert "1 loaded, 2 skipped" in text and "shape mismatch" in text and "missing in source" in text
    _, everything = transfer.load_matching(_tree(), source)  # no prefixes: all leaves considered
    assert [p for p, _ in everything.loaded] == ["dec/kernel", "enc/conv/kernel"]


def test_load_from_vgg16_with_renaming():
    from jaxgan.nets.vgg import load_vgg16_params

    vgg = load_vgg16_params()
    target = {"stem": {"kernel": jnp.zeros((3, 3, 3, 64)), "bias": jnp.zeros((64,))},
              "next": {"kernel": jnp.zeros((4, 4, 64, 64))}}
    new, report = transfer.load_matching(target, vgg, rename=("stem=Conv_0", "next=Conv_1"))
    assert report.loaded == [("stem/bias", "Conv_0/bias"), ("stem/kernel", "Conv_0/kernel")]
    assert report.skipped == [("next/kernel", "shape mismatch: source (3, 3, 64, 64), model (4, 4, 64, 64)")]
    np.testing.assert_array_equal(new["stem"]["kernel"], vgg["Conv_0"]["kernel"])
    np.testing.assert_array_equal(new["stem"]["bias"], vgg["Conv_0"]["bias"])


def test_freezing_keeps_params_bitwise_until_the_unfreeze_step():
    params = {"a": jnp.linspace(-1, 1, 5), "b": jnp.linspace(1, 2, 5)}
    grads = {"a": jnp.ones(5), "b": jnp.ones(5)}
    tx = optim.with_freezing(lambda offset: optax.adam(0.1), ("a",), unfreeze_step=2)
    state = tx.init(params)
    history = []
    for _ in range(3):
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
        history.append(jax.tree.map(np.asarray, params))
    a0 = np.linspace(-1, 1, 5, dtype=np.float32)
    np.testing.assert_array_equal(history[0]["a"], a0)
    np.testing.assert_array_equal(history[1]["a"], a0)
    assert np.all(history[2]["a"] < a0)  # trained from update 3 (train step 3) on
    assert np.all(history[0]["b"] < np.linspace(1, 2, 5, dtype=np.float32))
    never = optim.with_freezing(lambda offset: optax.adam(0.1), ("a",), unfreeze_step=0)
    updates, _ = never.update(grads, never.init(params), params)
    np.testing.assert_array_equal(updates["a"], 0.0)
    with pytest.raises(ValueError, match="unfreeze_step"):
        optim.with_freezing(lambda offset: optax.adam(0.1), ("a",), unfreeze_step=-1)


def test_unfreeze_counts_train_steps_for_a_discriminator_with_n_critic_updates():
    params = {"a": jnp.ones(2)}
    tx = optim.with_freezing(lambda offset: optax.sgd(1.0), ("a",), unfreeze_step=1, updates_per_step=3)
    state = tx.init(params)
    moved = []
    for _ in range(4):
        updates, state = tx.update({"a": jnp.ones(2)}, state, params)
        moved.append(bool(np.any(np.asarray(updates["a"]) != 0)))
    assert moved == [False, False, False, True]


def test_transfer_from_a_run_and_frozen_encoder_through_the_training_loop(tmp_path, monkeypatch):
    """Run A (U-Net depth 2) trains 1 step; run B (U-Net depth 3) loads A's encoder convs 'down_'
    where shapes match, freezes them and trains 3 steps: they stay bitwise equal to A's."""
    from jaxgan.train import train_and_evaluate
    from jaxgan.train.restore import restore_run
    from jaxgan.train import make_modules, create_state
    from train_helpers import fixed_batch

    patch_engine(monkeypatch.setattr)
    a = tiny_config("deblur", norm="none", steps=1)
    a.train.eval_lpips = False
    train_and_evaluate(a, str(tmp_path / "a"))
    state_a = restore_run(str(tmp_path / "a"))[3]

    b = tiny_config("deblur", norm="none", steps=3)
    b.train.eval_lpips = False
    b.seed = 1
    with b.generator.unlocked():
        b.generator.options["depth"] = 3
    b.variants.transfer_from = str(tmp_path / "a")
    b.variants.transfer_prefixes = ("down_",)
    b.variants.freeze_prefixes = ("down_0/", "down_1/")
    captured = {}
    real = transfer.apply_transfer

    def spy(*args, **kwargs):
        state, report = real(*args, **kwargs)
        captured["report"] = report
        return state, report

    monkeypatch.setattr(transfer, "apply_transfer", spy)
    train_and_evaluate(b, str(tmp_path / "b"))
    report = captured["report"]
    loaded = {p for p, _ in report.loaded}
    assert loaded == {"down_0/kernel", "down_0/bias", "down_1/kernel", "down_1/bias"}
    assert dict(report.skipped) == {"down_2/kernel": "missing in source (down_2/kernel)",
                                    "down_2/bias": "missing in source (down_2/bias)"}
    state_b = restore_run(str(tmp_path / "b"))[3]
    g_b, d_b = make_modules(b)
    assert int(state_b.step) == 3
    for name in ("down_0", "down_1"):
        for leaf in ("kernel", "bias"):
            np.testing.assert_array_equal(state_b.g.params[name][leaf], state_a.g.params[name][leaf])
    fresh = create_state(b, g_b, d_b, fixed_batch(b), jax.random.PRNGKey(b.seed))
    assert not np.array_equal(state_b.g.params["down_2"]["kernel"], fresh.g.params["down_2"]["kernel"])
