"""Table-driven bad input: every PIL pixel mode read to the right 8-bit values (or refused by name),
and each input mistake a user can make reaching the command line as one line and exit status 2,
with nothing of the user's overwritten."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jaxgan import cli, images
from jaxgan.data import folders
from jaxgan.data.image_files import FirstFrameWarning
from cli_helpers import one_line_error, run_cli

ROOT = Path(__file__).parents[1]
GRAY = np.array([[0, 100], [200, 255]], np.uint8)  # the 8-bit values every mode below stands for


def _rgb(gray):
    return np.repeat(np.asarray(gray, np.uint8)[..., None], 3, axis=-1)


def _palette_image():
    im = Image.fromarray(np.array([[0, 1], [2, 3]], np.uint8), mode="P")
    im.putpalette([0, 0, 0, 100, 100, 100, 200, 200, 200, 255, 255, 255])
    return im


# (name, file suffix, PIL image, save options, expected uint8 RGB)
MODES = [
    ("L", "png", lambda: Image.fromarray(GRAY), {}, _rgb(GRAY)),
    ("1", "png", lambda: Image.fromarray(GRAY > 128), {}, _rgb([[0, 0], [255, 255]])),
    ("P", "png", _palette_image, {}, _rgb(GRAY)),
    ("RGB", "png", lambda: Image.fromarray(_rgb(GRAY)), {}, _rgb(GRAY)),
    ("RGBA", "png", lambda: Image.fromarray(np.dstack([_rgb(GRAY), np.full((2, 2), 7, np.uint8)])), {}, _rgb(GRAY)),
    ("LA", "png", lambda: Image.fromarray(np.dstack([GRAY, GRAY]), "LA"), {}, _rgb(GRAY)),
    ("CMYK", "tiff", lambda: Image.fromarray(_rgb(GRAY)).convert("CMYK"), {}, _rgb(GRAY)),
    ("YCbCr", "tiff", lambda: Image.fromarray(_rgb(GRAY)).convert("YCbCr"), {}, _rgb(GRAY)),
    # 16-bit gray: 0..65535 scaled to 0..255 (not clipped to white)
    ("I;16", "png", lambda: Image.fromarray(GRAY.astype(np.uint16) * 257), {}, _rgb(GRAY)),
    ("I;16 tiff", "tiff", lambda: Image.fromarray(GRAY.astype(np.uint16) * 257), {}, _rgb(GRAY)),
    ("I (32-bit, 16-bit values)", "tiff", lambda: Image.fromarray(GRAY.astype(np.int32) * 257), {}, _rgb(GRAY)),
    # float: [0, 1] scaled to 0..255 (not rounded to black), [0, 255] taken as it is
    ("F in [0, 1]", "tiff", lambda: Image.fromarray(GRAY.astype(np.float32) / 255), {}, _rgb(GRAY)),
    ("F in [0, 255]", "tiff", lambda: Image.fromarray(GRAY.astype(np.float32)), {}, _rgb(GRAY)),
    ("webp lossless", "webp", lambda: Image.fromarray(_rgb(GRAY)), {"lossless": True}, _rgb(GRAY)),
]


@pytest.mark.parametrize("name,suffix,make,options,expected", MODES, ids=[m[0] for m in MODES])
def test_every_pixel_mode_reads_to_its_8bit_values(tmp_path, name, suffix, make, options, expected):
    path = tmp_path / f"image.{suffix}"
    make().save(path, **options)
    np.testing.assert_array_equal(images.read_image(path), expected)


REFUSED = [
    ("I out of range", "tiff", lambda: Image.fromarray(np.array([[-5, 70000]], np.int32)), "outside 0..65535"),
    ("F out of range", "tiff", lambda: Image.fromarray(np.array([[0.0, 300.0]], np.float32)), r"neither in \[0, 1\]"),
    ("F with NaN", "tiff", lambda: Image.fromarray(np.array([[0.0, np.nan]], np.float32)), "NaN or Inf"),
]


@pytest.mark.parametrize("name,suffix,make,needle", REFUSED, ids=[r[0] for r in REFUSED])
def test_values_outside_a_mode_range_are_refused_by_name(tmp_path, name, suffix, make, needle):
    path = tmp_path / f"image.{suffix}"
    make().save(path)
    with pytest.raises(images.ImageFileError, match=needle) as e:
        images.read_image(path)
    assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)


@pytest.mark.parametrize("scale", [1.0, 255.0])
def test_a_float32_rgb_tiff_reads_to_its_8bit_values(tmp_path, scale):
    """3-channel float TIFFs (Pillow cannot open them): [0, 1] scaled, [0, 255] taken as they are."""
    import tifffile

    rgb = np.random.default_rng(5).integers(0, 256, (6, 9, 3)).astype(np.float32)
    tifffile.imwrite(tmp_path / "f.tif", rgb / 255.0 * scale, photometric="rgb")
    np.testing.assert_array_equal(images.read_image(tmp_path / "f.tif"), rgb.astype(np.uint8))
    tifffile.imwrite(tmp_path / "bad.tif", np.full((4, 4, 3), 300.0, np.float32), photometric="rgb")
    with pytest.raises(images.ImageFileError, match=r"bad\.tif: float pixel values 300\.\.300"):
        images.read_image(tmp_path / "bad.tif")


def test_exif_orientation_is_applied(tmp_path):
    stored = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 10
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(stored).save(tmp_path / "r.png", exif=exif)
    np.testing.assert_array_equal(images.read_image(tmp_path / "r.png"), np.rot90(stored, k=-1))


def test_multi_frame_file_gives_its_first_frame_and_says_so(tmp_path):
    frames = [Image.fromarray(_rgb(np.full((4, 4), v, np.uint8))) for v in (0, 255)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    with pytest.warns(FirstFrameWarning, match="holds 2 frames; using the first"):
        out = images.read_image(tmp_path / "a.gif")
    np.testing.assert_array_equal(out, 0)


def _corrupt_jpeg(path: Path) -> Path:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(path, quality=90)
    data = bytearray(path.read_bytes())
    for i in rng.integers(len(data) // 3, len(data) - 10, 8):  # Pillow decodes this without a word
        data[i] = int(rng.integers(0, 256))
    path.write_bytes(bytes(data))
    return path


def _truncated_png(path: Path) -> Path:
    Image.fromarray(_rgb(np.zeros((32, 32), np.uint8))).save(path)
    path.write_bytes(path.read_bytes()[:60])
    return path


FILE_MISTAKES = [
    ("corrupt JPEG", lambda p: _corrupt_jpeg(p / "c.jpg"), "corrupt JPEG data"),
    ("truncated PNG", lambda p: _truncated_png(p / "t.png"), "unreadable or corrupt"),
    ("not an image", lambda p: (p / "n.png").write_bytes(b"hello") and p / "n.png", "unreadable or corrupt"),
    ("missing", lambda p: p / "missing.png", "no such file"),
    ("a folder", lambda p: (p / "d.png").mkdir() or p / "d.png", "is a folder"),
]


@pytest.mark.parametrize("name,make,needle", FILE_MISTAKES, ids=[m[0] for m in FILE_MISTAKES])
def test_bad_files_are_refused_by_name(tmp_path, name, make, needle):
    path = make(tmp_path)
    with pytest.raises(images.ImageFileError, match=needle) as e:
        images.read_image(path)
    assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)


def test_decompression_bomb_is_refused_by_name(tmp_path, monkeypatch):
    Image.fromarray(_rgb(np.zeros((16, 16), np.uint8))).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50)  # 256 pixels > 2 x 50: Pillow's bomb error
    with pytest.raises(images.ImageFileError, match="refused as too large"):
        images.read_image(tmp_path / "big.png")


def test_training_data_check_refuses_a_corrupt_jpeg(tmp_path):
    size, problem = folders.inspect_image(_corrupt_jpeg(tmp_path / "c.jpg"))
    assert size is None and "corrupt JPEG data" in problem


def test_a_folder_named_like_an_image_is_not_an_image(tmp_path):
    (tmp_path / "x.png").mkdir()
    Image.fromarray(_rgb(GRAY)).save(tmp_path / "ok.png")
    assert images.list_images([str(tmp_path)]) == [tmp_path / "ok.png"]


# ---- the command line -----------------------------------------------------------------------------

CONFIG = """import sys
sys.path.insert(0, {tests!r})
from train_helpers import tiny_config

def get_config():
    c = tiny_config("deblur", steps=2)
    c.train.eval_lpips = False
{extra}
    return c
"""


def _config_file(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "cfg.py"
    path.write_text(CONFIG.format(tests=str(ROOT / "tests"), extra=extra or "    pass"))
    return path


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A workdir holding one checkpoint of an untrained tiny run (no train step compiled)."""
    from train_helpers import untrained_workdir

    return untrained_workdir(tmp_path_factory.mktemp("workdir"), "deblur", seed=0)


def _photo(path: Path, value: int = 90) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((12, 20, 3), value, np.uint8)).save(path)
    return path


def test_predict_never_writes_onto_its_input(workdir, tmp_path, capsys):
    photo = _photo(tmp_path / "d" / "ok.png")
    before = photo.read_bytes()
    code, _, err = run_cli(["predict", "--workdir", workdir, photo, "--output", tmp_path / "d"], capsys)
    one_line_error(code, err, "would overwrite the input", str(photo))
    assert photo.read_bytes() == before and sorted(p.name for p in (tmp_path / "d").iterdir()) == ["ok.png"]


def test_predict_never_writes_through_a_hard_link_or_a_symlink(workdir, tmp_path, capsys):
    """An output name that is a hard link of an input, or a symlink to a user's file: the input and
    the file keep their bytes (a hard link of an input is refused; the result is written to a new file
    and renamed onto the symlink with --overwrite, replacing the link, not what it points to)."""
    photo = _photo(tmp_path / "in" / "a.png")
    before = photo.read_bytes()
    out = tmp_path / "out"
    out.mkdir()
    os.link(photo, out / "a.png")
    code, _, err = run_cli(["predict", "--workdir", workdir, photo, "--output", out, "--overwrite"], capsys)
    one_line_error(code, err, "would overwrite the input", str(photo))
    assert photo.read_bytes() == before
    keep = _photo(tmp_path / "elsewhere" / "truth.png", 200)
    kept = keep.read_bytes()
    (out / "b.png").symlink_to(keep)
    b = _photo(tmp_path / "in" / "b.png", 30)
    code, _, err = run_cli(["predict", "--workdir", workdir, b, "--output", out], capsys)
    one_line_error(code, err, str(out / "b.png"), "exists already", "--overwrite")
    code, _, err = run_cli(["predict", "--workdir", workdir, b, "--output", out, "--overwrite"], capsys)
    assert code == 0, err
    assert keep.read_bytes() == kept and not (out / "b.png").is_symlink()
    assert (out / "b.png").read_bytes() != kept
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]  # no temporary file left


def test_predict_never_replaces_an_existing_result_without_overwrite(workdir, tmp_path, capsys):
    photo = _photo(tmp_path / "in" / "x.png")
    truth = _photo(tmp_path / "out" / "x.png", 7)  # e.g. a user's own file of that name
    kept = truth.read_bytes()
    code, _, err = run_cli(["predict", "--workdir", workdir, photo, "--output", tmp_path / "out"], capsys)
    one_line_error(code, err, str(truth), "exists already", "--overwrite")
    assert truth.read_bytes() == kept


@pytest.mark.parametrize("flag,value", [("--tile-size", "1"), ("--tile-size", "-5"), ("--overlap", "-1")])
def test_predict_tiling_arguments_are_checked_and_named(workdir, tmp_path, capsys, flag, value):
    photo = _photo(tmp_path / "in" / "x.png")
    code, _, err = run_cli(["predict", "--workdir", workdir, photo, "--output", tmp_path / "o", flag, value],
                           capsys)
    one_line_error(code, err, f"{flag} {value}")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("size", ["-5x3", "5x-3", "0x4"])
def test_export_size_is_checked_and_named(workdir, tmp_path, capsys, size):
    code, _, err = run_cli(["export", "--workdir", workdir, "--format", "stablehlo", "--output", tmp_path / "x",
                            "--size", size], capsys)
    one_line_error(code, err, f"--size '{size}'")
    assert not (tmp_path / "x").exists()


def test_predict_refuses_a_fifo_named_like_an_image_instead_of_hanging(workdir, tmp_path, capsys):
    import threading

    fifo = tmp_path / "f.png"
    os.mkfifo(fifo)
    result = {}
    worker = threading.Thread(target=lambda: result.update(zip(("code", "out", "err"), run_cli(
        ["predict", "--workdir", workdir, fifo, "--output", tmp_path / "o"], capsys))))
    worker.start()
    worker.join(60)
    if worker.is_alive():  # unblock the reader, then fail
        with open(fifo, "wb"):
            pass
        worker.join()
        pytest.fail("predict hung reading a FIFO")
    one_line_error(result["code"], result["err"], str(fifo), "not a regular file")


def test_a_bad_conv_impl_variable_is_named_not_blamed_on_the_checkpoints(workdir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("JAXGAN_CONV_IMPL", "bogus")
    photo = _photo(tmp_path / "in" / "x.png")
    code, _, err = run_cli(["predict", "--workdir", workdir, photo, "--output", tmp_path / "o"], capsys)
    line = one_line_error(code, err, "JAXGAN_CONV_IMPL", "'bogus'")
    assert "damaged" not in line and not (tmp_path / "o").exists()


def _predict_in_a_process(workdir, tmp_path, **env):
    """(exit status, non-empty stderr lines, stderr) of `jaxgan predict` on one photo in a fresh process."""
    photo = _photo(tmp_path / "in" / "x.png")
    done = subprocess.run([sys.executable, "-m", "jaxgan.cli", "predict", "--workdir", str(workdir),
                           str(photo), "--output", str(tmp_path / "o")],
                          env=dict(os.environ, **env), cwd=ROOT, capture_output=True, text=True, timeout=120)
    return done.returncode, [line for line in done.stderr.splitlines() if line.strip()], done.stderr


def test_a_jax_platform_the_machine_lacks_is_one_line(workdir, tmp_path):
    code, lines, stderr = _predict_in_a_process(workdir, tmp_path, JAX_PLATFORMS="cuda", CUDA_VISIBLE_DEVICES="")
    assert code == 2 and len(lines) == 1, stderr[-3000:]
    assert "JAX_PLATFORMS='cuda'" in lines[0], lines[0]


def test_xla_flags_that_are_not_xla_flags_are_one_line(workdir, tmp_path):
    """XLA aborts the process (a fatal log line, SIGABRT) on an unknown flag when the backend starts."""
    code, lines, stderr = _predict_in_a_process(workdir, tmp_path,
                                                XLA_FLAGS="--xla_backend_optimization_level=0 --bogus")
    assert code == 2 and len(lines) == 1, stderr[-3000:]
    assert "XLA_FLAGS=" in lines[0] and "'--bogus' is not an XLA flag" in lines[0], lines[0]
    assert not (tmp_path / "o").exists()


def test_skip_bad_with_every_input_bad_is_an_error(workdir, tmp_path, capsys):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"broken")
    code, _, err = run_cli(["predict", "--workdir", workdir, folder, "--output", tmp_path / "o", "--skip-bad"],
                           capsys)
    assert code == 2 and "all 1 input(s) were unreadable" in err.strip().splitlines()[-1], err


def test_predict_gives_colliding_names_their_own_files(workdir, tmp_path, capsys):
    a, b = _photo(tmp_path / "a" / "ok.png", 10), _photo(tmp_path / "a" / "ok.jpg", 240)
    code, out, err = run_cli(["predict", "--workdir", workdir, a, b, "--output", tmp_path / "o"], capsys)
    assert code == 0, err
    written = sorted(p.name for p in (tmp_path / "o").iterdir())
    assert written == ["ok_jpg.png", "ok_png.png"]
    assert not np.array_equal(images.read_image(tmp_path / "o" / "ok_png.png"),
                              images.read_image(tmp_path / "o" / "ok_jpg.png"))


def test_a_bad_file_in_a_folder_batch_says_what_was_done_and_how_to_go_on(workdir, tmp_path, capsys):
    folder = tmp_path / "photos"
    _photo(folder / "a.png")
    (folder / "b.png").write_bytes(b"broken")
    _photo(folder / "c.png")
    (folder / "x.png").mkdir()  # a folder, not an image
    code, _, err = run_cli(["predict", "--workdir", workdir, folder, "--output", tmp_path / "o"], capsys)
    one_line_error(code, err, str(folder / "b.png"), "1 of 3 inputs done", "--skip-bad")
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["a.png"]
    code, out, err = run_cli(["predict", "--workdir", workdir, folder, "--output", tmp_path / "o", "--skip-bad",
                              "--overwrite"], capsys)
    assert code == 0 and "skipped" in err and str(folder / "b.png") in err, err
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["a.png", "c.png"]


CONFIG_MISTAKES = [
    ("unknown key in the file", "    c.train.stepz = 3", [], "get_config() failed: AttributeError"),
    ("get_config() raises", "    raise RuntimeError('no GPU here')", [], "RuntimeError: no GPU here"),
    ("crop size 0", "", ["--config.data.crop_size=0"], "data.crop_size must be a positive whole number"),
    ("batch size -1", "", ["--config.data.batch_size=-1"], "data.batch_size must be a positive"),
    ("get_config() exits", "    import sys; sys.exit(7)", [], "get_config() called sys.exit(7)"),
    ("negative lr", "", ["--config.optim.g_lr=-1e-3"], "optim.g_lr must be a finite number >= 0, got -0.001"),
    ("nan lr", "", ["--config.optim.d_lr=nan"], "optim.d_lr must be a finite number >= 0, got nan"),
    ("inf lr", "", ["--config.optim.g_lr=inf"], "optim.g_lr must be a finite number >= 0, got inf"),
    ("negative loss weight", "", ["--config.loss.pixel_weight=-1"], "loss.pixel_weight must be a finite"),
    ("ema decay 2", "", ["--config.train.ema_decay=2.0"], "train.ema_decay must be in [0, 1), got 2.0"),
    ("warmup -10", "", ["--config.optim.warmup_steps=-10"], "optim.warmup_steps must be a non-negative"),
    ("eval examples -1", "", ["--config.data.num_eval_examples=-1"], "data.num_eval_examples must be a non-neg"),
    ("best mode", "", ["--config.train.best_mode=bogus"], "train.best_mode must be one of max, min, got 'bogus'"),
    ("steps 0", "", ["--config.train.steps=0"], "train.steps must be a positive whole number, got 0"),
    ("best metric", "", ["--config.train.best_metric=bogus"], "train.best_metric 'bogus' is not an evaluation"),
    ("unet depth 40", "", ["--config.generator.options.depth=40"],
     "config.generator.options.depth 40 halves the 16-pixel training crop below one pixel"),
]


@pytest.mark.parametrize("name,extra,overrides,needle", CONFIG_MISTAKES, ids=[c[0] for c in CONFIG_MISTAKES])
def test_config_mistakes_are_one_line(tmp_path, capsys, name, extra, overrides, needle):
    config = _config_file(tmp_path, extra)
    code, _, err = run_cli(["train", "--config", config, "--workdir", tmp_path / "w", *overrides], capsys)
    one_line_error(code, err, needle)
    assert not (tmp_path / "w").exists()


def test_a_config_that_cannot_fit_in_memory_is_one_line_before_any_state(tmp_path, capsys, monkeypatch):
    """A 100000-pixel crop: XLA's estimate of the train step (thousands of GiB) against the free memory,
    one line before the state is created (which alone would need a 112 GiB sample image)."""
    from train_helpers import patch_engine

    patch_engine(monkeypatch.setattr)
    config = _config_file(tmp_path)
    code, _, err = run_cli(["train", "--config", config, "--workdir", tmp_path / "w",
                            "--config.data.crop_size=100000"], capsys)
    line = one_line_error(code, err, "this config does not fit in memory", "data.crop_size 100000")
    needed, free = (float(x) for x in re.findall(r"([0-9.]+) GiB", line))
    assert needed > 1000 > free, line
    assert not (tmp_path / "w" / "config.json").exists()


def test_divergence_is_one_line_and_debug_shows_the_traceback(tmp_path, capsys, monkeypatch):
    import jaxgan.train
    from jaxgan.train.loop import DivergenceError

    def diverging(config, workdir):
        raise DivergenceError("training diverged at step 3: loss g_loss = nan")

    monkeypatch.setattr(jaxgan.train, "train_and_evaluate", diverging)
    argv = ["train", "--config", _config_file(tmp_path), "--workdir", tmp_path / "w"]
    code, _, err = run_cli(argv, capsys)
    one_line_error(code, err, "training diverged at step 3")
    with pytest.raises(DivergenceError):
        cli.main([str(a) for a in argv] + ["--debug"])
    monkeypatch.setenv("JAXGAN_DEBUG", "1")
    with pytest.raises(DivergenceError):
        cli.main([str(a) for a in argv])


def test_an_empty_eval_split_stops_the_run_before_its_first_step(tmp_path, capsys):
    data = tmp_path / "data"
    for kind in ("blur", "sharp"):
        _photo(data / "train" / kind / "0.png")
    (data / "test" / "blur").mkdir(parents=True)
    (data / "test" / "sharp").mkdir(parents=True)
    code, _, err = run_cli(["train", "--config", _config_file(tmp_path), "--workdir", tmp_path / "w",
                         "--config.data.name=folder_deblur", f"--config.data.path={data}"], capsys)
    one_line_error(code, err, str(data / "test"))
    assert not (tmp_path / "w" / "checkpoints").exists()
    assert not (tmp_path / "w" / "config.json").exists() and not (tmp_path / "w" / "jaxgan.lock").exists()


def test_a_folder_dataset_without_its_eval_split_is_refused_not_read_from_train(tmp_path, capsys):
    data = tmp_path / "data"
    for kind in ("blur", "sharp"):
        _photo(data / "train" / kind / "0.png")
    code, _, err = run_cli(["train", "--config", _config_file(tmp_path), "--workdir", tmp_path / "w",
                            "--config.data.name=folder_deblur", f"--config.data.path={data}"], capsys)
    one_line_error(code, err, str(data / "test"), "no such folder", "train")
    assert not (tmp_path / "w" / "config.json").exists()


def test_corrupt_and_unpaired_data_files_end_in_one_line(tmp_path, capsys):
    data = tmp_path / "data"
    for split in ("train", "test"):
        for kind in ("blur", "sharp"):
            for name in ("0.png", "1.png"):
                _photo(data / split / kind / name)
    (data / "train" / "blur" / "0.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")  # corrupt
    (data / "train" / "sharp" / "1.png").unlink()  # unpaired
    code, _, err = run_cli(["train", "--config", _config_file(tmp_path), "--workdir", tmp_path / "w",
                            "--config.data.name=folder_deblur", f"--config.data.path={data}"], capsys)
    one_line_error(code, err, "2 bad file(s)", str(data / "train" / "blur" / "0.png"), "corrupt",
                   str(data / "train" / "blur" / "1.png"), "without its sharp partner", "skip_bad")
    assert not (tmp_path / "w" / "config.json").exists()


def test_a_failed_start_leaves_no_config_json(tmp_path, capsys, monkeypatch):
    from jaxgan.data import DataError
    from jaxgan.train import loop
    from train_helpers import patch_engine

    def broken_iterator(config, start_step):
        raise DataError("DATA/train/0.png: unreadable")

    patch_engine(monkeypatch.setattr)
    monkeypatch.setattr(loop, "_make_train_iterator", broken_iterator)
    code, _, err = run_cli(["train", "--config", _config_file(tmp_path), "--workdir", tmp_path / "w"], capsys)
    assert code == 2 and "DATA/train/0.png: unreadable" in err.strip().splitlines()[-1], err
    assert not (tmp_path / "w" / "config.json").exists() and not (tmp_path / "w" / "jaxgan.lock").exists()


def test_pretrained_help_names_only_models_that_exist(capsys):
    from jaxgan import pretrained

    with pytest.raises(SystemExit):
        cli.main(["predict", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    names = pretrained.available()
    assert all(n in help_text for n in names)
    if not names:
        assert "this install ships none" in help_text and "e.g. deblur" not in help_text
