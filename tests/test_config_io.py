"""Config files and command-line overrides: types kept, unknown keys rejected with the valid ones."""

from pathlib import Path

import pytest

from jaxgan import config_io

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
