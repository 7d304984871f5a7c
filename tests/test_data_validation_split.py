"""The validation split: carved from train when a dataset has none; the loop selects on it, tests once."""

import json

import numpy as np
import pytest
from PIL import Image

from jaxgan.config import base_config
from jaxgan.data import sources


def test_carved_rows_closed_form():
    np.testing.assert_array_equal(sources.carved_rows(25), [9, 19])
    np.testing.assert_array_equal(sources.carved_rows(5), [4])
    assert len(sources.carved_rows(1)) == 0


def _folder(tmp_path, n):
    for split_dir in ("blur", "sharp"):
        (tmp_path / "train" / split_dir).mkdir(parents=True)
    for i in range(n):
        pixels = np.full((8, 8, 3), i, np.uint8)
        for split_dir in ("blur", "sharp"):
            Image.fromarray(pixels).save(tmp_path / "train" / split_dir / f"{i:03d}.png")
    c = base_config()
    c.data.name, c.data.path = "folder_deblur", str(tmp_path)
    return c


def test_a_dataset_without_validation_split_gives_up_every_tenth_training_row(tmp_path):
    config = _folder(tmp_path, 23)
    train = sources.make_source(config, "train")
    val = sources.make_source(config, "val")
    names = lambda s: {str(p).rsplit("/", 1)[-1] for p in s.columns["sharp"]}  # noqa: E731
    assert names(val) == {"009.png", "019.png"}
    assert len(train) == 21 and not names(train) & names(val)
    (tmp_path / "val" / "blur").mkdir(parents=True)  # a folder of its own: nothing is carved
    (tmp_path / "val" / "sharp").mkdir(parents=True)
    for d in ("blur", "sharp"):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "val" / d / "x.png")
    assert len(sources.make_source(config, "train")) == 23 and len(sources.make_source(config, "val")) == 1


def test_loop_selects_the_best_on_validation_and_tests_the_best_once(tmp_path, monkeypatch):
    from jaxgan.train import loop
    from jaxgan.train import train_and_evaluate
    from train_helpers import enable_compilation_cache, loop_test_config, patch_engine

    enable_compilation_cache()
    patch_engine(monkeypatch.setattr)
    calls = []
    val_psnr = {2: 30.0, 4: 20.0}  # the validation split prefers step 2

    def fake_evaluation(config, g_module, variables, split=None, num_samples=0, lpips=None):
        step = len([c for c in calls if c[0] == "val"]) * 2 + 2
        calls.append((split, variables))
        psnr = val_psnr[step] if split == "val" else 99.0
        return {"psnr": psnr}, {"input": np.zeros((0,)), "output": np.zeros((0,)), "target": np.zeros((0,))}

    monkeypatch.setattr(loop, "run_evaluation", fake_evaluation)
    config = loop_test_config()
    config.train.eval_every = config.train.checkpoint_every = 2
    config.train.best_metric = "psnr"
    result = train_and_evaluate(config, str(tmp_path))
    assert [c[0] for c in calls] == ["val", "val", "test"]
    assert [p.name for p in (tmp_path / "best").iterdir() if p.name.isdigit()] == ["2"]
    # the test split saw the best (step 2) generator, the one given to the step-2 validation
    import jax

    for a, b in zip(jax.tree.leaves(calls[0][1]), jax.tree.leaves(calls[2][1]), strict=True):
        np.testing.assert_array_equal(a, b)
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [l["step"] for l in lines if l["split"] == "test"] == [4]
    assert result["eval_psnr"] == 20.0 and "test_psnr" in result
