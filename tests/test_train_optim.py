"""jaxgan.train.optim: learning-rate schedules against their closed forms."""

import numpy as np
import pytest

from jaxgan.train import optim
from train_helpers import tiny_config


@pytest.mark.parametrize("kind", ["constant", "linear_decay", "cosine"])
def test_schedules_against_closed_forms(kind):
    config = tiny_config("deblur", steps=100)
    config.optim.schedule = kind
    config.optim.decay_start = 60
    config.optim.warmup_steps = 10 if kind == "cosine" else 0
    lr = optim.make_schedule(config, 1.0)
    at = lambda step: float(lr(step))  # noqa: E731
    if kind == "constant":
        assert at(0) == at(99) == 1.0
    elif kind == "linear_decay":
        assert at(0) == at(60) == 1.0
        np.testing.assert_allclose([at(70), at(90), at(100)], [0.75, 0.25, 0.0], atol=1e-6)
    else:
        np.testing.assert_allclose([at(0), at(4), at(10), at(55), at(100)],
                                   [0.1, 0.5, 1.0, 0.5, 0.0], atol=1e-6)
    d_lr = optim.make_schedule(config, 1.0, updates_per_step=5)  # D: 5 updates per train step
    assert float(d_lr(5 * 70 + 4)) == pytest.approx(at(70))


def test_unfreeze_restart_model_gives_the_whole_model_a_new_optimizer_and_schedule():
    """restart="model" (DeblurGAN-v2 train.py:35-40: a new optimizer and scheduler for all of G at the
    warm-up epoch): before the switch the frozen leaves stay put and the others follow make_tx(0);
    from the switch on every leaf follows a fresh make_tx(0), schedule from its start."""
    import jax
    import jax.numpy as jnp
    import optax

    schedule = optax.linear_schedule(1e-2, 1e-3, 10)
    make_tx = lambda offset: optax.adam(lambda count: schedule(count + offset))  # noqa: E731
    params = {"backbone": {"w": jnp.ones(3)}, "head": {"w": jnp.ones(2)}}
    grads = [jax.tree.map(lambda p, i=i: jnp.sin(jnp.arange(p.size) + i) + 0.1 * i, params) for i in range(5)]
    start = 2
    tx = optim.with_freezing(make_tx, ("backbone/",), start, restart="model")
    before_tx, after_tx = make_tx(0), make_tx(0)  # what the original runs: one Adam, then a new one
    state, before, after = tx.init(params), before_tx.init(params["head"]), after_tx.init(params)
    for i, g in enumerate(grads):
        updates, state = tx.update(g, state, params)
        if i < start:
            expected_head, before = before_tx.update(g["head"], before, params["head"])
            np.testing.assert_array_equal(updates["backbone"]["w"], 0.0)
            np.testing.assert_allclose(updates["head"]["w"], expected_head["w"], rtol=1e-6)
        else:
            expected, after = after_tx.update(g, after, params)
            for part in ("backbone", "head"):
                np.testing.assert_allclose(updates[part]["w"], expected[part]["w"], rtol=1e-6)
    # the default keeps the head's Adam and starts the backbone at the shared schedule position
    tx = optim.with_freezing(make_tx, ("backbone/",), start)
    state, head = tx.init(params), make_tx(0).init(params["head"])
    for g in grads:
        updates, state = tx.update(g, state, params)
        expected_head, head = make_tx(0).update(g["head"], head, params["head"])
        np.testing.assert_allclose(updates["head"]["w"], expected_head["w"], rtol=1e-6)
