"""The `jaxgan` command end to end on a tiny run: train, interrupt, resume, evaluate, predict,
and the one-line errors a user gets for common mistakes."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cli_helpers import one_line_error, run_cli
from jaxgan.train.restore import restore_run

TINY_CONFIG = """
import ml_collections
from jaxgan.config import base_config

def get_config():
    c = base_config()
    c.task = "deblur"
    c.data.name = "photo_blur"
    c.data.data_dir = {data_dir!r}
    c.data.num_train_examples = 8
    c.data.crop_size = 32
    c.data.eval_size = 32
    c.data.batch_size = 2
    c.data.eval_batch_size = 4
    c.generator.name = "unet"
    c.generator.options = ml_collections.ConfigDict(dict(
        in_channels=3, out_channels=3, depth=3, base_width=4, norm="batch", upsample="resize"))
    c.discriminator.options = ml_collections.ConfigDict(dict(
        in_channels=6, base_width=4, num_layers=2, norm="batch"))
    c.train.steps = 6
    c.train.log_every = 2
    c.train.eval_every = 6
    c.train.checkpoint_every = 2
    c.train.eval_lpips = False
    c.train.num_samples = 2
    return c
"""


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory, builtin_data_dir):
    root = tmp_path_factory.mktemp("cli")
    path = root / "tiny.py"
    path.write_text(TINY_CONFIG.format(data_dir=builtin_data_dir))
    return path


def test_unknown_config_key_is_one_line_with_valid_keys(tiny_config, tmp_path, capsys):
    code, _, err = run_cli(["train", "--config", tiny_config, "--workdir", tmp_path / "w",
                         "--config.train.stepz=3"], capsys)
    one_line_error(code, err, "train.stepz", "steps", "eval_every")


def test_evaluate_and_predict_without_checkpoint(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run_cli(["evaluate", "--workdir", empty], capsys)
    one_line_error(code, err, str(empty))
    image = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
    code, _, err = run_cli(["predict", "--workdir", empty, image, "--output", tmp_path / "out"], capsys)
    one_line_error(code, err, str(empty))


def _wait_for_checkpoint(workdir: Path, proc, timeout=240.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        steps = [p for p in (workdir / "checkpoints").glob("[0-9]*") if p.is_dir()]
        if steps:
            return
        if proc.poll() is not None:
            raise AssertionError(f"training exited early: {proc.communicate()}")
        time.sleep(0.5)
    proc.kill()
    raise AssertionError("no checkpoint appeared")


@pytest.mark.slow
def test_train_interrupt_resume_evaluate_predict(tiny_config, tmp_path, capsys):
    workdir = tmp_path / "run"
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    # 1. train in a subprocess, interrupt it with SIGINT once it has saved: it saves and exits 0.
    proc = subprocess.Popen(
        [sys.executable, "-m", "jaxgan.cli", "train", "--config", str(tiny_config),
         "--workdir", str(workdir), "--config.train.steps=100000"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_checkpoint(workdir, proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err[-3000:]
    assert "stop requested" in err + out
    interrupted_at = max(int(p.name) for p in (workdir / "checkpoints").glob("[0-9]*"))
    assert interrupted_at >= 2
    # (what test_train_loop's separate SIGTERM run asserted:) the printed result says it stopped early at
    # the step it saved last, and that checkpoint restores to that step
    result = json.loads(out)
    assert result["stopped_early"] and result["step"] == interrupted_at < 100_000
    *_, state, step = restore_run(str(workdir))
    assert step == interrupted_at == int(state.step)

    # 2. resume through the entry point: it continues from the checkpoint, not from 0.
    total = interrupted_at + 4
    code, out, err = run_cli(["train", "--config", tiny_config, "--workdir", workdir,
                           f"--config.train.steps={total}", f"--config.train.eval_every={total}"], capsys)
    assert code == 0, err
    logged = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    train_steps = [r["step"] for r in logged if r["split"] == "train"]
    assert max(train_steps) == total
    assert max(int(p.name) for p in (workdir / "checkpoints").glob("[0-9]*")) == total
    assert list((workdir / "samples").glob("*.png")), "no sample grid written"
    assert list((workdir / "tensorboard").glob("**/events.out.tfevents.*")), "no TensorBoard events"

    # 3. evaluate prints and writes JSON with the model's and the blurred input's metrics, LPIPS
    # included although the run's own evaluations left it out (train.eval_lpips = False).
    code, out, err = run_cli(["evaluate", "--workdir", workdir, "--split", "test"], capsys)
    assert code == 0, err
    results = json.loads(out)
    for key in ("psnr", "ssim", "lpips", "input_psnr", "input_ssim", "input_lpips"):
        assert np.isfinite(results[key]), key
    assert 0 <= results["input_lpips"] < 1 and results["psnr"] < 100
    assert json.loads((workdir / "eval_test.json").read_text()) == results
    code, out, err = run_cli(["evaluate", "--workdir", workdir, "--no-lpips", "--output", tmp_path / "e.json"], capsys)
    assert code == 0, err
    quick = json.loads(out)
    assert "lpips" not in quick and "input_lpips" not in quick and quick["psnr"] == results["psnr"]
    # evaluation data can be overridden (the model stays the checkpoint's); other sections cannot
    code, out, err = run_cli(["evaluate", "--workdir", workdir, "--no-lpips", "--output", tmp_path / "e2.json",
                           "--config.data.num_eval_examples=2"], capsys)
    assert code == 0, err
    assert json.loads(out)["num_examples"] == 2 < results["num_examples"]
    code, _, err = run_cli(["evaluate", "--workdir", workdir, "--config.train.steps=3"], capsys)
    one_line_error(code, err, "--config.train.steps")

    # 4. predict on a non-square image (and a folder), sizes kept; errors are one line.
    photos = tmp_path / "photos"
    photos.mkdir()
    rgb = np.random.default_rng(0).integers(0, 256, (45, 70, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(photos / "odd.png")
    code, out, err = run_cli(["predict", "--workdir", workdir, photos, "--output", tmp_path / "pred",
                           "--tile-size", "32", "--overlap", "8"], capsys)
    assert code == 0, err
    with Image.open(tmp_path / "pred" / "odd.png") as im:
        assert im.size == (70, 45) and im.mode == "RGB"

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png at all")
    code, _, err = run_cli(["predict", "--workdir", workdir, broken, "--output", tmp_path / "pred"], capsys)
    one_line_error(code, err, str(broken))

    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    code, _, err = run_cli(["predict", "--workdir", workdir, photos, "--output", blocker / "out"], capsys)
    one_line_error(code, err, str(blocker / "out"))


@pytest.fixture(scope="module")
def segment_workdir(tmp_path_factory):
    """A workdir holding one checkpoint of an untrained tiny segmentation run (sigmoid mask)."""
    from train_helpers import untrained_workdir

    return untrained_workdir(tmp_path_factory.mktemp("segment"), "segment", seed=1)


def test_segmentation_predict_writes_name_mask_and_name_overlay(segment_workdir, tmp_path, capsys):
    from jaxgan import images
    from jaxgan.predict import Predictor

    rgb = np.random.default_rng(4).integers(0, 256, (24, 40, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "leaf.png")
    code, out, err = run_cli(["predict", "--workdir", segment_workdir, tmp_path / "leaf.png",
                              "--output", tmp_path / "o"], capsys)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["leaf_mask.png", "leaf_overlay.png"]
    expected = Predictor.from_workdir(str(segment_workdir)).predict_array(images.to_float(rgb))
    assert set(np.unique(expected)) == {0, 1}  # both classes present: the overlay is checked on both
    with Image.open(tmp_path / "o" / "leaf_mask.png") as im:
        assert im.mode == "P" and im.size == (40, 24)
        np.testing.assert_array_equal(np.asarray(im), expected)  # pixel values are the class indices
    with Image.open(tmp_path / "o" / "leaf_overlay.png") as im:
        overlay = np.asarray(im.convert("RGB")).astype(np.int64)
    fg = expected > 0
    np.testing.assert_array_equal(overlay[~fg], rgb[~fg])  # background: the photo unchanged
    blend = np.round(0.5 * rgb[fg] + 0.5 * np.asarray(images.PALETTE[1], np.float64))
    assert np.abs(overlay[fg] - blend).max() <= 1  # foreground: half the class colour
