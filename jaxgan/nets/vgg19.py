"""VGG19 features for the perceptual losses of DeblurGAN and DeblurGAN-v2, with user-supplied ImageNet weights.

Both take torchvision's `vgg19(pretrained=True).features` up to module index 14 (DeblurGAN
models/losses.py:24-34, DeblurGAN-v2 models/losses.py:28-39), i.e. the conv3_3 output before its ReLU.
DeblurGAN feeds the raw [-1, 1] images, DeblurGAN-v2 ImageNet-normalised ones (its losses.py:45-52);
the caller chooses (`jaxgan.nets.vgg.imagenet_normalize`).

    params = load_vgg19_params()                 # or load_vgg19_params("vgg19.pth")
    feats = vgg19_features(params, x, ("conv3_3",))  # x: (B, H, W, 3) -> {"conv3_3": (B, H/4, W/4, 256)}

Layers: conv{b}_{i} (before the ReLU) and relu{b}_{i} (after), b = 1..5, i = 1..2 (b <= 2) or 1..4;
a 2x2 max pool ends each block. Only the convolutions up to the deepest named layer run.

Weights: torchvision's VGG19 state dict (`torchvision.models.vgg19(weights="IMAGENET1K_V1").state_dict()`,
the file vgg19-dcbb9e9d.pth), read with torch.load(weights_only=True), or Keras's
vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5 (a file ending in .h5 / .hdf5, read with h5py).
jaxgan never downloads them: `load_vgg19_params()` looks at $JAXGAN_VGG19_WEIGHTS, then
~/.cache/jaxgan/weights/vgg19.pth, then the Keras file name in that folder, and stops with a message
saying so when none exists. Pass params to jitted code as an argument (closing over them makes XLA
constant-fold the network).

Keras's VGG19 has the same layers but other weights: the Oxford group's caffe model, for BGR pixels in
[0, 255] minus the caffe means (103.939, 116.779, 123.68) (keras.applications' 'caffe' preprocessing),
where torchvision's were trained anew in PyTorch for RGB (x / 255 - mean) / std; a perceptual loss
with the Keras file is therefore close to the originals' (torchvision's) but not the same. The loader folds that into conv1_1 (`caffe_to_torchvision_conv1`): its
input channels reversed and scaled by 255 std, its bias shifted by the kernel's response to
255 mean - the caffe mean, so both files are used with the same (torchvision) inputs. Exact away from
the image border; in the one-pixel border Keras's zero padding stands for the caffe mean, torchvision's
for its ImageNet mean (0.005, 0.50, 0.41 grey levels apart in R, G, B).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxgan.nets.vgg import IMAGENET_MEAN, IMAGENET_STD, check_layer_names, max_pool_2x2
from jaxgan.weights.mapping import to_flax
from jaxgan.weights.torch_file import WeightsError, load_state_dict

BLOCKS = (2, 2, 4, 4, 4)  # convs per block
WIDTHS = (64, 128, 256, 512, 512)
CONVS = tuple(f"conv{b + 1}_{i + 1}" for b, n in enumerate(BLOCKS) for i in range(n))
LAYERS = tuple(name for conv in CONVS for name in (conv, conv.replace("conv", "relu")))
ENV_VAR = "JAXGAN_VGG19_WEIGHTS"
DEFAULT_PATH = Path("~/.cache/jaxgan/weights/vgg19.pth")
KERAS_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
KERAS_SUFFIXES = (".h5", ".hdf5")
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)  # keras.applications.imagenet_utils, mode 'caffe'


def torchvision_index(conv: str) -> int:
    """Index of a conv in torchvision's vgg19().features (conv3_3 -> 14, conv5_4 -> 34)."""
    index = 0
    for b, n in enumerate(BLOCKS):
        for i in range(n):
            if conv == f"conv{b + 1}_{i + 1}":
                return index
            index += 2
        index += 1  # the block's max pool
    raise ValueError(f"unknown VGG19 conv {conv!r}; valid: {CONVS}")


def check_layers(layers: Sequence[str]) -> tuple:
    """The layer names as a tuple; ValueError naming an unknown one."""
    return check_layer_names(layers, LAYERS, "VGG19")


def vgg19_features(params: dict, x: jax.Array, layers: Sequence[str] = ("conv3_3",)) -> dict:
    """{layer: activation} for images x (B, H, W, 3), float32. params: {conv name: {kernel
    (3, 3, in, out), bias (out,)}} as `load_vgg19_params` returns (only the convs up to the deepest
    layer are read)."""
    wanted = check_layers(layers)
    last = max(CONVS.index(layer.replace("relu", "conv")) for layer in wanted)
    out = {}
    h = x.astype(jnp.float32)
    for b, n in enumerate(BLOCKS):
        for i in range(n):
            name = f"conv{b + 1}_{i + 1}"
            p = params[name]
            h = jax.lax.conv_general_dilated(h, jnp.asarray(p["kernel"]), (1, 1), ((1, 1), (1, 1)),
                                             dimension_numbers=("NHWC", "HWIO", "NHWC")) + jnp.asarray(p["bias"])
            if name in wanted:
                out[name] = h
            h = jax.nn.relu(h)
            relu = name.replace("conv", "relu")
            if relu in wanted:
                out[relu] = h
            if CONVS.index(name) == last:
                return out
        h = max_pool_2x2(h)
    raise AssertionError("unreachable")


def weights_path(path: str | os.PathLike | None = None) -> Path:
    """The VGG19 weights file: `path`, else $JAXGAN_VGG19_WEIGHTS, else ~/.cache/jaxgan/weights/vgg19.pth,
    else the Keras file in that folder; WeightsError saying where to put it when there is none."""
    default = DEFAULT_PATH.expanduser()
    if path:
        candidates = [Path(path).expanduser()]
    elif os.environ.get(ENV_VAR):
        candidates = [Path(os.environ[ENV_VAR]).expanduser()]
    else:
        candidates = [default, default.with_name(KERAS_FILE)]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise WeightsError(
        f"VGG19 ImageNet weights not found at {candidates[0]}: save torchvision's "
        "vgg19(weights='IMAGENET1K_V1').state_dict() (vgg19-dcbb9e9d.pth) there, or point "
        f"${ENV_VAR} at it, or at Keras's {KERAS_FILE} (jaxgan never downloads weights; "
        "loss.perceptual_net='vgg16' runs offline)")


def conv_shapes() -> dict:
    """{conv name: (kernel shape HWIO, bias shape)} of VGG19's 16 convs."""
    shapes = {}
    for b, n in enumerate(BLOCKS):
        for i in range(n):
            cin = 3 if (b, i) == (0, 0) else (WIDTHS[b - 1] if i == 0 else WIDTHS[b])
            shapes[f"conv{b + 1}_{i + 1}"] = ((3, 3, cin, WIDTHS[b]), (WIDTHS[b],))
    return shapes


def load_vgg19_params(path: str | os.PathLike | None = None) -> dict:
    """{conv1_1: {kernel, bias}, ..., conv5_4: ...} float32 numpy arrays for torchvision's input
    convention, from torchvision's VGG19 state dict (features.{i}.weight|bias; classifier.* ignored)
    or, for a .h5 / .hdf5 file, Keras's VGG19 weights (see `load_keras_vgg19_params`); see
    `weights_path` for the lookup."""
    file = weights_path(path)
    if file.suffix.lower() in KERAS_SUFFIXES:
        params = load_keras_vgg19_params(file)
        params["conv1_1"] = caffe_to_torchvision_conv1(**params["conv1_1"])
        return params
    state = load_state_dict(file)
    params, used = {}, set()
    for name, ((kh, kw, cin, cout), bias_shape) in conv_shapes().items():
        index = torchvision_index(name)
        w_key, b_key = f"features.{index}.weight", f"features.{index}.bias"
        for key, shape in ((w_key, (cout, cin, kh, kw)), (b_key, bias_shape)):
            if key not in state:
                raise WeightsError(f"{file}: missing key {key!r} (a torchvision VGG19 state dict has it)")
            if tuple(state[key].shape) != shape:
                raise WeightsError(f"{file}: key {key!r} has shape {tuple(state[key].shape)}, expected {shape}")
        params[name] = {"kernel": to_flax(state[w_key], "conv"), "bias": np.asarray(state[b_key], np.float32)}
        used.update((w_key, b_key))
    extra = [k for k in state if k not in used and not k.startswith("classifier.")]
    if extra:
        raise WeightsError(f"{file}: unexpected key {extra[0]!r} (not in a torchvision VGG19 state dict)")
    return params


def _keras_layer_arrays(group) -> list:
    """The arrays of one Keras layer group, in its `weight_names` order when the file records it
    (`block1_conv1_W_1:0`, `block1_conv1_b_1:0` in old files; `block1_conv1/kernel:0`, `bias:0` in
    newer ones, stored as a subgroup), else every dataset under the group."""
    import h5py

    names = [n.decode() if isinstance(n, bytes) else str(n) for n in group.attrs.get("weight_names", [])]
    if names:
        return [np.asarray(group[n]) for n in names if n in group]
    found = []
    group.visititems(lambda _, item: found.append(np.asarray(item)) if isinstance(item, h5py.Dataset) else None)
    return found


def load_keras_vgg19_params(path: str | os.PathLike) -> dict:
    """{conv1_1: {kernel (3, 3, Cin, Cout) HWIO, bias}, ...} float32 as stored in Keras's VGG19 file
    (groups block{b}_conv{c}, under `model_weights` in a whole-model file): the network for
    caffe-preprocessed BGR input. WeightsError naming the file and the missing group or array."""
    import h5py

    file = Path(path)
    try:
        handle = h5py.File(file, "r")
    except OSError as e:
        raise WeightsError(f"{file}: not a readable HDF5 file ({e})") from None
    with handle:
        root = handle["model_weights"] if "model_weights" in handle else handle
        params = {}
        for name, (kernel_shape, bias_shape) in conv_shapes().items():
            block, conv = name[len("conv"):].split("_")
            key = f"block{block}_conv{conv}"
            if key not in root:
                raise WeightsError(f"{file}: missing key {key!r} (a Keras VGG19 weights file has it)")
            arrays = _keras_layer_arrays(root[key])
            kernels = [a for a in arrays if a.ndim == 4]
            biases = [a for a in arrays if a.ndim == 1]
            for what, found, shape in (("kernel", kernels, kernel_shape), ("bias", biases, bias_shape)):
                if len(found) != 1:
                    raise WeightsError(f"{file}: missing key {key + '/' + what!r} (a Keras VGG19 weights file has "
                                       f"one {what} array per conv, this group has {len(found)})")
                if found[0].shape != shape:
                    raise WeightsError(f"{file}: key {key + '/' + what!r} has shape {found[0].shape}, "
                                       f"expected {shape}")
            params[name] = {"kernel": kernels[0].astype(np.float32), "bias": biases[0].astype(np.float32)}
    return params


def caffe_to_torchvision_conv1(kernel: np.ndarray, bias: np.ndarray) -> dict:
    """Keras's conv1_1 (input: BGR 0..255 minus CAFFE_MEAN_BGR) as a conv of torchvision's input
    t_c = (x_c / 255 - IMAGENET_MEAN_c) / IMAGENET_STD_c (RGB): Keras's input channel 2 - c is
    x_c - caffe_c = 255 std_c t_c + (255 mean_c - caffe_c), so the kernel of RGB channel c is
    255 std_c x Keras's kernel of BGR channel 2 - c, and the bias gains the kernel's sum against the
    constant 255 mean_c - caffe_c. float32 {kernel, bias}."""
    rgb = kernel[:, :, ::-1, :].astype(np.float64)  # BGR -> RGB input channels
    std = np.asarray(IMAGENET_STD)[None, None, :, None]
    offset = 255.0 * np.asarray(IMAGENET_MEAN) - np.asarray(CAFFE_MEAN_BGR[::-1])  # RGB
    new_bias = bias.astype(np.float64) + np.einsum("hwio,i->o", rgb, offset)
    return {"kernel": (255.0 * std * rgb).astype(np.float32), "bias": new_bias.astype(np.float32)}
