"""`jaxgan import-weights`: state dicts saved by the reference modules (reference/) become workdirs
holding a generator bundle that gives the PyTorch module's output (eval mode: the weights), and that
`jaxgan predict` runs the way the original's test script runs it (train mode, one whole image); every
bad file gets one clean error line and exit status 2."""

import contextlib
import dataclasses
import json
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from jaxgan import bundle, cli, images, pretrained  # noqa: E402
from jaxgan.predict import Predictor  # noqa: E402
from jaxgan.weights.workdir import published_config  # noqa: E402
from reference import deblurgan, deblurganv2, pix2pix  # noqa: E402
from reference.common import dropouts  # noqa: E402
from reference_helpers import max_errors, nchw, nhwc, randomize_norm_stats, state_file  # noqa: E402


def _pix2pix():
    torch.manual_seed(0)
    ref = pix2pix.init_weights(pix2pix.UnetGenerator(3, 3, num_downs=5, ngf=4))
    randomize_norm_stats(ref)
    return ref.eval(), dict()


def _deblurgan():
    torch.manual_seed(1)
    return deblurgan.ResnetGenerator(3, 3, ngf=4, n_blocks=1).eval(), dict()


def _fpn_mobilenet():
    torch.manual_seed(2)
    ref = deblurganv2.FPNMobileNet(num_filters=4, num_filters_fpn=8)
    randomize_norm_stats(ref)
    return deblurganv2.per_image_norm_eval(ref), dict(wrap="model", prefix="module.")


def _fpn_inception():
    """The Inception-ResNet-v2 backbone has fixed widths (full size); small FPN heads."""
    torch.manual_seed(3)
    ref = deblurganv2.FPNInception(num_filters=4, num_filters_fpn=8)
    randomize_norm_stats(ref)
    with torch.no_grad():  # keep the backbone's activations O(1) through its 30 residual blocks
        for m in ref.fpn.inception.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.mul_(0.5)
    return deblurganv2.per_image_norm_eval(ref), dict(wrap="model", prefix="module.")


CASES = {"pix2pix": (_pix2pix, 32), "deblurgan": (_deblurgan, 32), "deblurganv2_fpn_mobilenet": (_fpn_mobilenet, 64),
         "deblurganv2_fpn_inception": (_fpn_inception, 128)}


SMALL_D_CONFIG = """
from jaxgan.weights.workdir import published_config


def get_config():
    c = published_config({fmt!r})
    c.discriminator.options.base_width = 4  # the published D is random anyway: keep the test fast
    return c
"""


def _import(fmt, path, workdir, capsys, config=None):
    extra = ["--config", str(config)] if config else []
    code = cli.main(["import-weights", "--format", fmt, str(path), "--workdir", str(workdir)] + extra)
    captured = capsys.readouterr()
    return code, captured.err.strip()


@pytest.mark.parametrize("fmt", [pytest.param(f, marks=pytest.mark.slow) if f.endswith("inception") else f
                                 for f in sorted(CASES)])
def test_round_trip_predict_equals_pytorch(fmt, tmp_path, capsys):
    build, side = CASES[fmt]
    ref, save = build()
    path = state_file(ref, tmp_path / "weights.pth", **save)
    workdir = tmp_path / "run"
    config = tmp_path / "small_d.py"
    config.write_text(SMALL_D_CONFIG.format(fmt=fmt))
    code, err = _import(fmt, path, workdir, capsys, config)
    assert code == 0, err

    image = np.random.default_rng(0).uniform(-1, 1, (side, side, 3)).astype(np.float32)
    with torch.no_grad():
        expected = nhwc(ref(nchw(image[None])))[0]
    imported = bundle.load_generator(workdir)  # the weights, applied in eval mode as the reference is
    eval_mode = dataclasses.replace(imported, inference=bundle.Inference(train_mode=False, tile_size=0))
    out = Predictor(eval_mode).predict_array(image, tile_size=0)
    abs_err, rel_err = max_errors(out, expected)
    assert abs_err < 1e-4, (abs_err, rel_err)
    assert np.abs(expected - image).max() > 1e-2  # the network changes the image: the check is not trivial

    # a workdir is never overwritten
    capsys.readouterr()
    code, err = _import(fmt, path, workdir, capsys)
    assert code == 2 and "already holds checkpoints" in err and len(err.splitlines()) == 1


def _train_mode_pix2pix():
    """num_downs 6: one level with dropout (pix2pix's unet_256 has three); batch norm."""
    torch.manual_seed(0)
    ref = pix2pix.init_weights(pix2pix.UnetGenerator(3, 3, num_downs=6, ngf=4, use_dropout=True))
    randomize_norm_stats(ref)  # running statistics, which train mode does not use
    return ref, dict(), (64, 128)


def _train_mode_deblurgan():
    torch.manual_seed(1)
    return deblurgan.ResnetGenerator(3, 3, ngf=4, n_blocks=1, use_dropout=True), dict(), (32, 48)


def _train_mode_fpn_mobilenet():
    torch.manual_seed(2)
    ref = deblurganv2.FPNMobileNet(num_filters=4, num_filters_fpn=8)
    randomize_norm_stats(ref)
    return ref, dict(wrap="model", prefix="module."), (64, 96)


TRAIN_MODE_CASES = {"pix2pix": _train_mode_pix2pix, "deblurgan": _train_mode_deblurgan,
                    "deblurganv2_fpn_mobilenet": _train_mode_fpn_mobilenet}


@contextlib.contextmanager
def _dropout_masks(masks: dict, rng):
    """Every flax nn.Dropout at path P that is active (train mode) outputs x * masks[P] / (1 - rate),
    masks[P] drawn from `rng` (0 / 1, rate 0.5) the first time; an inactive one passes x through."""
    import flax.linen as nn

    def interceptor(next_fun, args, kwargs, context):
        module = context.module
        if isinstance(module, nn.Dropout) and context.method_name == "__call__":
            deterministic = kwargs.get("deterministic")
            if not (module.deterministic if deterministic is None else deterministic):
                path = "/".join(module.scope.path)
                if path not in masks:
                    masks[path] = (rng.uniform(size=args[0].shape) < 0.5).astype(np.float32)
                return args[0] * masks[path] / (1.0 - module.rate)
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(interceptor):
        yield masks


@pytest.mark.parametrize("fmt", sorted(TRAIN_MODE_CASES))
def test_imported_generator_predicts_as_its_original_test_script_runs_it(fmt, tmp_path, capsys):
    """pix2pix test.py (eval() only with --eval), DeblurGAN test.py (never eval()) and DeblurGAN-v2
    predict.py (model.train(True)) run G in train mode on one whole image: dropout on, batch norm on the
    image's own statistics. `jaxgan predict` on the imported weights equals the PyTorch module in train
    mode (the same dropout masks injected on both sides) on the whole image, through the command line too."""
    ref, save, (h, w) = TRAIN_MODE_CASES[fmt]()
    path = state_file(ref, tmp_path / "weights.pth", **save)
    workdir = tmp_path / "run"
    code, err = _import(fmt, path, workdir, capsys)  # the published config
    assert code == 0, err
    predictor = Predictor.from_workdir(str(workdir))
    assert predictor.train_mode and predictor.tile_size == 0
    assert published_config(fmt).data.eval_batch_size == 1  # evaluation: one image per batch, as test.py

    image = np.random.default_rng(3).uniform(-1, 1, (h, w, 3)).astype(np.float32)
    with _dropout_masks({}, np.random.default_rng(4)) as masks:
        out = predictor.predict_array(image)
    torch_drops = dropouts(ref)  # the same masks in the reference (both list its dropouts in order)
    assert len(masks) == len(torch_drops)
    for mask, (_, drop) in zip(masks.values(), torch_drops):
        drop.mask = torch.from_numpy(np.ascontiguousarray(mask.transpose(0, 3, 1, 2)))
    ref.train()  # the original's test-time mode
    with torch.no_grad():
        expected = nhwc(ref(nchw(image[None])))[0]
        eval_mode = nhwc(ref.eval()(nchw(image[None])))[0]
    abs_err, rel_err = max_errors(out, expected)
    assert abs_err < 1e-4, (abs_err, rel_err)
    assert np.abs(expected - eval_mode).max() > 1e-2  # train mode differs from eval mode: the check is not trivial

    # the command line runs it the same way (no tiles by default); 8-bit PNGs: one level where rounding ties
    src = tmp_path / "in.png"
    images.write_png(src, images.to_uint8(image))
    with _dropout_masks(masks, None):
        assert cli.main(["predict", "--workdir", str(workdir), str(src), "--output", str(tmp_path / "out")]) == 0
    written = images.read_image(tmp_path / "out" / "in.png").astype(int)
    with torch.no_grad():
        expected_png = images.to_uint8(nhwc(ref.train()(nchw(images.to_float(images.read_image(src))[None])))[0])
    assert np.abs(written - expected_png.astype(int)).max() <= 1


def test_import_writes_a_bundle_and_a_config_that_fine_tunes_it(tmp_path, capsys):
    """No training state is fabricated: WORKDIR/generator/0 holds the imported G, and config.json's
    train.init_from names it, so `jaxgan train --workdir WORKDIR` starts from the imported weights."""
    ref, _ = _deblurgan()
    path = state_file(ref, tmp_path / "weights.pth")
    code, err = _import("deblurgan", path, tmp_path / "run", capsys)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["config.json", bundle.LATEST_DIR]
    init_from = json.loads((tmp_path / "run" / "config.json").read_text())["train"]["init_from"]
    _, variables = pretrained.load_variables(init_from[len("pretrained:"):])
    kernel = ref.state_dict()["model.1.weight"].numpy()  # the first conv: (out, in, kh, kw) in PyTorch
    np.testing.assert_array_equal(variables["params"]["stem"]["kernel"], kernel.transpose(2, 3, 1, 0))


class _Code:
    def __reduce__(self):
        import os

        return (os.getcwd, ())


def _bad_files(tmp_path):
    ref, _ = _deblurgan()
    state = ref.state_dict()
    files = {}
    files["not_torch"] = tmp_path / "notes.pth"
    files["not_torch"].write_text("not a checkpoint\n")
    files["code"] = tmp_path / "code.pth"
    torch.save({"model": _Code()}, files["code"])
    files["raw_pickle"] = tmp_path / "raw.pkl"
    files["raw_pickle"].write_bytes(pickle.dumps(_Code()))
    missing = dict(state)
    del missing["model.4.weight"]
    files["missing"] = tmp_path / "missing.pth"
    torch.save(missing, files["missing"])
    extra = dict(state, **{"model.99.weight": torch.zeros(3)})
    files["extra"] = tmp_path / "extra.pth"
    torch.save(extra, files["extra"])
    shape = dict(state, **{"model.4.weight": torch.zeros(8, 4, 3, 2)})
    files["shape"] = tmp_path / "shape.pth"
    torch.save(shape, files["shape"])
    files["good"] = tmp_path / "good.pth"
    torch.save(state, files["good"])
    return files


@pytest.mark.parametrize("kind, fmt, needle", [
    ("not_torch", "deblurgan", "not a PyTorch checkpoint"),
    ("code", "deblurgan", "refused"),
    ("raw_pickle", "deblurgan", "refused"),
    ("missing", "deblurgan", "missing key 'model.4.weight'"),
    ("extra", "deblurgan", "unexpected key 'model.99.weight'"),
    ("shape", "deblurgan", "key 'model.4.weight' has shape (8, 4, 3, 2), expected (8, 4, 3, 3)"),
    ("good", "pix2pix", "missing key 'model.model.0.weight'"),
    ("good", "cyclegan", "unknown format 'cyclegan'"),
])
def test_bad_files_one_clean_line(kind, fmt, needle, tmp_path, capsys):
    files = _bad_files(tmp_path)
    workdir = tmp_path / "run"
    code, err = _import(fmt, files[kind], workdir, capsys)
    assert code == 2
    assert len(err.splitlines()) == 1 and needle in err, err
    assert not (workdir / "checkpoints").exists()


def test_missing_file(tmp_path, capsys):
    code, err = _import("pix2pix", tmp_path / "nothing.pth", tmp_path / "run", capsys)
    assert code == 2 and "no such file" in err


def test_hdf5_file_named(tmp_path, capsys):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "fpn_mobilenet.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.zeros(3)
    code, err = _import("deblurganv2_fpn_mobilenet", path, tmp_path / "run", capsys)
    assert code == 2 and "HDF5" in err and len(err.splitlines()) == 1
