"""jaxgan.score / `jaxgan score`: each convention against its source's formula, written here again
independently (scikit-image as the oracle for the parts it covers), on one fixed pair; folders matched
by file name, the table, JSON and CSV, and the one-line errors.

Sources: BasicSR basicsr/metrics/psnr_ssim.py (calculate_psnr / calculate_ssim / _ssim), metric_util.py
(to_y_channel), utils/color_util.py (bgr2ycbcr); MATLAB rgb2ycbcr / psnr / ssim (Image Processing
Toolbox); DeblurGAN-v2 test_metrics.py:59-67 and util/metrics.py PSNR, pyssim ssim/ssimlib.py
cw_ssim_value (scipy.signal.cwt with ricker, before pyssim 0.7.1).
"""

import csv
import json
import math

import numpy as np
import pytest
from PIL import Image
from scipy import signal
from skimage import data, metrics as skm
from skimage.filters import gaussian

from jaxgan import cli, score

PSNR_TOL, SSIM_TOL = 1e-6, 1e-5


@pytest.fixture(scope="module")
def pair():
    """A fixed (prediction, target) pair: 40x56 of scikit-image's astronaut and a blurred, noisy copy."""
    target = data.astronaut()[100:140, 180:236]
    blurred = gaussian(target, sigma=1.2, channel_axis=-1, preserve_range=True)
    noisy = blurred + np.random.default_rng(0).normal(0, 6, target.shape)
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8), target


def _gauss_window(size=11, sigma=1.5):
    """cv2.getGaussianKernel(11, 1.5) outer itself (BasicSR _ssim's window), Wang et al.'s fspecial."""
    x = np.arange(size) - (size - 1) / 2
    g = np.exp(-x ** 2 / (2 * sigma ** 2))
    g /= g.sum()
    return np.outer(g, g)


def _wang_ssim_map(a, b, peak, pad_mode=None):
    """Wang et al. 2004 on 2-D float64 images; 'valid' window positions, or with `pad_mode` the borders
    padded by 5 first (a same-size map)."""
    window = _gauss_window()
    if pad_mode:
        a, b = np.pad(a, 5, mode=pad_mode), np.pad(b, 5, mode=pad_mode)

    def filt(x):
        return signal.correlate2d(x, window, mode="valid")

    mu1, mu2 = filt(a), filt(b)
    s1, s2, s12 = filt(a * a) - mu1 ** 2, filt(b * b) - mu2 ** 2, filt(a * b) - mu1 * mu2
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    return ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1 ** 2 + mu2 ** 2 + c1) * (s1 + s2 + c2))


def _report(convention, ours, reference):
    print(f"\n{convention}: jaxgan psnr {ours['psnr']:.8f} ssim {ours['ssim']:.8f} | "
          f"reference psnr {reference['psnr']:.8f} ssim {reference['ssim']:.8f}")
    assert abs(ours["psnr"] - reference["psnr"]) <= PSNR_TOL
    assert abs(ours["ssim"] - reference["ssim"]) <= SSIM_TOL


def test_jaxgan_convention_is_skimage_rgb(pair):
    pred, target = pair
    a, b = pred / 255.0, target / 255.0
    reference = {"psnr": skm.peak_signal_noise_ratio(b, a, data_range=1.0),
                 "ssim": skm.structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                                   data_range=1.0, channel_axis=-1)}
    _report("jaxgan", score.image_scores(pred, target, "jaxgan"), reference)


def _y_basicsr(rgb):
    """to_y_channel of a BGR uint8 image: float32 / 255, bgr2ycbcr(y_only) kept float32, times 255."""
    bgr = rgb[..., ::-1].astype(np.float32) / 255.0
    y = (np.dot(bgr, [24.966, 128.553, 65.481]) + 16.0) / 255.0
    return (y.astype(np.float32) * 255.0).astype(np.float64)


@pytest.mark.parametrize("crop", [0, 4])
def test_basicsr_convention_is_its_y_channel_psnr_ssim(pair, crop):
    pred, target = pair
    a, b = _y_basicsr(pred), _y_basicsr(target)
    if crop:
        a, b = a[crop:-crop, crop:-crop], b[crop:-crop, crop:-crop]
    mse = np.mean((a - b) ** 2)
    reference = {"psnr": 10 * np.log10(255.0 ** 2 / mse), "ssim": _wang_ssim_map(a, b, 255.0).mean()}
    oracle = skm.structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                       data_range=255)
    assert abs(oracle - reference["ssim"]) < 1e-12  # scikit-image agrees with the formula written here
    _report(f"basicsr crop {crop}", score.image_scores(pred, target, "basicsr", crop=crop), reference)


def test_matlab_convention_is_rounded_y_and_replicate_padded_ssim(pair):
    pred, target = pair
    crop = 4

    def y(rgb):  # rgb2ycbcr on uint8: imlincomb rounds to uint8
        rgb = rgb.astype(np.float64)
        return np.floor(16 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255 + 0.5)

    a, b = y(pred)[crop:-crop, crop:-crop], y(target)[crop:-crop, crop:-crop]
    assert np.all(a == np.round(a)) and a.max() <= 235
    reference = {"psnr": skm.peak_signal_noise_ratio(b, a, data_range=255),
                 "ssim": _wang_ssim_map(a, b, 255.0, pad_mode="edge").mean()}
    _report("matlab crop 4", score.image_scores(pred, target, "matlab", crop=crop), reference)


def _ricker(points, a):
    """scipy.signal.ricker (scipy <= 1.14)."""
    x = np.arange(points) - (points - 1.0) / 2
    return 2 / (np.sqrt(3 * a) * np.pi ** 0.25) * (1 - x ** 2 / a ** 2) * np.exp(-x ** 2 / (2 * a ** 2))


def _cw_ssim(gray1, gray2, width=30, k=0.01):
    """pyssim cw_ssim_value: scipy.signal.cwt (direct np.convolve here, mode 'same') of the flattened
    grayscale images, widths 1..30."""
    s1, s2 = gray1.reshape(-1).astype(float), gray2.reshape(-1).astype(float)
    c1 = np.stack([np.convolve(s1, _ricker(min(10 * w, len(s1)), w)[::-1], mode="same") for w in range(1, width + 1)])
    c2 = np.stack([np.convolve(s2, _ricker(min(10 * w, len(s2)), w)[::-1], mode="same") for w in range(1, width + 1)])
    num1 = 2 * np.sum(np.abs(c1) * np.abs(c2), axis=0) + k
    den1 = np.sum(np.abs(c1) ** 2, axis=0) + np.sum(np.abs(c2) ** 2, axis=0) + k
    c12 = c1 * np.conjugate(c2)
    num2 = 2 * np.abs(np.sum(c12, axis=0)) + k
    den2 = 2 * np.sum(np.abs(c12), axis=0) + k
    return np.average((num1 / den1) * (num2 / den2))


def test_deblurganv2_convention_is_its_psnr_and_cw_ssim(pair):
    pred, target = pair
    mse = np.mean((pred / 255.0 - target / 255.0) ** 2)
    gray = [np.asarray(Image.fromarray(x).convert("L")) for x in (pred, target)]
    reference = {"psnr": 20 * math.log10(1 / math.sqrt(mse)), "ssim": _cw_ssim(*gray)}
    _report("deblurganv2", score.image_scores(pred, target, "deblurganv2"), reference)
    assert score.image_scores(target, target, "deblurganv2")["psnr"] == 100  # its value for identical images


def test_conventions_differ_on_the_pair(pair):
    """The conventions are not one number under four names: PSNR on RGB (jaxgan, deblurganv2: one formula),
    on unrounded Y (basicsr), on rounded Y (matlab); four SSIMs (borders, Y, CW-SSIM)."""
    values = {c: score.image_scores(*pair, c) for c in score.CONVENTIONS}
    assert len({round(v["psnr"], 4) for v in values.values()}) == 3
    assert len({round(v["ssim"], 4) for v in values.values()}) == 4


def _write(folder, name, array):
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(folder / name)


def test_cli_scores_folders_matched_by_name_table_json_csv(pair, tmp_path, capsys):
    pred, target = pair
    _write(tmp_path / "pred", "b.png", pred)
    _write(tmp_path / "pred", "a.png", target)
    _write(tmp_path / "gt", "a.png", target)
    _write(tmp_path / "gt", "b.png", target)
    out_json, out_csv = tmp_path / "s.json", tmp_path / "s.csv"
    assert cli.main(["score", str(tmp_path / "pred"), str(tmp_path / "gt"), "--convention", "basicsr",
                     "--crop-border", "4", "--no-lpips", "--json", str(out_json), "--csv", str(out_csv)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["image", "psnr", "ssim"] and [r.split()[0] for r in table[1:]] == ["a", "b", "mean"]
    expected_b = score.image_scores(pred, target, "basicsr", crop=4)
    saved = json.loads(out_json.read_text())
    assert saved["images"][0]["psnr"] == math.inf and saved["images"][1]["psnr"] == expected_b["psnr"]
    assert saved["summary"]["convention"] == "basicsr" and saved["summary"]["num_images"] == 2
    rows = list(csv.DictReader(out_csv.open()))
    assert [r["name"] for r in rows] == ["a", "b"] and float(rows[1]["ssim"]) == pytest.approx(expected_b["ssim"])
    # never overwritten
    assert cli.main(["score", str(tmp_path / "pred"), str(tmp_path / "gt"), "--no-lpips", "--json", str(out_json)]) == 2
    assert "exists; score never overwrites" in capsys.readouterr().err


@pytest.mark.parametrize("problem", ["missing", "extra", "size"])
def test_cli_errors_are_one_line_exit_2(pair, tmp_path, capsys, problem):
    pred, target = pair
    _write(tmp_path / "pred", "a.png", pred)
    _write(tmp_path / "gt", "a.png", target)
    if problem == "missing":
        _write(tmp_path / "gt", "c.jpg", target)
    elif problem == "extra":
        _write(tmp_path / "pred", "d.png", pred)
    else:
        _write(tmp_path / "pred", "e.png", pred[:, :50])
        _write(tmp_path / "gt", "e.png", target)
    assert cli.main(["score", str(tmp_path / "pred"), str(tmp_path / "gt"), "--no-lpips"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    expected = {"missing": "no prediction for " + str(tmp_path / "gt" / "c.jpg"),
                "extra": "no target for " + str(tmp_path / "pred" / "d.png"),
                "size": "e.png is 50x40 but its target"}[problem]
    assert expected in err[0]


def test_masks_iou_dice_closed_form(tmp_path, capsys):
    """4x4 binary masks (0/255 files): class 1 predicted on 3 pixels, true on 4, 2 overlap. IoU: background
    11 / (11 + 2 + 1), object 2 / (2 + 1 + 2); Dice: 2 x 11 / (2 x 11 + 3), 2 x 2 / (2 x 2 + 3)."""
    truth = np.zeros((4, 4), np.uint8)
    truth[0, :4] = 255
    pred = np.zeros((4, 4), np.uint8)
    pred[0, :2] = 255
    pred[1, 0] = 255
    _write(tmp_path / "pred", "m.png", pred)
    _write(tmp_path / "gt", "m.png", truth)
    rows, summary = score.score_folders(str(tmp_path / "pred"), str(tmp_path / "gt"), task="segment")
    assert rows[0]["iou"] == pytest.approx((11 / 14 + 2 / 5) / 2)
    assert rows[0]["dice"] == pytest.approx((22 / 25 + 4 / 7) / 2)
    assert summary["dataset_iou"] == pytest.approx(rows[0]["iou"])


def test_cli_conventions_are_score_conventions():
    assert cli.CONVENTIONS == score.CONVENTIONS


def test_evaluate_convention_scores_the_runs_8_bit_outputs(tmp_path, monkeypatch, capsys):
    """`jaxgan evaluate --convention basicsr`: the mean over the eval split's valid rows of image_scores on
    the run's predictions (Predictor, the path of jaxgan predict) rounded to 8 bits; deblurganv2 truncates."""
    from jaxgan import images
    from jaxgan.predict import Predictor
    from jaxgan.train import train_and_evaluate
    from train_helpers import enable_compilation_cache, fake_eval_iterator, patch_engine, tiny_config

    enable_compilation_cache()
    patch_engine(monkeypatch.setattr)
    monkeypatch.setattr(score, "_make_eval_iterator", lambda config, split: fake_eval_iterator(config, split=split))
    config = tiny_config("deblur", steps=2)
    config.train.eval_lpips = False
    train_and_evaluate(config, str(tmp_path / "run"))
    assert cli.main(["evaluate", "--workdir", str(tmp_path / "run"), "--convention", "basicsr",
                     "--crop-border", "2"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert json.loads((tmp_path / "run" / "eval_test_basicsr.json").read_text()) == results
    predictor = Predictor.from_workdir(str(tmp_path / "run"))
    rows = []
    for batch in fake_eval_iterator(predictor.config or config):
        for x, target, valid in zip(batch["input"], batch["target"], batch["valid"]):
            if valid:
                pred = images.to_uint8(predictor.predict_array(x))
                rows.append(score.image_scores(pred, images.to_uint8(target), "basicsr", crop=2))
    assert results["num_examples"] == len(rows) == 7
    assert results["psnr"] == pytest.approx(np.mean([r["psnr"] for r in rows]), abs=1e-3)
    assert results["ssim"] == pytest.approx(np.mean([r["ssim"] for r in rows]), abs=1e-4)
    # 254.87: truncated by DeblurGAN-v2's test_metrics.py, rounded by the others
    assert score.to_uint8(np.array([0.999]), "deblurganv2")[0] == 254
    assert score.to_uint8(np.array([0.999]), "basicsr")[0] == 255
