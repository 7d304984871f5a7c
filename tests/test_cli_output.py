"""What the command line prints: only jaxgan's own lines in a real training (on any processor), quiet
TensorFlow import, jaxgan's own dataset-build lines, --dry-run."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jaxgan import cli
from jaxgan.config import base_config
from train_helpers import enable_compilation_cache

ROOT = Path(__file__).parents[1]
CACHE_ENV = enable_compilation_cache()


# Every line `jaxgan train` may print in a short run: its own formats, nothing of the libraries'.
JAXGAN_LINES = (
    r"building photo_seg \(first run only\): 8 train / 8 test examples in \S+ \.\.\.",  # prepare_builtin
    r"built photo_seg in \d+ s",
    r"train: +\d+%\|.*\| \d+/2 \[[\d:<?,. ]+(s/it|it/s|\?it/s)(, [a-z_]+=[-\d.e+]+)*\]",  # the loop's tqdm bar
    r"[{}]",  # the final metrics, as JSON (cli._cmd_train)
    r' "[a-z_]+": ([-\d.e+]+|true|false|NaN),?',
)


def _unexpected_lines(text: str) -> list[str]:
    """The lines (and tqdm's carriage-return redraws) of `text` that are none of JAXGAN_LINES."""
    parts = [p.strip("\n") for line in text.splitlines() for p in line.split("\r")]
    return [p for p in parts if p.strip() and not any(re.fullmatch(f, p) for f in JAXGAN_LINES)]


def _jaxgan_train(tmp_path, *args: str, verbose: bool = False):
    """`jaxgan train` of seg_quick at toy size in a fresh process: fresh HOME, fresh data dir, no log-level
    variables inherited (the test session sets TF_CPP_MIN_LOG_LEVEL), on whatever processor runs it."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "JAXGAN_VERBOSE", "TFDS_"))}
    env.update(HOME=str(home), PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu", **CACHE_ENV)
    command = [sys.executable, "-m", "jaxgan.cli", "train", "--config", str(ROOT / "experiments/configs/seg_quick.py"),
               "--workdir", str(tmp_path / "W"), "--config.train.steps=2", "--config.data.num_train_examples=8",
               "--config.data.data_dir", str(tmp_path / "data"), "--config.data.crop_size=32",
               "--config.data.batch_size=2", "--config.data.eval_batch_size=8",
               "--config.generator.options.base_width=4", "--config.generator.options.depth=2",
               "--config.discriminator.options.base_width=4", "--config.discriminator.options.num_layers=1",
               *(["--verbose"] if verbose else []), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)


def test_short_training_prints_only_jaxgan_lines(tmp_path):
    """Building photo_seg (tfds prints "Downloading and preparing dataset ..." on its own) and two steps
    whose tf.data pipeline transposes uint8 images (TensorFlow's C++ log says "E0000 ... oneDNN supports
    DT_UINT8 only on platforms with AVX-512" on CPUs without it): every line is one of jaxgan's."""
    done = _jaxgan_train(tmp_path, "--config.data.name=photo_seg")  # seg_quick's seg_scenes builds nothing
    assert done.returncode == 0, done.stderr
    assert _unexpected_lines(done.stdout) == [] and _unexpected_lines(done.stderr) == []
    assert re.search(r"^building photo_seg", done.stderr, re.M) and '"step": 2' in done.stdout


def _import_tensorflow_stderr(verbose: bool) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAXGAN_VERBOSE": "1" if verbose else ""}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    code = "from jaxgan import logs; tf = logs.import_tensorflow(); print(tf.constant(2.0).numpy())"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "2.0", done.stderr
    return done.stderr


def test_tensorflow_import_is_quiet_unless_verbose():
    assert _import_tensorflow_stderr(verbose=False) == ""


@pytest.mark.parametrize("name", ["shapes_seg", "photo_seg", "photo_blur"])
def test_builtin_dataset_build_prints_jaxgan_lines_only(name, tmp_path, capfd):
    from jaxgan.data.prepare import prepare_builtin

    c = base_config()
    c.data.data_dir = str(tmp_path)
    c.data.num_train_examples = 8
    prepare_builtin(name, c)
    out, err = capfd.readouterr()
    assert out == ""  # tfds's "Downloading and preparing dataset Unknown size ..." is gone
    lines = err.strip().splitlines()
    assert lines[0].startswith(f"building {name} (first run only): 8 train / 8 test examples in ")
    assert lines[1].startswith(f"built {name} in ") and len(lines) == 2
    prepare_builtin(name, c)  # prepared: silent
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


def test_predict_on_a_folder_shows_progress_and_a_summary_or_nothing_with_quiet(tmp_path, capsys, monkeypatch):
    """A folder on a terminal: a bar with images/s (stderr), the written files (stdout), then a summary
    line; --quiet prints nothing (errors only)."""
    from PIL import Image

    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((64, 72, 3), 40 * i, np.uint8)).save(folder / f"p{i}.png")  # the prior needs 62 px
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert cli.main(["predict", "--pretrained", "deblur", str(folder), "--output", str(tmp_path / "out")]) == 0
    out, err = capsys.readouterr()
    assert [line.split()[0] for line in out.splitlines()] == [str(tmp_path / "out" / f"p{i}.png") for i in range(3)]
    assert re.search(r"predict: 100%\|.*\| 3/3 \[[\d:<?, .]+(img/s|s/img)\]", err), err  # (tqdm: s/img under 1/s)
    summary = err.strip().split("\n")[-1]
    assert re.fullmatch(rf"jaxgan predict: 3 image\(s\) in [\d.]+ s \([\d.]+ images/s\), results in {tmp_path / 'out'}",
                        summary), summary
    assert cli.main(["predict", "--pretrained", "deblur", str(folder), "--output", str(tmp_path / "quiet"),
                     "--quiet"]) == 0
    assert capsys.readouterr() == ("", "")
    assert sorted(p.name for p in (tmp_path / "quiet").iterdir()) == ["p0.png", "p1.png", "p2.png"]
