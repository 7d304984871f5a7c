"""What the command line prints: quiet TensorFlow import, jaxgan's own dataset-build lines, --dry-run."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from jaxgan import cli
from jaxgan.config import base_config

ROOT = Path(__file__).parents[1]


def _import_tensorflow_stderr(verbose: bool) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAXGAN_VERBOSE": "1" if verbose else ""}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    code = "from jaxgan import logs; tf = logs.import_tensorflow(); print(tf.constant(2.0).numpy())"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "2.0", done.stderr
    return done.stderr


def test_tensorflow_import_is_quiet_unless_verbose():
    assert _import_tensorflow_stderr(verbose=False) == ""
    assert "oneDNN" in _import_tensorflow_stderr(verbose=True)  # the lines held back are real ones


def test_builtin_dataset_build_prints_jaxgan_lines_only(tmp_path, capfd):
    from jaxgan.data.prepare import prepare_builtin

    c = base_config()
    c.data.data_dir = str(tmp_path)
    c.data.num_train_examples = 8
    prepare_builtin("shapes_seg", c)
    out, err = capfd.readouterr()
    assert out == ""  # tfds's "Downloading and preparing dataset Unknown size ..." is gone
    lines = err.strip().splitlines()
    assert lines[0].startswith("building shapes_seg (first run only): 8 train / 8 test examples in ")
    assert lines[1].startswith("built shapes_seg in ") and len(lines) == 2
    prepare_builtin("shapes_seg", c)  # prepared: silent
    assert capfd.readouterr() == ("", "")


def test_dry_run_prints_resolved_config_and_parameter_counts(tmp_path, capsys):
    import jax.numpy as jnp  # noqa: F401

    from jaxgan import config_io
    from jaxgan.nets.layers import count_params
    from jaxgan.train.state import make_modules

    workdir = tmp_path / "never_created"
    config_file = str(ROOT / "experiments" / "configs" / "deblur_quick.py")
    assert cli.main(["train", "--config", config_file, "--workdir", str(workdir), "--config.train.steps=7",
                     "--config.generator.options.base_width=8", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert not workdir.exists()
    assert "steps: 7" in out and "base_width: 8" in out
    config = config_io.load_config(config_file, {"train.steps": "7", "generator.options.base_width": "8"})
    g, d = make_modules(config)
    g_count = count_params(g, (1, 128, 128, 6))
    d_count = count_params(d, (1, 128, 128, 9))  # conditional: [blurred, prior] + image
    assert f"generator nafnet: {g_count:,} parameters" in out
    assert f"discriminator patchgan: {d_count:,} parameters" in out
    assert np.all(np.array([g_count, d_count]) > 1000)
