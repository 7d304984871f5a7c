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
the file vgg19-dcbb9e9d.pth), read with torch.load(weights_only=True). jaxgan never downloads it:
`load_vgg19_params()` looks at $JAXGAN_VGG19_WEIGHTS, then ~/.cache/jaxgan/weights/vgg19.pth, and stops
with a message saying so when neither exists. Pass params to jitted code as an argument (closing over
them makes XLA constant-fold the network).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxgan.nets.vgg import max_pool_2x2
from jaxgan.weights.mapping import to_flax
from jaxgan.weights.torch_file import WeightsError, load_state_dict

BLOCKS = (2, 2, 4, 4, 4)  # convs per block
WIDTHS = (64, 128, 256, 512, 512)
CONVS = tuple(f"conv{b + 1}_{i + 1}" for b, n in enumerate(BLOCKS) for i in range(n))
LAYERS = tuple(name for conv in CONVS for name in (conv, conv.replace("conv", "relu")))
ENV_VAR = "JAXGAN_VGG19_WEIGHTS"
DEFAULT_PATH = Path("~/.cache/jaxgan/weights/vgg19.pth")


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
    layers = (layers,) if isinstance(layers, str) else tuple(layers)
    if not layers:
        raise ValueError(f"VGG19 layers: expected at least one of {LAYERS}, got none")
    unknown = [layer for layer in layers if layer not in LAYERS]
    if unknown:
        raise ValueError(f"unknown VGG19 layer(s) {unknown}; valid layers: {LAYERS}")
    return layers


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
    """The VGG19 weights file: `path`, else $JAXGAN_VGG19_WEIGHTS, else ~/.cache/jaxgan/weights/vgg19.pth;
    WeightsError saying where to put it when there is none."""
    candidates = [Path(path).expanduser()] if path else (
        [Path(os.environ[ENV_VAR]).expanduser()] if os.environ.get(ENV_VAR) else [DEFAULT_PATH.expanduser()])
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise WeightsError(
        f"VGG19 ImageNet weights not found at {candidates[0]}: save torchvision's "
        "vgg19(weights='IMAGENET1K_V1').state_dict() (vgg19-dcbb9e9d.pth) there, or point "
        f"${ENV_VAR} at it (jaxgan never downloads weights; loss.perceptual_net='vgg16' runs offline)")


def load_vgg19_params(path: str | os.PathLike | None = None) -> dict:
    """{conv1_1: {kernel, bias}, ..., conv5_4: ...} float32 numpy arrays from torchvision's VGG19
    state dict (features.{i}.weight|bias; classifier.* ignored); see `weights_path` for the lookup."""
    file = weights_path(path)
    state = load_state_dict(file)
    params, used = {}, set()
    for b, n in enumerate(BLOCKS):
        for i in range(n):
            name = f"conv{b + 1}_{i + 1}"
            index = torchvision_index(name)
            cin = 3 if name == "conv1_1" else (WIDTHS[b - 1] if i == 0 else WIDTHS[b])
            w_key, b_key = f"features.{index}.weight", f"features.{index}.bias"
            for key, shape in ((w_key, (WIDTHS[b], cin, 3, 3)), (b_key, (WIDTHS[b],))):
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
