"""jaxgan.train.state: the modules a config makes."""

import pytest

from jaxgan.train import state as state_lib
from train_helpers import tiny_config


def test_discriminator_channel_mismatch_is_a_clear_error():
    config = tiny_config("segment")
    config.discriminator.options.in_channels = 6
    with pytest.raises(ValueError, match="in_channels is 6 .* = 4"):
        state_lib.make_modules(config)
