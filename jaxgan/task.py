"""The task as an object: what differs between deblurring (image -> image) and segmentation
(image -> class mask), asked by the steps, the loop, evaluation and prediction instead of a string.

- what D sees: G's output as an image in [-1, 1] (deblur: as it is; segment: the probabilities,
  jaxgan.nets.outputs) and the target likewise (the sharp image; the one-hot / {0, 1} mask);
  segment with mask_input 'probabilities': the probabilities and masks in [0, 1] (Hung et al.);
- the supervised loss: pixel (+ perceptual) for deblur, mask loss for segment;
- how a target is resized (bilinear images, nearest masks);
- what a prediction is (the clipped image; the labels) and the files `jaxgan predict` writes
  (STEM.png; STEM_mask.png + STEM_overlay.png), and the picture in the sample grid;
- the evaluation scores (`new_scores`): per-image PSNR / SSIM / LPIPS of the output and of its
  baselines (the blurred input, the prior), or a confusion matrix and the IoU / Dice from it.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxgan import images, losses, metrics
from jaxgan.losses import perceptual as perceptual_lib
from jaxgan.nets.outputs import logits_to_labels, probabilities, probabilities_image

MASK_INPUTS = ("signed", "probabilities")  # discriminator.mask_input: D sees 2 p - 1, or p


@dataclasses.dataclass(frozen=True)
class SupervisedLoss:
    """G's supervised terms (config.loss): pixel (+ perceptual) for deblur, mask for segment."""

    pixel: str = "none"
    pixel_weight: float = 0.0
    pixel_input: str = "raw"
    mask: str = "none"
    mask_weight: float = 0.0
    perceptual_weight: float = 0.0
    perceptual_layers: tuple = ()
    perceptual_net: str = "vgg16"
    perceptual_input: str = "imagenet"

    @classmethod
    def from_config(cls, loss) -> "SupervisedLoss":
        """From config.loss."""
        return cls(pixel=loss.pixel, pixel_weight=float(loss.pixel_weight), pixel_input=loss.pixel_input,
                   mask=loss.mask, mask_weight=float(loss.mask_weight),
                   perceptual_weight=float(loss.perceptual_weight), perceptual_layers=tuple(loss.perceptual_layers),
                   perceptual_net=loss.perceptual_net, perceptual_input=loss.perceptual_input)


def _to_unit(x):
    return (jnp.clip(x.astype(jnp.float32), -1.0, 1.0) + 1.0) / 2.0


def baselines(x) -> dict:
    """The images G's output is compared with, from its input: `input` (the blurred image, channels
    0:3) and, with an input prior (config.data.prior), `prior` (channels 3:6)."""
    named = {"input": x[..., :3]}
    if x.shape[-1] >= 6:
        named["prior"] = x[..., 3:6]
    return named


@jax.jit
def _image_scores(out, x, target):
    out, t01 = jnp.clip(out, -1.0, 1.0), _to_unit(target)
    scores = {"psnr": metrics.psnr(_to_unit(out), t01), "ssim": metrics.ssim(_to_unit(out), t01)}
    for name, image in baselines(x).items():
        scores.update({f"{name}_psnr": metrics.psnr(_to_unit(image), t01),
                       f"{name}_ssim": metrics.ssim(_to_unit(image), t01)})
    return out, scores


@functools.partial(jax.jit, static_argnames="num_classes")
def _mask_scores(logits, labels, valid, num_classes):
    pred = logits_to_labels(logits)
    return pred, metrics.confusion_matrix(pred, labels, num_classes, valid)


class ImageScores:
    """Sums over the valid rows of per-image PSNR and SSIM on [0, 1] images (and, with `lpips`, LPIPS
    VGG16 on [-1, 1]) of G's clipped output (`psnr`, ...) and of its baselines (`input_psnr`, ...)."""

    def __init__(self, lpips: bool):
        self.lpips = metrics.LPIPS("vgg16") if lpips else None
        self.sums: dict = {}

    def add(self, out, x, target, valid: np.ndarray):
        """Scores one batch (device arrays; `valid` a host bool mask); returns the clipped output."""
        out, scores = _image_scores(out, x, target)
        if self.lpips is not None:
            named = {"": out, **{f"{name}_": image for name, image in baselines(x).items()}}
            distances = self.lpips.to_reference(tuple(named.values()), target)
            scores = dict(scores, **{f"{name}lpips": d for name, d in zip(named, distances)})
        for name, per_image in jax.device_get(scores).items():
            self.sums[name] = self.sums.get(name, 0.0) + float(np.sum(np.asarray(per_image, np.float64)[valid]))
        return out

    def totals(self) -> dict:
        return {name: np.float64(total) for name, total in self.sums.items()}

    def results(self, totals: dict, count: int) -> dict:
        """The means over `count` valid examples of `totals` (this run's or summed over processes)."""
        return {name: float(total) / count for name, total in totals.items()}


class MaskScores:
    """The confusion matrix over every valid pixel of the valid rows; IoU / Dice / accuracy from it."""

    def __init__(self, num_classes: int):
        self.num_classes = max(int(num_classes), 2)  # a 1-channel (sigmoid) G predicts 2 classes
        self.confusion = np.zeros((self.num_classes, self.num_classes), np.int64)

    def add(self, logits, x, labels, valid: np.ndarray):
        """Counts one batch; returns the predicted labels."""
        del x
        pred, confusion = _mask_scores(logits, labels, jnp.asarray(valid), self.num_classes)
        self.confusion += np.asarray(confusion, np.int64)
        return pred

    def totals(self) -> dict:
        return {"confusion": self.confusion}

    def results(self, totals: dict, count: int) -> dict:
        del count
        return metrics.segmentation_scores(totals["confusion"])


class Deblur:
    name = "deblur"
    perceptual = True  # a perceptual loss applies (VGG features of images)
    target_is_image = True  # (a mask otherwise: resized nearest, never blended)
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

    def supervised_loss(self, terms: SupervisedLoss, output, target, loss_nets, perceptual: bool, total):
        """total + pixel_weight x pixel loss (+ perceptual_weight x perceptual loss); (total, metrics)."""
        metrics = {}
        if terms.pixel != "none":  # on [-1, 1] (raw) or ImageNet-normalised images (DeblurGAN-v2)
            pixel = losses.get_pixel_loss(terms.pixel)(perceptual_lib.network_input(output, terms.pixel_input),
                                                       perceptual_lib.network_input(target, terms.pixel_input))
            total = total + terms.pixel_weight * pixel
            metrics["g_pixel"] = pixel
        if perceptual and terms.perceptual_weight > 0:
            value = losses.perceptual_loss(loss_nets["vgg"], output, target, layers=terms.perceptual_layers,
                                           net=terms.perceptual_net, input=terms.perceptual_input)
            total = total + terms.perceptual_weight * value
            metrics["g_perceptual"] = value
        return total, metrics

    def check_losses(self, terms: SupervisedLoss) -> None:
        if terms.pixel != "none":
            losses.get_pixel_loss(terms.pixel)

    def new_scores(self, config, lpips: bool) -> ImageScores:
        del config
        return ImageScores(lpips)

    def metric_names(self, config) -> list[str]:
        """The names evaluation during training reports (ImageScores with train.eval_lpips)."""
        names = ["psnr", "ssim"] + (["lpips"] if config.train.eval_lpips else [])
        prefixes = ["", "input_"] + (["prior_"] if config.data.prior != "none" else [])
        return [prefix + name for prefix in prefixes for name in names]

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
    target_is_image = False
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

    def supervised_loss(self, terms: SupervisedLoss, output, target, loss_nets, perceptual: bool, total):
        """total + mask_weight x mask loss; (total, metrics)."""
        del loss_nets, perceptual
        if terms.mask == "none":
            return total, {}
        mask = losses.get_mask_loss(terms.mask)(output, target)
        return total + terms.mask_weight * mask, {"g_mask": mask}

    def check_losses(self, terms: SupervisedLoss) -> None:
        if terms.mask != "none":
            losses.get_mask_loss(terms.mask)

    def new_scores(self, config, lpips: bool) -> MaskScores:
        del lpips
        return MaskScores(config.data.num_classes)

    def metric_names(self, config) -> list[str]:
        """The names of the scalars evaluation reports (MaskScores' results; iou / dice are per class)."""
        scores = metrics.segmentation_scores(np.eye(max(int(config.data.num_classes), 2), dtype=np.int64))
        return sorted(name for name, value in scores.items() if np.ndim(value) == 0)

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
