"""`jaxgan export`: a trained generator as a TensorFlow SavedModel, a TFLite model, serialised StableHLO or ONNX.

Every format carries the same function, what `jaxgan predict` computes on one whole image (no
tiling) in the bundle's mode, with the run's generator bundle (jaxgan.bundle: EMA weights when kept).
A train-mode bundle (an imported pix2pix / DeblurGAN-v2 model, as their test scripts run) normalises by
the batch's own statistics and carries the dropout masks of predict's first image, fixed:

    image float32 (B, H, W, 3) in [-1, 1]  ->  deblur: {"image": float32 (B, H, W, 3) in [-1, 1]}
                                               segment: {"mask": int32 (B, H, W) class indices}

Inside it: the run's input prior when it has one (config.data.prior, jaxgan.data.prior), the padding
to the generator's size multiple (reflect, or edge for tiny images, as jaxgan.nets.layers.pad_to_multiple)
and the crop back, then the clip (deblur) or the argmax / threshold (segment).

Sizes: SavedModel and StableHLO take any batch and any H, W >= MIN_SIDE; TFLite and ONNX need a fixed
size (`size=(H, W)`, batch 1), and so does a run with a prior in every format (its FFT sizes follow the
image size).

- savedmodel: jax2tf (jax.experimental.jax2tf, native serialisation) with the weights as tf.Variables;
  signature `serving_default`, input `image`.
- tflite: TensorFlow's converter from that function (builtin ops only, float32, no quantisation),
  traced with the convs in the forms the converter maps correctly (conv impl 'tflite', jaxgan.ops.dispatch).
- onnx: the TFLite model above converted by tf2onnx (`tf2onnx.convert.from_tflite`, opset ONNX_OPSET),
  so fixed size and batch 1 like TFLite; input `image`, output `deblurred` or `mask`. Neither other route
  takes a symbolic size: tf2onnx cannot read the SavedModel (jax2tf keeps the network as one
  XlaCallModule op of StableHLO), and jax2onnx gives symbolic sides no arithmetic, which the padding
  needs (at a fixed size its graph is the larger one, README Export), and pins an older orbax. The
  task's last step (clip, argmax, threshold) is added in ONNX (`_append_last_step`).
- stablehlo: a folder with `model.jax_exported` (jax.export serialisation; arguments: the variables,
  then the image) and `variables.msgpack` (flax.serialization); weights stay arguments so that
  compiling the module never constant-folds the network.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import shutil
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxgan import bundle as bundle_lib
from jaxgan import logs, pretrained
from jaxgan.data import prior
from jaxgan.files import is_disk_full
from jaxgan.infer import flip_ensemble
from jaxgan.nets.inference import dropout_key, size_multiple
from jaxgan.nets.layers import pad_to_multiple
from jaxgan.task import get_task

FORMATS = ("savedmodel", "tflite", "stablehlo", "onnx")
ONNX_OPSET = 17  # onnxruntime >= 1.14 runs it
MIN_SIDE = 32  # a dynamic-size export takes images of at least this many pixels a side
DYNAMIC_SHAPE = "(b, h, w, 3)"
DYNAMIC_CONSTRAINTS = (f"h >= {MIN_SIDE}", f"w >= {MIN_SIDE}")
STABLEHLO_FILE = "model.jax_exported"
VARIABLES_FILE = "variables.msgpack"


class ExportError(ValueError):
    """A model that a format cannot carry, or a bad export request; the message says which."""


def inference_fn(config, module, conv_impl: str | None = None, last_step: bool = True, train_mode: bool = False):
    """fn(variables, image (B, H, W, 3) in [-1, 1]) -> {"image": ...} or {"mask": ...} (module docstring):
    G run by jaxgan.bundle.apply_fn in inference mode, or in train mode as the originals' test scripts
    (batch norm on the batch's own statistics, dropout masks of predict's first call, fixed in the model),
    convs as `conv_impl` (default the run's train.conv_impl). last_step=False leaves out the task's last
    step (the clip, argmax or threshold): ONNX adds it itself (`_append_last_step`)."""
    multiple = size_multiple(module)  # padded here: no size-dependent branch left for a symbolic size
    task = get_task(config.task)
    has_prior = config.data.prior != "none"
    views = int(config.eval.get("flip_views", 1))  # test-time flips, as predict
    apply = bundle_lib.apply_fn(module, train_mode=train_mode,
                                conv_impl=conv_impl or config.train.get("conv_impl", "auto"))
    if train_mode:
        apply = functools.partial(apply, key=dropout_key(0))
    blind_deconv = prior._blind_deconv_fn(prior._options(config)) if has_prior else None

    def fn(variables, image):
        x = image.astype(jnp.float32)
        h, w = x.shape[1], x.shape[2]
        if has_prior:  # as prior.with_prior: on [0, 1], appended in [-1, 1]
            deconvolved = blind_deconv(jnp.clip((x + 1.0) / 2.0, 0.0, 1.0))
            x = jnp.concatenate([x, deconvolved * 2.0 - 1.0], axis=-1)

        def run(view):  # padded here, cropped back: each flip as predict runs it
            return apply(variables, pad_to_multiple(view, multiple))[:, :h, :w].astype(jnp.float32)

        out = flip_ensemble(run, x, views)
        return {task.name_of_output: task.traced_prediction(out) if last_step else out}

    return fn


def parse_size(text: str) -> tuple[int, int] | None:
    """'HxW' -> (H, W); '' -> None."""
    if not text:
        return None
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ExportError(f"--size {text!r}: expected HxW, e.g. 720x1280") from None
    if h < 1 or w < 1:
        raise ExportError(f"--size {text!r}: both sides must be positive")
    return h, w


def _input_shape(fmt: str, config, size):
    """None for a fixed size (checked), else the symbolic shape of a dynamic one."""
    if size is None:
        if fmt in ("tflite", "onnx"):
            raise ExportError(f"{fmt} cannot carry a model with a dynamic image size: pass --size HxW")
        if config.data.prior != "none":
            raise ExportError(f"this run's input prior ({config.data.prior}) needs a fixed image size "
                              "(its FFT sizes follow the image): pass --size HxW")
        return DYNAMIC_SHAPE
    if config.data.prior != "none":
        prior._check_size((size[0], size[1], 3), config, f"--size {size[0]}x{size[1]}")
    return None


def _traced(export_call, fmt: str):
    """Runs an export; a generator whose layers branch on a size no symbolic size decides -> one line."""
    try:
        return export_call()
    except jax.errors.InconclusiveDimensionOperation:
        raise ExportError(f"{fmt}: this generator cannot be exported for any image size (a layer "
                          "depends on the size in a way a symbolic size cannot decide): pass --size HxW") from None


def export_stablehlo(fn, variables, config, size, out: Path) -> None:
    from flax import serialization
    from jax import export

    spec = _input_shape("stablehlo", config, size)
    if spec is None:
        image = jax.ShapeDtypeStruct((1, *size, 3), jnp.float32)
    else:
        image = jax.ShapeDtypeStruct(export.symbolic_shape(spec, constraints=DYNAMIC_CONSTRAINTS), jnp.float32)
    exported = _traced(lambda: export.export(jax.jit(fn))(variables, image), "stablehlo")
    out.mkdir(parents=True)
    (out / STABLEHLO_FILE).write_bytes(exported.serialize())
    (out / VARIABLES_FILE).write_bytes(serialization.msgpack_serialize(jax.tree.map(np.asarray, variables)))


def _tf_module(fn, variables, config, size, fmt: str):
    """(tf.Module holding the weights, its tf.function of the image)."""
    tf = logs.import_tensorflow()  # only these formats need TensorFlow: imported on demand, quietly
    from jax.experimental import jax2tf  # (imports TensorFlow too: after the quiet import)
    spec = _input_shape(fmt, config, size)
    shape = [None, None, None, 3] if spec is not None else [1, *size, 3]
    converted = jax2tf.convert(fn, polymorphic_shapes=[None, spec], with_gradient=False,
                               polymorphic_constraints=DYNAMIC_CONSTRAINTS if spec else ())
    module = tf.Module()
    module.weights = tf.nest.map_structure(tf.Variable, jax.tree.map(np.asarray, variables))
    module.serve = tf.function(lambda image: converted(module.weights, image), autograph=False,
                               input_signature=[tf.TensorSpec(shape, tf.float32, name="image")])
    concrete = _traced(module.serve.get_concrete_function, fmt)  # traces (and exports) the JAX function
    return tf, module, concrete


def export_savedmodel(fn, variables, config, size, out: Path) -> None:
    tf, module, concrete = _tf_module(fn, variables, config, size, "savedmodel")
    tf.saved_model.save(module, str(out), signatures={"serving_default": concrete})


def _first_line(e: Exception) -> str:
    """A converter's message is long: its first line."""
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def _tflite_model(fn, variables, config, size, fmt: str) -> bytes:
    tf, module, concrete = _tf_module(fn, variables, config, size, fmt)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], module)
    try:
        return converter.convert()
    except Exception as e:
        raise ExportError(f"{fmt} cannot carry this model: {_first_line(e)}") from None


def export_tflite(fn, variables, config, size, out: Path) -> None:
    model = _tflite_model(fn, variables, config, size, "tflite")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(model)


def _append_last_step(graph, output: str, deblur: bool) -> None:
    """Ends the graph with the task's last step on `output` (B, H, W, C), as Task.traced_prediction:
    Clip to [-1, 1] (deblur); ArgMax over C, or x > 0 for one channel, as int32 (segment). TFLite
    holds the steps in forms tf2onnx 1.17 cannot map: a clip fused into the layer before it (a fused
    RELU_N1_TO_1 activation), ARG_MAX with its axis as a 1-element tensor."""
    from onnx import TensorProto, helper, numpy_helper

    raw = output + "_raw"
    _rename_value(graph, output, raw)
    channels = graph.output[0].type.tensor_type.shape.dim[3].dim_value
    if deblur:
        graph.initializer.extend([numpy_helper.from_array(np.array(v, np.float32), n)
                                  for v, n in ((-1.0, "clip_min"), (1.0, "clip_max"))])
        graph.node.append(helper.make_node("Clip", [raw, "clip_min", "clip_max"], [output]))
        graph.output[0].name = output
        return
    if channels == 1:
        graph.initializer.extend([numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
                                  numpy_helper.from_array(np.array([3], np.int64), "channel_axis")])
        graph.node.extend([helper.make_node("Greater", [raw, "zero"], [output + "_positive"]),
                           helper.make_node("Squeeze", [output + "_positive", "channel_axis"], [output + "_bool"]),
                           helper.make_node("Cast", [output + "_bool"], [output], to=TensorProto.INT32)])
    else:
        graph.node.extend([helper.make_node("ArgMax", [raw], [output + "_int64"], axis=3, keepdims=0),
                           helper.make_node("Cast", [output + "_int64"], [output], to=TensorProto.INT32)])
    shape = [d.dim_value for d in graph.output[0].type.tensor_type.shape.dim][:3]
    graph.output[0].CopyFrom(helper.make_tensor_value_info(output, TensorProto.INT32, shape))



def _rename_value(graph, old: str, new: str) -> None:
    for value in (*graph.input, *graph.output):
        if value.name == old:
            value.name = new
    for node in graph.node:
        node.input[:] = [new if v == old else v for v in node.input]
        node.output[:] = [new if v == old else v for v in node.output]


def _flat_conv_transpose_bias(graph) -> None:
    """tf2onnx 1.17 gives a ConvTranspose the bias TFLite folded into it (a batch norm after a transposed
    conv) as (1, 1, 1, C); ONNX wants (C,): a Reshape to 1-D in front of each such bias."""
    from onnx import helper, numpy_helper

    shape = "flat_bias_shape"
    graph.initializer.append(numpy_helper.from_array(np.array([-1], np.int64), shape))
    nodes = []
    for node in graph.node:  # (kept in topological order: each Reshape just before its ConvTranspose)
        if node.op_type == "ConvTranspose" and len(node.input) == 3:
            flat = f"{node.name}/flat_bias"
            nodes.append(helper.make_node("Reshape", [node.input[2], shape], [flat]))
            node.input[2] = flat
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)


class _Tf2onnxErrors(logging.Handler):
    """tf2onnx logs an op it cannot map and goes on with a wrong graph: its ERROR records, kept."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def _tf2onnx_session():
    """tf2onnx converting a TFLite model: quiet unless --verbose, its ERROR records kept (the handler is
    yielded), and TFLite's fused RELU_N1_TO_1 activation (a clip to [-1, 1], which the TFLite converter
    fuses into the add before it, e.g. FPN-MobileNet's residual) mapped to Clip, which tf2onnx 1.17 lacks."""
    from tf2onnx.tflite_handlers import tfl_math, tfl_nn

    original = tfl_math.separate_fused_activation_function

    def separate(ctx, node):
        if node.attr["fused_activation_function"].s != b"RELU_N1_TO_1":
            return original(ctx, node)
        del node.attr["fused_activation_function"]
        low, high = (ctx.make_const(f"{node.name}/clip_{n}", np.array(v, np.float32)).output[0]
                     for n, v in (("min", -1.0), ("max", 1.0)))
        ctx.insert_new_node_on_output("Clip", node.output[0], inputs=[node.output[0], low, high])

    logger = logging.getLogger("tf2onnx")
    errors, propagate, level = _Tf2onnxErrors(), logger.propagate, logger.level
    logger.addHandler(errors)
    logger.propagate = logs.verbose()
    logger.setLevel(logging.INFO if logs.verbose() else logging.ERROR)
    tfl_math.separate_fused_activation_function = tfl_nn.separate_fused_activation_function = separate
    try:
        yield errors
    finally:
        tfl_math.separate_fused_activation_function = tfl_nn.separate_fused_activation_function = original
        logger.removeHandler(errors)
        logger.propagate, logger.level = propagate, level


def export_onnx(fn, variables, config, size, out: Path) -> None:
    """`fn`: inference_fn(..., "tflite", last_step=False). Input `image`; output `deblurred` or `mask`
    (ONNX names each value once: the output cannot be called `image` too)."""
    import tempfile

    _input_shape("onnx", config, size)  # a fixed size, checked, before the slow conversion
    deblur = get_task(config.task).name == "deblur"
    output = "deblurred" if deblur else "mask"
    model = _tflite_model(fn, variables, config, size, "onnx")
    import onnx
    import tf2onnx  # after the TFLite conversion: TensorFlow is already loaded, quietly

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.tflite"
        path.write_bytes(model)
        try:
            with _tf2onnx_session() as errors, logs.quiet_native_output():  # (it runs a TFLite interpreter)
                proto, _ = tf2onnx.convert.from_tflite(str(path), opset=ONNX_OPSET)
            if errors.messages:
                raise ExportError(errors.messages[0])
            _rename_value(proto.graph, proto.graph.input[0].name, "image")
            _rename_value(proto.graph, proto.graph.output[0].name, output)
            _append_last_step(proto.graph, output, deblur)
            _flat_conv_transpose_bias(proto.graph)
            onnx.checker.check_model(proto, full_check=True)  # an op tf2onnx could not map fails here
        except Exception as e:
            raise ExportError(f"onnx cannot carry this model: {_first_line(e)}") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(proto.SerializeToString())


def export(workdir: str, fmt: str, output: str, size: tuple[int, int] | None = None) -> Path:
    """Exports the generator of `workdir` (its newest bundle or checkpoint; EMA weights when kept), or of
    a bundle folder, to `output`."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; valid: {', '.join(FORMATS)}")
    out = Path(output)
    if out.exists():
        raise ExportError(f"{out} exists; export never overwrites: remove it or choose another --output")
    bundle = bundle_lib.load_generator(workdir)
    fn = inference_fn(bundle.config, bundle.module(), "tflite" if fmt in ("tflite", "onnx") else None,
                      last_step=fmt != "onnx", train_mode=bundle.inference.train_mode)
    writer = {"savedmodel": export_savedmodel, "tflite": export_tflite, "stablehlo": export_stablehlo,
              "onnx": export_onnx}[fmt]
    _write_then_rename(out, lambda tmp: writer(fn, bundle.variables, bundle.config, size, tmp))
    return out



def _write_then_rename(out: Path, write) -> None:
    """write(tmp) into a temporary sibling of `out`, renamed to `out` once complete: a failed export (a
    full disk above all) leaves nothing behind, so a retry does not find a partial model "exists"."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.jaxgan-partial-{os.getpid()}")
    try:
        write(tmp)
        if out.exists():  # (written meanwhile by someone else: theirs is kept)
            raise ExportError(f"{out} exists; export never overwrites: remove it or choose another --output")
        os.rename(tmp, out)
    except BaseException as e:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        if isinstance(e, Exception) and not isinstance(e, ExportError) and is_disk_full(e):
            raise ExportError(f"disk full while writing {out}: nothing was left behind; free space and "
                              "export again") from None
        raise


def export_generator(workdir: str, name: str, directory: Path | None = None, card: dict | None = None) -> Path:
    """Writes the shipped-model bundle NAME (jaxgan.pretrained) from a run's newest generator (EMA params
    when kept), with `card`; returns its folder."""
    bundle = bundle_lib.load_generator(workdir)
    return dataclasses.replace(bundle, card=card or {}).save(pretrained.model_dir(name, directory))


def main_export(args) -> int:
    """The `jaxgan export` command (called by jaxgan.cli)."""
    out = export(args.workdir, args.format, args.output, parse_size(args.size))
    print(f"wrote {out}", file=sys.stderr)
    return 0


__all__ = ["FORMATS", "ExportError", "export", "export_generator", "inference_fn", "parse_size"]
