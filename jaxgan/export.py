"""`jaxgan export`: a trained generator as a TensorFlow SavedModel, a TFLite model or serialised StableHLO.

Every format carries the same function, what `jaxgan predict` computes on one whole image (no
tiling), with the run's EMA weights when it kept them:

    image float32 (B, H, W, 3) in [-1, 1]  ->  deblur: {"image": float32 (B, H, W, 3) in [-1, 1]}
                                               segment: {"mask": int32 (B, H, W) class indices}

Inside it: the run's input prior when it has one (config.data.prior, jaxgan.data.prior), the padding
to the generator's size multiple (reflect, or edge for tiny images, as jaxgan.nets.layers.pad_to_multiple)
and the crop back, then the clip (deblur) or the argmax / threshold (segment).

Sizes: SavedModel and StableHLO take any batch and any H, W >= MIN_SIDE; TFLite needs a fixed size
(`size=(H, W)`, batch 1), and so does a run with a prior in every format (its FFT sizes follow the
image size).

- savedmodel: jax2tf (jax.experimental.jax2tf, native serialisation) with the weights as tf.Variables;
  signature `serving_default`, input `image`.
- tflite: TensorFlow's converter from that function (builtin ops only, float32, no quantisation),
  traced with the convs in the forms the converter maps correctly (conv impl 'tflite', jaxgan.ops.dispatch).
- stablehlo: a folder with `model.jax_exported` (jax.export serialisation; arguments: the variables,
  then the image) and `variables.msgpack` (flax.serialization); weights stay arguments so that
  compiling the module never constant-folds the network.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxgan import logs, ops, pretrained
from jaxgan.data import prior
from jaxgan.nets.layers import pad_to_multiple
from jaxgan.task import get_task
from jaxgan.train.checkpoint import config_dict
from jaxgan.train.restore import restore_generator

FORMATS = ("savedmodel", "tflite", "stablehlo")
MIN_SIDE = 32  # a dynamic-size export takes images of at least this many pixels a side
DYNAMIC_SHAPE = "(b, h, w, 3)"
DYNAMIC_CONSTRAINTS = (f"h >= {MIN_SIDE}", f"w >= {MIN_SIDE}")
STABLEHLO_FILE = "model.jax_exported"
VARIABLES_FILE = "variables.msgpack"


class ExportError(ValueError):
    """A model that a format cannot carry, or a bad export request; the message says which."""


def size_multiple(module) -> int:
    """The side multiple the generator pads to by itself (its `size_multiple`; 1 when it has none):
    padding to it here gives the same values and leaves no size-dependent branch inside the network
    (which a symbolic size could not decide)."""
    return int(getattr(module, "size_multiple", 1))


def inference_fn(config, module, conv_impl: str | None = None):
    """fn(variables, image (B, H, W, 3) in [-1, 1]) -> {"image": ...} or {"mask": ...} (module docstring);
    convs as `conv_impl`, by default the run's train.conv_impl."""
    multiple = size_multiple(module)
    task = get_task(config.task)
    has_prior = config.data.prior != "none"
    conv_impl = conv_impl or ops.check_impl(config.train.get("conv_impl", "auto"), "train.conv_impl")
    blind_deconv = prior._blind_deconv_fn(prior._options(config)) if has_prior else None

    def fn(variables, image):
        x = image.astype(jnp.float32)
        h, w = x.shape[1], x.shape[2]
        if has_prior:  # as prior.with_prior: on [0, 1], appended in [-1, 1]
            deconvolved = blind_deconv(jnp.clip((x + 1.0) / 2.0, 0.0, 1.0))
            x = jnp.concatenate([x, deconvolved * 2.0 - 1.0], axis=-1)
        with ops.conv_impl(conv_impl):
            out = module.apply(variables, pad_to_multiple(x, multiple), train=False)
        out = out[:, :h, :w].astype(jnp.float32)
        return {task.name_of_output: task.traced_prediction(out)}

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
        if fmt == "tflite":
            raise ExportError("tflite cannot carry a model with a dynamic image size: pass --size HxW")
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


def export_tflite(fn, variables, config, size, out: Path) -> None:
    tf, module, concrete = _tf_module(fn, variables, config, size, "tflite")
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], module)
    try:
        model = converter.convert()
    except Exception as e:  # the converter's own message is long: keep its first line
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ExportError(f"tflite cannot carry this model: {first}") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(model)


def export(workdir: str, fmt: str, output: str, size: tuple[int, int] | None = None) -> Path:
    """Exports the generator of `workdir`'s latest checkpoint (EMA weights when kept) to `output`."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; valid: {', '.join(FORMATS)}")
    out = Path(output)
    if out.exists():
        raise ExportError(f"{out} exists; export never overwrites: remove it or choose another --output")
    config, module, variables = restore_generator(workdir)
    fn = inference_fn(config, module, "tflite" if fmt == "tflite" else None)
    {"savedmodel": export_savedmodel, "tflite": export_tflite, "stablehlo": export_stablehlo}[fmt](
        fn, variables, config, size, out)
    return out


def export_generator(workdir: str, name: str, directory: Path | None = None, card: dict | None = None) -> Path:
    """Writes a shipped-model pair NAME.npz + NAME.json (jaxgan.pretrained) from a run's latest
    checkpoint (EMA params when kept); returns the .npz path."""
    config, _, variables = restore_generator(workdir)
    host = jax.tree.map(np.asarray, jax.device_get(dict(variables)))
    return pretrained.write(name, host, config_dict(config), card, directory)


def main_export(args) -> int:
    """The `jaxgan export` command (called by jaxgan.cli)."""
    out = export(args.workdir, args.format, args.output, parse_size(args.size))
    print(f"wrote {out}", file=sys.stderr)
    return 0


__all__ = ["FORMATS", "ExportError", "export", "export_generator", "inference_fn", "parse_size"]
