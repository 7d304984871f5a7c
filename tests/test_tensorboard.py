"""What a short run writes for TensorBoard, read back with tensorboard's own EventAccumulator:
the train and eval scalars (equal to metrics.jsonl) and the sample grid with its column titles."""

import io
import json

import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from jaxgan.train import loop
from train_helpers import enable_compilation_cache, tiny_config, train_on_fake_data

enable_compilation_cache()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("tb_run")
    config = tiny_config("deblur", steps=2)
    config.train.eval_every = 2
    config.train.eval_lpips = False
    train_on_fake_data(config, workdir)
    events = EventAccumulator(str(workdir / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    return workdir, events


def test_scalars_equal_metrics_jsonl(run):
    workdir, events = run
    lines = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    tags = events.Tags()["scalars"]
    assert {"train/g_loss", "train/d_loss", "eval/psnr", "eval/ssim", "eval/input_psnr"} <= set(tags)
    g_loss = [(e.step, e.value) for e in events.Scalars("train/g_loss")]
    expected = [(l["step"], l["g_loss"]) for l in lines if l["split"] == "train"]
    assert [s for s, _ in g_loss] == [1, 2]
    np.testing.assert_allclose([v for _, v in g_loss], [v for _, v in expected], rtol=1e-6)
    (psnr,) = events.Scalars("eval/psnr")
    (eval_line,) = [l for l in lines if l["split"] == "eval"]
    assert psnr.step == 2 and psnr.value == pytest.approx(eval_line["psnr"], rel=1e-6)


def test_sample_grid_image_has_column_titles(run):
    workdir, events = run
    (image,) = events.Images("samples/input_output_target")
    assert image.step == 2
    grid = np.asarray(Image.open(io.BytesIO(image.encoded_image_string)).convert("RGB"))
    np.testing.assert_array_equal(grid, np.asarray(Image.open(workdir / "samples" / "step_000002.png")))
    cell, pad = 16, 2  # 16x16 crops of tiny_config, images.image_grid's padding
    assert grid.shape == (loop.TITLE_HEIGHT + 2 * (cell + pad) + pad, 3 * (cell + pad) + pad, 3)
    strip = grid[:loop.TITLE_HEIGHT]
    for j in range(3):  # every column has its title drawn (dark pixels over its cell)
        column = strip[:, pad + j * (cell + pad):pad + j * (cell + pad) + cell]
        assert (column.min(axis=-1) < 128).sum() > 5, j


def test_titles_are_each_columns_own_word_centred_on_white():
    """with_titles on 64-pixel cells (wide enough for every title) against PIL drawing each word alone."""
    cell, pad, titles = 64, 2, ["input", "front end", "output", "target"]
    width = len(titles) * (cell + pad) + pad
    strip = loop.with_titles(np.zeros((0, width, 3), np.uint8), titles, cell)
    assert strip.shape == (loop.TITLE_HEIGHT, width, 3)
    ink = strip.min(axis=-1) < 128
    columns = np.zeros(width, bool)
    for j, title in enumerate(titles):
        left = pad + j * (cell + pad)
        columns[left:left + cell] = True
        rows, cols = np.nonzero(ink[:, left:left + cell])
        drawn = ink[rows.min():rows.max() + 1, left + cols.min():left + cols.max() + 1]
        np.testing.assert_array_equal(drawn, _title_ink(title), err_msg=title)
        assert abs(cols.min() - (cell - 1 - cols.max())) <= 1, title  # centred in its cell
    assert (strip[:, ~columns] == 255).all()  # white between the cells


def _title_ink(text: str) -> np.ndarray:
    """The dark pixels of `text` in PIL's built-in font, alone on white, cropped to them."""
    from PIL import ImageDraw, ImageFont

    canvas = Image.new("L", (200, 40), 255)
    ImageDraw.Draw(canvas).text((10, 10), text, fill=0, font=ImageFont.load_default())
    ink = np.asarray(canvas) < 128
    rows, cols = np.nonzero(ink)
    return ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]


def test_titles_name_the_front_end_when_the_input_has_a_prior():
    assert loop.sample_titles(3) == ["input", "output", "target"]
    assert loop.sample_titles(6) == ["input", "front end", "output", "target"]
    assert loop.sample_titles(9) == ["input", "front end 1", "front end 2", "output", "target"]
