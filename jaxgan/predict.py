"""Trained generators applied to arrays and files: `Predictor` and the one-call `deblur`.

A Predictor holds a generator module, its variables and the task; `predict_array` takes one image of
any size (float [-1, 1], (H, W, 3)) and returns the deblurred image (same range) or the class mask
(int, (H, W)). Large images go through `jaxgan.infer.predict_array` in blended tiles; a run whose
input has a prior (config.data.prior) gets it computed from the whole image first.
"""

from __future__ import annotations

import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxgan import images, infer
from jaxgan.data import prior
from jaxgan.nets.inference import apply_generator


class Predictor:
    """config: the run's config when its input has a prior (config.data.prior, computed here from
    each whole image before the network runs); None for a plain image input."""

    def __init__(self, task: str, generator_name: str, g_module, g_variables, generator_options=None,
                 config=None):
        self.task = task
        self.module = g_module
        self.variables = g_variables
        self.multiple = infer.size_multiple(generator_name, dict(generator_options or {}))
        self.config = config if config is not None and config.data.prior != "none" else None
        if self.config is not None:
            prior.check(self.config)
        # train-mode inference (config.eval.train_mode_inference): dropout on, batch norm on the
        # image's own statistics, as the originals' test scripts (jaxgan.nets.inference)
        self.train_mode = bool(config is not None and config.eval.train_mode_inference)
        self._calls = 0
        self._apply = jax.jit(functools.partial(apply_generator, g_module.apply, train_mode=self.train_mode))

    @classmethod
    def from_config(cls, config, module, variables) -> "Predictor":
        return cls(config.task, config.generator.name, module, variables, config.generator.options, config)

    @classmethod
    def from_workdir(cls, workdir: str) -> "Predictor":
        from jaxgan.train import restore_generator

        return cls.from_config(*restore_generator(workdir))

    @classmethod
    def from_pretrained(cls, name: str) -> "Predictor":
        from jaxgan import pretrained

        return cls.from_config(*pretrained.load(name))

    def _run(self, batch: np.ndarray) -> np.ndarray:
        key = jax.random.fold_in(jax.random.PRNGKey(0), self._calls)  # dropout masks in train mode
        self._calls += 1
        out = self._apply(self.variables, jnp.asarray(batch), key=key)
        return np.asarray(jax.device_get(out), np.float32)

    def predict_array(self, image: np.ndarray, *, tile_size: int = 0, overlap: int = 64,
                      name: str = "image") -> np.ndarray:
        """image float32 (H, W, 3) in [-1, 1] -> deblurred (H, W, 3) in [-1, 1] or mask int32 (H, W).
        `name` names the image in errors (e.g. its file)."""
        image = np.asarray(image, np.float32)
        if image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"expected an RGB image of shape (H, W, 3), got shape {image.shape}")
        if self.config is not None:
            image = prior.with_prior(image, self.config, what=name)
        out = infer.predict_array(self._run, image, multiple=self.multiple, tile_size=tile_size,
                                  overlap=overlap)
        if self.task == "segment":
            return logits_to_labels(out)
        return np.clip(out, -1.0, 1.0)

    def predict_file(self, path: Path, out_dir: Path, *, tile_size: int = 0, overlap: int = 64) -> list[Path]:
        """Predicts one file; writes STEM.png (deblur) or STEM_mask.png + STEM_overlay.png (segment)."""
        rgb = images.read_image(path)
        result = self.predict_array(images.to_float(rgb), tile_size=tile_size, overlap=overlap, name=str(path))
        stem = Path(path).stem
        if self.task == "segment":
            mask_path, overlay_path = out_dir / f"{stem}_mask.png", out_dir / f"{stem}_overlay.png"
            images.write_mask_png(mask_path, result)
            images.write_png(overlay_path, images.overlay(rgb, result))
            return [mask_path, overlay_path]
        out_path = out_dir / f"{stem}.png"
        images.write_png(out_path, images.to_uint8(result))
        return [out_path]


def logits_to_labels(logits: np.ndarray) -> np.ndarray:
    """(H, W, 1) binary logits -> {0, 1}; (H, W, C) -> argmax; as int32 (H, W)."""
    if logits.shape[-1] == 1:
        return (logits[..., 0] > 0).astype(np.int32)
    return np.argmax(logits, axis=-1).astype(np.int32)
