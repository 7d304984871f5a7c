"""jaxgan.export / `jaxgan export`: each artefact, run by its own runtime, equals jaxgan's prediction.

A tiny ResNet generator (size multiple 4, so the padding inside the exported function is exercised)
trained 2 steps with EMA; a non-square 37x45 image. TFLite is float32 (no quantisation): 1e-4 too.
ONNX, run by onnxruntime: one generator of each family at tiny widths, deblurring and segmentation.
"""

import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgan import cli, export
from jaxgan.predict import Predictor
from jaxgan.train import train_and_evaluate
from train_helpers import enable_compilation_cache, patch_engine, tiny_config, train_on_fake_data

enable_compilation_cache()
ROOT = Path(__file__).parents[1]
H, W = 37, 45  # non-square, neither side a multiple of 4 (export.MIN_SIDE = 32)


def _resnet_config(task="deblur"):
    c = tiny_config(task, norm="instance", steps=2)
    out = 3 if task == "deblur" else 2
    with c.generator.unlocked():
        c.generator.name = "resnet"
        c.generator.options = dict(in_channels=3, out_channels=out, base_width=4, num_blocks=1, norm="instance",
                                   out_activation="tanh" if task == "deblur" else "none")
    with c.discriminator.unlocked():
        c.discriminator.options = dict(in_channels=3 + out, base_width=4,
                                       num_layers=1, norm="none")
    if task == "segment":
        c.data.num_classes = 2
        c.loss.mask = "softmax_ce"
    c.train.ema_decay = 0.5
    c.train.eval_lpips = False
    return c


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("export_run")
    train_on_fake_data(_resnet_config(), workdir)
    return workdir


@pytest.fixture(scope="module")
def image_and_expected(run):
    image = np.random.default_rng(0).uniform(-1, 1, (H, W, 3)).astype(np.float32)
    expected = Predictor.from_workdir(str(run)).predict_array(image)
    return image, expected


def test_symbolic_padding_matches_numpy_pad():
    """pad_to_multiple with symbolic sides (an exported model) pads as numpy does: reflect, or edge when a
    pad is not shorter than its side."""
    from jax import export as jax_export

    from jaxgan.nets.layers import pad_to_multiple

    for shape in ((5, 7, 2), (2, 9, 1), (8, 8, 3)):
        x = np.random.default_rng(1).normal(size=shape).astype(np.float32)
        ph, pw = -shape[0] % 4, -shape[1] % 4
        mode = "reflect" if ph < shape[0] and pw < shape[1] else "edge"
        reference = np.pad(x, ((0, ph), (0, pw), (0, 0)), mode=mode)
        h, w = jax_export.symbolic_shape("h, w")
        spec = jax.ShapeDtypeStruct((1, h, w, shape[2]), jnp.float32)
        exported = jax_export.export(jax.jit(lambda a: pad_to_multiple(a, 4)))(spec)
        np.testing.assert_array_equal(np.asarray(exported.call(x[None]))[0], reference)
        np.testing.assert_array_equal(np.asarray(pad_to_multiple(x[None], 4))[0], reference)


def test_stablehlo_deserialised_equals_prediction(run, image_and_expected, tmp_path):
    from flax import serialization
    from jax import export as jax_export

    image, expected = image_and_expected
    out = export.export(str(run), "stablehlo", str(tmp_path / "hlo"))
    exported = jax_export.deserialize(bytearray((out / export.STABLEHLO_FILE).read_bytes()))
    variables = serialization.msgpack_restore((out / export.VARIABLES_FILE).read_bytes())
    result = np.asarray(exported.call(variables, image[None])["image"])[0]
    assert result.shape == expected.shape and np.abs(result - expected).max() < 1e-4
    # dynamic sizes: a batch of two 33x40 images too
    batch = np.stack([image[:33, :40], -image[:33, :40]])
    both = np.asarray(exported.call(variables, batch)["image"])
    predictor = Predictor.from_workdir(str(run))
    for row in range(2):
        assert np.abs(both[row] - predictor.predict_array(batch[row])).max() < 1e-4, row


def test_savedmodel_loaded_by_tensorflow_equals_prediction(run, image_and_expected, tmp_path):
    import tensorflow as tf

    image, expected = image_and_expected
    out = export.export(str(run), "savedmodel", str(tmp_path / "sm"))
    serve = tf.saved_model.load(str(out)).signatures["serving_default"]
    result = serve(image=tf.constant(image[None]))["image"].numpy()[0]
    assert np.abs(result - expected).max() < 1e-4
    # a batch of two: each row its own prediction
    batch = np.stack([image, -image])
    both = serve(image=tf.constant(batch))["image"].numpy()
    assert both.shape == batch.shape
    predictor = Predictor.from_workdir(str(run))
    for row in range(2):
        assert np.abs(both[row] - predictor.predict_array(batch[row])).max() < 1e-4, row


def test_tflite_interpreter_equals_prediction_at_fixed_size(run, image_and_expected, tmp_path):
    import tensorflow as tf

    image, expected = image_and_expected
    with pytest.raises(export.ExportError, match="dynamic image size: pass --size"):
        export.export(str(run), "tflite", str(tmp_path / "dyn.tflite"))
    out = export.export(str(run), "tflite", str(tmp_path / "m.tflite"), size=(H, W))
    interpreter = tf.lite.Interpreter(model_path=str(out))
    interpreter.allocate_tensors()
    (inp,), (outp,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert outp["dtype"] == np.float32  # not quantised
    interpreter.set_tensor(inp["index"], image[None])
    interpreter.invoke()
    result = interpreter.get_tensor(outp["index"])[0]
    assert np.abs(result - expected).max() < 1e-4


def test_segmentation_export_gives_the_predicted_mask(tmp_path, monkeypatch):
    from flax import serialization
    from jax import export as jax_export

    patch_engine(monkeypatch.setattr)
    train_and_evaluate(_resnet_config("segment"), str(tmp_path / "seg"))
    image = np.random.default_rng(2).uniform(-1, 1, (H, W, 3)).astype(np.float32)
    expected = Predictor.from_workdir(str(tmp_path / "seg")).predict_array(image)
    out = export.export(str(tmp_path / "seg"), "stablehlo", str(tmp_path / "hlo"))
    exported = jax_export.deserialize(bytearray((out / export.STABLEHLO_FILE).read_bytes()))
    variables = serialization.msgpack_restore((out / export.VARIABLES_FILE).read_bytes())
    mask = np.asarray(exported.call(variables, image[None])["mask"])[0]
    assert mask.dtype == np.int32
    np.testing.assert_array_equal(mask, expected)


def test_cli_refuses_to_overwrite_and_bad_size(run, tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.mkdir()
    assert cli.main(["export", "--workdir", str(run), "--format", "savedmodel", "--output", str(taken)]) == 2
    assert "exists; export never overwrites" in capsys.readouterr().err
    assert cli.main(["export", "--workdir", str(run), "--format", "tflite", "--output", str(tmp_path / "x"),
                     "--size", "12by5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--size '12by5': expected HxW" in err[0]
    assert not (tmp_path / "x").exists()


def test_readme_savedmodel_example_runs(run, tmp_path, monkeypatch):
    """The README's 'running the SavedModel without jaxgan' block, executed against a tiny export."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- savedmodel example -->\s*```python\n(.*?)```", readme, re.S).group(1)
    assert "jaxgan" not in block and len(block.strip().splitlines()) <= 10
    export.export(str(run), "savedmodel", str(tmp_path / "deblur_savedmodel"))
    written, predicted = _run_readme_block(block, run, tmp_path, monkeypatch, seed=3)
    assert written.shape == (H, W, 3)
    assert np.abs(written.astype(int) - predicted).max() <= 1  # rounding of values within 1e-4


# One generator of each family, tiny, as jaxgan predict runs it: (task, name, options). The ResNet deblurrer
# is the trained run above (test_onnx_export_of_a_run_needs_a_size_and_equals_prediction).
ONNX_FAMILIES = {
    "unet_segment": ("segment", "unet", dict(in_channels=3, out_channels=2, depth=3, base_width=4, norm="batch",
                                             dropout=False, out_activation="none")),
    "resnet_instance_norm_segment": ("segment", "resnet", dict(in_channels=3, out_channels=1, base_width=4,
                                                               num_blocks=1, norm="instance", out_activation="none")),
    "fpn_mobilenet_deblur": ("deblur", "fpn_mobilenet", dict(in_channels=3, out_channels=3, base_width=8,
                                                             backbone_width=0.35)),
    "nafnet_deblur": ("deblur", "nafnet", dict(in_channels=3, out_channels=3, base_width=4, depth=2, blocks=1,
                                               middle_blocks=1, space_to_depth=2)),
}
ONNX_MAX_DIFF = {}  # family -> max |ONNX - predict| (printed for the report with -s)


def _onnx_run(path, image):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"]
    return session.run(None, {"image": image[None]})[0][0]


@pytest.mark.parametrize("family", sorted(ONNX_FAMILIES))
def test_onnx_by_onnxruntime_equals_prediction(family, tmp_path):
    """Each family's ONNX export (random weights, batch norm statistics kept as initialised) equals
    Predictor.predict_array, the computation of `jaxgan predict`, on the non-square 37x45 image."""
    from jaxgan.train.state import make_modules

    task, name, options = ONNX_FAMILIES[family]
    config = tiny_config(task)
    with config.generator.unlocked():
        config.generator.name = name
        config.generator.options = options
    config.discriminator.options.in_channels = 3 + options["out_channels"]
    if task == "segment":
        config.data.num_classes = 2
        config.loss.mask = "softmax_ce" if options["out_channels"] == 2 else "sigmoid_ce"
    module, _ = make_modules(config)
    variables = module.init(jax.random.PRNGKey(1), jnp.zeros((1, 64, 64, 3)), train=False)
    params = jax.tree.map(lambda v: v + 0.05 * jax.random.normal(jax.random.PRNGKey(2), v.shape, v.dtype),
                          variables["params"])  # away from the identity / zero initialisations
    variables = {**variables, "params": params}
    image = np.random.default_rng(4).uniform(-1, 1, (H, W, 3)).astype(np.float32)
    expected = Predictor.from_config(config, module, variables).predict_array(image)
    out = tmp_path / "model.onnx"
    export.export_onnx(export.inference_fn(config, module, "tflite", last_step=False), variables, config, (H, W), out)
    result = _onnx_run(out, image)
    if task == "segment":
        assert result.dtype == np.int32 and len(np.unique(expected)) == 2
        np.testing.assert_array_equal(result, expected)
    else:
        ONNX_MAX_DIFF[family] = float(np.abs(result - expected).max())
        print(f"onnx {family}: max |diff| vs predict {ONNX_MAX_DIFF[family]:.2e}")
        assert result.shape == expected.shape and ONNX_MAX_DIFF[family] < 1e-4


@pytest.mark.parametrize("task,channels", [("deblur", 3), ("segment", 1), ("segment", 3)])
def test_onnx_last_step_is_the_tasks(task, channels):
    """The ONNX ending of a network output x (B, H, W, C): clip to [-1, 1]; x > 0 (one channel) or the
    first argmax over C, as int32: Task.traced_prediction."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from jaxgan.task import get_task

    name = "deblurred" if task == "deblur" else "mask"
    graph = helper.make_graph([helper.make_node("Identity", ["image"], [name])], "g",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, [2, 3, 4, channels])],
                              [helper.make_tensor_value_info(name, TensorProto.FLOAT, [2, 3, 4, channels])])
    export._append_last_step(graph, name, task == "deblur")
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", export.ONNX_OPSET)], ir_version=8)
    x = np.round(np.random.default_rng(6).uniform(-3, 3, (2, 3, 4, channels)), 0).astype(np.float32)  # ties too
    (result,) = ort.InferenceSession(model.SerializeToString()).run(None, {"image": x})
    expected = np.asarray(get_task(task).traced_prediction(jnp.asarray(x)))
    assert result.dtype == expected.dtype and result.shape == expected.shape
    np.testing.assert_array_equal(result, expected)


def test_onnx_export_of_a_run_needs_a_size_and_equals_prediction(run, image_and_expected, tmp_path, capsys):
    image, expected = image_and_expected
    assert cli.main(["export", "--workdir", str(run), "--format", "onnx", "--output", str(tmp_path / "d.onnx")]) == 2
    assert "onnx cannot carry a model with a dynamic image size: pass --size HxW" in capsys.readouterr().err
    assert not (tmp_path / "d.onnx").exists()
    assert cli.main(["export", "--workdir", str(run), "--format", "onnx", "--output", str(tmp_path / "m.onnx"),
                     "--size", f"{H}x{W}"]) == 0
    result = _onnx_run(tmp_path / "m.onnx", image)
    print(f"onnx resnet run (EMA weights): max |diff| vs predict {np.abs(result - expected).max():.2e}")
    assert np.abs(result - expected).max() < 1e-4


def test_readme_onnx_example_runs(run, tmp_path, monkeypatch):
    """The README's onnxruntime block (6 lines, no jaxgan), executed against a tiny ONNX export."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- onnx example -->\s*```python\n(.*?)```", readme, re.S).group(1)
    assert "jaxgan" not in block and len(block.strip().splitlines()) == 6
    export.export(str(run), "onnx", str(tmp_path / "deblur.onnx"), size=(H, W))
    written, predicted = _run_readme_block(block, run, tmp_path, monkeypatch, seed=5)
    assert written.shape == (H, W, 3)
    assert np.abs(written.astype(int) - predicted).max() <= 1  # rounding of values within 1e-4


def test_stablehlo_export_of_a_run_with_an_input_prior_equals_prediction(tmp_path):
    """A run whose G reads the image and its blind-deconvolution prior (6 channels): the exported
    model computes the prior inside and gives the prediction; without --size it is refused."""
    from flax import serialization
    from jax import export as jax_export
    from skimage import data as skdata

    from jaxgan.train import checkpoint, state as state_lib

    config = tiny_config("deblur")
    config.data.prior = "blind_deconv"
    config.data.prior_options.kernel_size = 15
    config.data.prior_options.iterations = 2
    config.generator.options.in_channels = 6
    config.discriminator.options.in_channels = 9
    g, d = state_lib.make_modules(config)
    state = state_lib.create_state(config, g, d, {"input": np.zeros((1, 16, 16, 6), np.float32)},
                                   jax.random.PRNGKey(0))
    ckpt = checkpoint.Checkpointer(tmp_path / "run", config)
    ckpt.save(1, state)
    ckpt.wait()
    ckpt.close()
    image = skdata.astronaut()[100:164, 180:244].astype(np.float32) / 127.5 - 1.0
    expected = Predictor.from_workdir(str(tmp_path / "run")).predict_array(image)
    with pytest.raises(export.ExportError, match="needs a fixed image size"):
        export.export(str(tmp_path / "run"), "stablehlo", str(tmp_path / "dyn"))
    out = export.export(str(tmp_path / "run"), "stablehlo", str(tmp_path / "hlo"), size=(64, 64))
    exported = jax_export.deserialize(bytearray((out / export.STABLEHLO_FILE).read_bytes()))
    variables = serialization.msgpack_restore((out / export.VARIABLES_FILE).read_bytes())
    result = np.asarray(exported.call(variables, image[None])["image"])[0]
    assert result.shape == expected.shape and np.abs(result - expected).max() < 1e-4


def _run_readme_block(block: str, run, tmp_path, monkeypatch, seed: int):
    """Runs a README block (which reads photo.png and writes photo_deblurred.png) in tmp_path on a random
    photo; returns (what it wrote, jaxgan predict's 8-bit result for the run) as uint8 arrays."""
    from PIL import Image

    from jaxgan import images

    rgb = np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "photo.png")
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "README.md", "exec"), {})
    written = np.asarray(Image.open(tmp_path / "photo_deblurred.png"))
    return written, images.to_uint8(Predictor.from_workdir(str(run)).predict_array(images.to_float(rgb)))


def test_a_train_mode_bundle_exports_what_predict_computes_in_train_mode(tmp_path):
    """An imported pix2pix U-Net runs as the original's test.py (batch norm on the image's own statistics,
    dropout on): its StableHLO export equals predict's first whole image, and differs from inference mode."""
    from jax import export as jax_export
    from flax import serialization

    from jaxgan import bundle as bundle_lib
    from jaxgan.train.state import make_modules

    config = tiny_config("deblur")
    with config.generator.unlocked():  # depth 6: dropout on level 4 (pix2pix's use_dropout blocks)
        config.generator.options = dict(in_channels=3, out_channels=3, base_width=4, depth=6, norm="batch",
                                        out_activation="tanh")
    module, _ = make_modules(config)
    variables = module.init(jax.random.PRNGKey(1), jnp.zeros((1, 64, 64, 3)), train=False)
    stats = jax.tree.map(lambda v: v + 0.3, variables["batch_stats"])  # stored statistics far from the image's
    variables = {**variables, "batch_stats": stats}
    trained = bundle_lib.GeneratorBundle(config, jax.tree.map(np.asarray, variables),
                                         bundle_lib.Inference(train_mode=True, tile_size=0))
    trained.save(tmp_path / "bundle")
    image = np.random.default_rng(5).uniform(-1, 1, (64, 64, 3)).astype(np.float32)
    expected = Predictor(trained).predict_array(image)
    out = export.export(str(tmp_path / "bundle"), "stablehlo", str(tmp_path / "hlo"))
    exported = jax_export.deserialize(bytearray((out / export.STABLEHLO_FILE).read_bytes()))
    saved = serialization.msgpack_restore((out / export.VARIABLES_FILE).read_bytes())
    result = np.asarray(exported.call(saved, image[None])["image"])[0]
    assert np.abs(result - expected).max() < 1e-5
    inference_mode = Predictor(bundle_lib.GeneratorBundle(config, trained.variables)).predict_array(image)
    assert np.abs(inference_mode - expected).max() > 0.1
    other_masks = Predictor(trained)
    other_masks.predict_array(image)  # predict's second call draws other dropout masks
    assert np.abs(other_masks.predict_array(image) - expected).max() > 0.1


def test_flip_views_are_the_same_ensemble_in_predict_and_in_the_export(run, image_and_expected):
    """config.eval.flip_views=4 on the 37x45 image (the ResNet pads to a multiple of 4): predict's
    output is the mean of its one-view outputs on the four flips of the image, flipped back (each flip
    padded at its own bottom / right), and the exported function computes the same."""
    import dataclasses

    from jaxgan.bundle import load_generator

    image, one_view = image_and_expected
    bundle = load_generator(str(run))
    config = bundle.config
    config.eval.flip_views = 4
    four = Predictor(dataclasses.replace(bundle, config=config))
    predicted = four.predict_array(image)
    single = Predictor.from_workdir(str(run))
    flips = [single.predict_array(np.ascontiguousarray(np.flip(image, axes))) for axes in
             ((), (1,), (0,), (0, 1))]
    by_hand = np.mean([np.flip(out, axes) for out, axes in zip(flips, ((), (1,), (0,), (0, 1)))], axis=0)
    np.testing.assert_allclose(predicted, by_hand, rtol=0, atol=1e-6)
    assert np.abs(predicted - one_view).max() > 1e-3  # the flips change the output
    exported = export.inference_fn(config, four.module)(four.variables, jnp.asarray(image[None]))["image"][0]
    np.testing.assert_allclose(np.asarray(exported), predicted, rtol=0, atol=1e-5)
