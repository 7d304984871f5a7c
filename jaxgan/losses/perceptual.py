"""Perceptual (VGG16 feature) loss, as in DeblurGAN (conv3_3 features, MSE).

    loss = sum_l w_l * mean((phi_l(pred) - phi_l(target))^2)

phi_l: VGG16 activations of layer l (jaxgan.nets.vgg.VGG16Features, pre-ReLU by default as in
DeblurGAN) of the ImageNet-normalised image; both images are mapped [-1, 1] -> [0, 1] ->
(x - mean) / std for every item of the batch (the article's sketch fed raw tanh outputs and
DeblurGAN-v2 normalised only item 0). The target's features are constants (stop_gradient).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import jax
import jax.numpy as jnp

from jaxgan.nets.vgg import VGG16Features, check_layers, imagenet_normalize


def perceptual_loss(
    vgg_params: Any,
    pred: jax.Array,
    target: jax.Array,
    layers: Sequence[str] = ("conv3_3",),
    weights: Optional[Sequence[float]] = None,
    *,
    after_relu: bool = False,
) -> jax.Array:
    """Weighted sum over `layers` of the feature MSE between pred and target. Scalar.

    vgg_params: from `jaxgan.nets.vgg.load_vgg16_params()` (or `{'params': ...}`); pass it into
        jitted code as an argument, never close over it (XLA would constant-fold the network).
    pred, target: RGB images (B, H, W, 3) in [-1, 1] (H, W >= 2**(pools before the deepest layer)).
    layers: VGG16 layer names conv1_1 .. conv5_3; the network stops at the deepest one.
    weights: one float per layer (default 1.0 each).
    """
    layers = check_layers(layers)
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
    net = VGG16Features(layers=layers, after_relu=after_relu)
    # Two passes (not one over the stacked batch) so the backward pass only runs for pred.
    pred_features = net.apply({"params": vgg_params}, imagenet_normalize(pred))
    target_features = net.apply({"params": vgg_params}, imagenet_normalize(target))
    total = jnp.zeros((), jnp.float32)
    for layer, weight in zip(layers, weights):
        target_f = jax.lax.stop_gradient(target_features[layer])
        total = total + weight * jnp.mean(jnp.square(pred_features[layer] - target_f))
    return total
