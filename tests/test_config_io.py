"""Config files and command-line overrides: types kept, unknown keys rejected with the valid ones."""

from pathlib import Path

import pytest

from jaxgan import config_io
from jaxgan.config import base_config

CONFIGS = Path(__file__).resolve().parents[1] / "experiments" / "configs"


def test_every_experiment_config_loads():
    names = sorted(p.name for p in CONFIGS.glob("*.py"))
    assert {"pix2pix_pets_seg.py", "deblurgan_gopro.py", "deblurganv2_mobilenet_gopro.py"} <= set(names)
    for name in names:
        config = config_io.load_config(CONFIGS / name)
        assert config.task in ("deblur", "segment"), name


def test_overrides_keep_types():
    c = config_io.load_config(CONFIGS / "deblurgan_gopro.py", {
        "train.steps": "10", "optim.g_lr": "3e-4", "data.flip": "false",
        "loss.perceptual_layers": "conv2_2,conv3_3", "data.path": "/x/y",
        "generator.options.num_blocks": "2"})
    assert c.train.steps == 10 and isinstance(c.train.steps, int)
    assert c.optim.g_lr == pytest.approx(3e-4)
    assert c.data.flip is False
    assert c.loss.perceptual_layers == ("conv2_2", "conv3_3")
    assert c.data.path == "/x/y"
    assert c.generator.options.num_blocks == 2


def test_unknown_key_lists_valid_keys():
    with pytest.raises(config_io.ConfigError) as e:
        config_io.load_config(CONFIGS / "deblurgan_gopro.py", {"train.stepz": "3"})
    msg = str(e.value)
    assert "train.stepz" in msg and "steps" in msg and "eval_every" in msg


def test_bad_value_names_key_and_type():
    with pytest.raises(config_io.ConfigError, match=r"train\.steps.*int"):
        config_io.load_config(CONFIGS / "deblurgan_gopro.py", {"train.steps": "ten"})


def test_missing_file_and_missing_get_config(tmp_path):
    with pytest.raises(config_io.ConfigError, match="does not exist"):
        config_io.load_config(tmp_path / "nope.py")
    bad = tmp_path / "bad.py"
    bad.write_text("x = 1\n")
    with pytest.raises(config_io.ConfigError, match="get_config"):
        config_io.load_config(bad)


def test_json_round_trip():
    c = config_io.load_config(CONFIGS / "deblurganv2_mobilenet_gopro.py", {"train.steps": "7"})
    back = config_io.config_from_json(config_io.config_to_json(c))
    assert back.train.steps == 7
    assert back.loss.adversarial == "ragan_ls"
    assert back.loss.perceptual_layers == ("conv3_3",)
    assert dict(back.generator.options) == dict(c.generator.options)
    assert back.loss.relativistic_centres == "pool"


def test_a_run_saved_before_the_logit_pool_keeps_its_batch_centres():
    """config.json of a ragan_ls run from before `loss.relativistic_centres` existed restores as it trained."""
    import json
    saved = json.loads(config_io.config_to_json(config_io.load_config(CONFIGS / "deblurganv2_mobilenet_gopro.py")))
    del saved["loss"]["relativistic_centres"]
    back = config_io.config_from_json(json.dumps(saved))
    assert back.loss.adversarial == "ragan_ls" and back.loss.relativistic_centres == "batch"


@pytest.mark.parametrize("key, value, needle", [
    ("loss.n_critic", 0, "config.loss.n_critic must be a positive whole number, got 0"),
    ("variants.history_size", -1, "config.variants.history_size must be a non-negative whole number, got -1"),
    ("loss.gradient_penalty", "gp", "config.loss.gradient_penalty must be one of none, wgan_gp, wgan_gp_deblurgan, r1"),
    ("loss.perceptual_net", "vgg11", "config.loss.perceptual_net must be one of vgg16, vgg19, got 'vgg11'"),
    ("loss.pixel_input", "bgr", "config.loss.pixel_input must be one of imagenet, raw, got 'bgr'"),
    ("loss.relativistic_centres", "median", "config.loss.relativistic_centres must be one of pool, batch"),
    ("discriminator.mask_input", "probabilities", "discriminator.mask_input 'probabilities' needs task 'segment'"),
    ("variants.semi_supervised", True, "config.variants.semi_supervised needs task 'segment'"),
    ("variants.transfer_model", "both", "config.variants.transfer_model must be one of generator, discriminator"),
    ("eval.flip_views", 3, "config.eval.flip_views must be one of 1, 2, 4, got 3"),
])
def test_values_the_steps_read_are_checked_when_the_config_is_read(key, value, needle):
    """One line naming the key, raised by config_io.check_values (the one place values are checked)."""
    config = base_config()
    section, name = key.split(".")
    config[section][name] = value
    with pytest.raises(config_io.ConfigError) as raised:
        config_io.check_values(config)
    assert needle in str(raised.value) and "\n" not in str(raised.value)


def test_semi_supervised_with_a_relativistic_loss_and_an_empty_logit_pool_are_refused():
    config = base_config()
    config.task = "segment"
    config.variants.semi_supervised = True
    config.loss.adversarial = "ragan_ls"
    with pytest.raises(config_io.ConfigError, match="non-relativistic loss.adversarial, got 'ragan_ls'"):
        config_io.check_values(config)
    config = base_config()
    config.loss.relativistic_centres = "pool"
    config.loss.relativistic_pool_size = 0
    with pytest.raises(config_io.ConfigError, match="relativistic_pool_size must be >= 1, got 0"):
        config_io.check_values(config)


def test_the_checked_choices_are_the_names_the_implementations_take():
    from jaxgan.losses import ADVERSARIAL_KINDS, get_adversarial, perceptual
    from jaxgan.task import MASK_INPUTS
    from jaxgan.train.optim import MODELS, RESTARTS, SCHEDULES
    from jaxgan.infer import FLIPS
    from jaxgan.train.state import COMPUTE_DTYPES

    choices = config_io.CHOICES
    assert choices["loss.perceptual_net"] == perceptual.NETS
    assert set(choices["loss.perceptual_input"]) == set(choices["loss.pixel_input"]) == set(perceptual.INPUTS)
    assert choices["discriminator.mask_input"] == MASK_INPUTS
    assert choices["variants.transfer_model"] == MODELS
    assert choices["variants.unfreeze_restart"] == RESTARTS
    assert choices["optim.schedule"] == SCHEDULES
    assert set(choices["train.compute_dtype"]) == set(COMPUTE_DTYPES)
    assert choices["eval.flip_views"] == tuple(FLIPS)
    assert config_io.RELATIVISTIC == tuple(k for k in ADVERSARIAL_KINDS if get_adversarial(k).needs_real)


@pytest.mark.parametrize("dotted", sorted(config_io.BEFORE_THE_KEY))
def test_a_key_added_since_a_run_was_saved_takes_the_behaviour_that_run_had(dotted):
    """Each entry differs from today's default (else it is no change of behaviour); a saved config without
    the key gets the old behaviour, one with the key keeps its saved value."""
    import json
    section, key = dotted.split(".")
    old = config_io.BEFORE_THE_KEY[dotted]
    config = config_io.load_config(CONFIGS / "deblurganv2_mobilenet_gopro.py")
    assert config[section][key] != old
    saved = json.loads(config_io.config_to_json(config))
    assert config_io.config_from_json(json.dumps(saved))[section][key] == config[section][key]
    del saved[section][key]
    assert config_io.config_from_json(json.dumps(saved))[section][key] == old
