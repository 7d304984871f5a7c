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
