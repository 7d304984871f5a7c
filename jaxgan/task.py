"""The task as an object: what differs between deblurring (image -> image) and segmentation
(image -> class mask), asked by the steps, the loop, evaluation and prediction instead of a string.

- what D sees: G's output as an image in [-1, 1] (deblur: as it is; segment: the probabilities,
  jaxgan.nets.outputs) and the target likewise (the sharp image; the one-hot / {0, 1} mask);
  segment with mask_input 'probabilities': the probabilities and masks in [0, 1] (Hung et al.);
- the supervised loss: pixel (+ perceptual) for deblur, mask loss for segment;
- how a target is resized (bilinear images, nearest masks);
- what a prediction is (the clipped image; the labels) and the files `jaxgan predict` writes
  (STEM.png; STEM_mask.png + STEM_overlay.png), and the picture in the sample grid.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxgan import images, losses
from jaxgan.losses import perceptual as perceptual_lib
from jaxgan.nets.outputs import logits_to_labels, probabilities, probabilities_image

MASK_INPUTS = ("signed", "probabilities")  # discriminator.mask_input: D sees 2 p - 1, or p


class Deblur:
    name = "deblur"
    perceptual = True  # a perceptual loss applies (VGG features of images)
    semi_supervised = False  # unlabelled images can be learnt from (Hung et al.)

    def d_image_channels(self, config) -> int:
        return 3

    def fake_image(self, output: jax.Array, mask_input: str = "signed") -> jax.Array:
        del mask_input  # (images only)
        return output

    def real_image(self, target: jax.Array, channels: int, mask_input: str = "signed") -> jax.Array:
        del mask_input
        return target.astype(jnp.float32)

    def resize_target(self, target: jax.Array, height: int, width: int) -> jax.Array:
        return jax.image.resize(target, (target.shape[0], height, width, target.shape[-1]), "linear",
                                antialias=True)

    def supervised_loss(self, s, output, target, aux, perceptual: bool, total):
        """total + pixel_weight x pixel loss (+ perceptual_weight x perceptual loss); (total, metrics)."""
        metrics = {}
        if s.pixel != "none":  # on [-1, 1] (raw) or ImageNet-normalised images (DeblurGAN-v2)
            pixel = losses.get_pixel_loss(s.pixel)(perceptual_lib.network_input(output, s.pixel_input),
                                                   perceptual_lib.network_input(target, s.pixel_input))
            total = total + s.pixel_weight * pixel
            metrics["g_pixel"] = pixel
        if perceptual and s.perceptual_weight > 0:
            value = losses.perceptual_loss(aux["vgg"], output, target, layers=s.perceptual_layers,
                                           net=s.perceptual_net, input=s.perceptual_input)
            total = total + s.perceptual_weight * value
            metrics["g_perceptual"] = value
        return total, metrics

    def check_losses(self, s) -> None:
        if s.pixel != "none":
            losses.get_pixel_loss(s.pixel)

    name_of_output = "image"  # the key of an exported model's output

    def prediction(self, out):
        """G's output -> what a prediction is: the image clipped to [-1, 1]."""
        return np.clip(out, -1.0, 1.0)

    def traced_prediction(self, out):
        return jnp.clip(out, -1.0, 1.0)

    def picture(self, a: np.ndarray) -> np.ndarray:
        return images.to_uint8(a)

    def output_files(self, out_dir: Path, stem: str) -> list[Path]:
        return [Path(out_dir) / f"{stem}.png"]

    def write_prediction(self, rgb: np.ndarray, result: np.ndarray, out_dir: Path, stem: str) -> list[Path]:
        del rgb
        out_path, = self.output_files(out_dir, stem)
        images.write_png(out_path, images.to_uint8(result))
        return [out_path]


class Segment:
    name = "segment"
    perceptual = False
    semi_supervised = True

    def d_image_channels(self, config) -> int:
        """G's output channels: 1 for a sigmoid mask, C for a softmax one."""
        return int(config.generator.options.get("out_channels", config.data.num_classes))

    def fake_image(self, output: jax.Array, mask_input: str = "signed") -> jax.Array:
        """G's logits -> 2 p - 1 ('signed') or p ('probabilities': AdvSemiSeg train.py:345 F.softmax(pred))."""
        return probabilities(output) if mask_input == "probabilities" else probabilities_image(output)

    def real_image(self, target: jax.Array, channels: int, mask_input: str = "signed") -> jax.Array:
        """The mask one-hot ({0, 1} for 1 channel), as 2 m - 1 ('signed') or m ('probabilities':
        train.py:176-182 one_hot)."""
        if channels == 1:
            mask = (target[..., None] > 0).astype(jnp.float32)
        else:
            mask = jax.nn.one_hot(target, channels, dtype=jnp.float32)
        return mask if mask_input == "probabilities" else 2.0 * mask - 1.0

    def resize_target(self, target: jax.Array, height: int, width: int) -> jax.Array:
        labels = jax.image.resize(target.astype(jnp.float32)[..., None], (target.shape[0], height, width, 1),
                                  "nearest")
        return labels[..., 0].astype(target.dtype)

    def supervised_loss(self, s, output, target, aux, perceptual: bool, total):
        """total + mask_weight x mask loss; (total, metrics)."""
        del aux, perceptual
        if s.mask == "none":
            return total, {}
        mask = losses.get_mask_loss(s.mask)(output, target)
        return total + s.mask_weight * mask, {"g_mask": mask}

    def check_losses(self, s) -> None:
        if s.mask != "none":
            losses.get_mask_loss(s.mask)

    name_of_output = "mask"

    def prediction(self, out):
        """G's logits -> the class labels, int32."""
        return np.asarray(logits_to_labels(out))

    def traced_prediction(self, out):
        return logits_to_labels(out)

    def picture(self, a: np.ndarray) -> np.ndarray:
        return images.colorize_mask(a)

    def output_files(self, out_dir: Path, stem: str) -> list[Path]:
        return [Path(out_dir) / f"{stem}_mask.png", Path(out_dir) / f"{stem}_overlay.png"]

    def write_prediction(self, rgb: np.ndarray, result: np.ndarray, out_dir: Path, stem: str) -> list[Path]:
        mask_path, overlay_path = self.output_files(out_dir, stem)
        images.write_mask_png(mask_path, result)
        images.write_png(overlay_path, images.overlay(rgb, result))
        return [mask_path, overlay_path]


TASKS = {"deblur": Deblur(), "segment": Segment()}


def get_task(name: str):
    """The task object of config.task; ValueError naming the valid ones."""
    if name not in TASKS:
        raise ValueError(f"task must be 'deblur' or 'segment', got {name!r}")
    return TASKS[name]
