"""Trained generators applied to arrays and files: `Predictor` and the one-call `deblur`.

A Predictor holds a generator bundle (jaxgan.bundle: config, variables, how it predicts) and its
module; `predict_array` takes one image of any size (float [-1, 1], (H, W, 3)) and returns the
deblurred image (same range) or the class mask (int, (H, W)). The image runs whole or, larger than
the bundle's tile size (or `tile_size`), in blended tiles (`jaxgan.infer.apply_tiled`); a run whose
input has a prior (config.data.prior) gets it computed from the whole image first. G runs one image
at a time, in the bundle's inference mode (train mode: dropout masks from fold_in(PRNGKey(0), call)).

Each image is padded in NumPy to the generator's own size multiple before the jitted call, as the
generator would pad it itself (jaxgan.nets.inference.exact_pad_multiple), so sizes that pad alike share one compiled program
with the same output; `buckets` (jaxgan.infer) pads further to a few shapes, at a cost in exactness.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import jax
import numpy as np

from jaxgan import images, infer, pretrained
from jaxgan.bundle import GeneratorBundle, load_generator
from jaxgan.data import prior
from jaxgan.nets.inference import dropout_key, exact_pad_multiple, size_multiple
from jaxgan.task import get_task


class Predictor:
    """bundle: the generator to run; module: its Flax module (default bundle.module())."""

    def __init__(self, bundle: GeneratorBundle, module=None):
        self.bundle = bundle
        self.task = bundle.task
        self._task = get_task(self.task)
        self.module = bundle.module() if module is None else module
        self.variables = bundle.variables
        config = bundle.config
        self.config = config if config.data.prior != "none" else None  # the input prior, from each whole image
        if self.config is not None:
            prior.check(self.config)
        self.train_mode = bundle.inference.train_mode
        self.tile_size = int(bundle.inference.tile_size)
        self.flip_views = int(config.eval.get("flip_views", 1))  # test-time flips (infer.flip_ensemble)
        self._calls = 0
        self.buckets: tuple = ()  # infer.BUCKET_SIDES: pad whole images to a few shapes (few compiles)
        self.multiple = exact_pad_multiple(self.module)  # padded to it before G: one program per padded shape
        self._apply = jax.jit(bundle.apply_fn(self.module))

    @classmethod
    def from_config(cls, config, module, variables) -> "Predictor":
        """A run's G given as its config, module and variables (the bundle the run would write)."""
        return cls(GeneratorBundle.of_run(config, variables), module)

    @classmethod
    def from_workdir(cls, path: str) -> "Predictor":
        """A workdir's newest generator, or a bundle folder (jaxgan.bundle.load_generator)."""
        return cls(load_generator(path))

    @classmethod
    def from_pretrained(cls, name: str) -> "Predictor":
        return cls(pretrained.load(name))

    def _run(self, batch: np.ndarray) -> np.ndarray:
        key = dropout_key(self._calls)  # dropout masks in train mode
        self._calls += 1
        out = self._apply(self.variables, batch, key=key)  # (jnp.asarray would compile a copy per shape)
        return np.asarray(jax.device_get(out), np.float32)

    def predict_array(self, image: np.ndarray, *, tile_size: int | None = None, overlap: int = 64,
                      name: str = "image") -> np.ndarray:
        """image float32 (H, W, 3) in [-1, 1] -> deblurred (H, W, 3) in [-1, 1] or mask int32 (H, W).
        tile_size: None = the bundle's (0 = the whole image); `name` names the image in errors; G's
        outputs averaged over `self.flip_views` flips of the image (infer.flip_ensemble)."""
        image = np.asarray(image, np.float32)
        if image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"expected an RGB image of shape (H, W, 3), got shape {image.shape}")
        if self.config is not None:
            image = prior.with_prior(image, self.config, what=name)
        tile_size = self.tile_size if tile_size is None else int(tile_size)
        multiple = self.multiple
        if self.buckets:  # beyond the largest bucket: tiles of one shape, not a program per size
            multiple = size_multiple(self.module)
            tile_size = tile_size if tile_size > 0 else max(self.buckets)
        run = functools.partial(infer.apply_tiled, self._run, tile_size=tile_size, overlap=overlap,
                                buckets=self.buckets, multiple=multiple)
        return self._task.prediction(infer.flip_ensemble(run, image, self.flip_views))

    def predict_file(self, path: Path, out_dir: Path, *, tile_size: int | None = None, overlap: int = 64,
                     stem: str | None = None) -> list[Path]:
        """Predicts one file; writes STEM.png (deblur) or STEM_mask.png + STEM_overlay.png (segment);
        STEM defaults to the file's stem (see `output_stems` for a batch)."""
        rgb = images.read_image(path)
        result = self.predict_array(images.to_float(rgb), tile_size=tile_size, overlap=overlap, name=str(path))
        stem = Path(path).stem if stem is None else stem
        return self._task.write_prediction(rgb, result, out_dir, stem)


_PREDICTORS: dict = {}


def deblur(image: np.ndarray, *, model: str = "deblur", tile_size: int | None = None) -> np.ndarray:
    """Deblurs one photo of any size with a shipped model (tile_size None: the model's, 768 px).

    image: uint8 (H, W, 3) or float in [0, 1]; returns the same dtype and range.
    """
    if model not in _PREDICTORS:
        _PREDICTORS[model] = Predictor.from_pretrained(model)
    image = np.asarray(image)
    is_uint8 = image.dtype == np.uint8
    x = images.to_float(image) if is_uint8 else np.asarray(image, np.float32) * 2.0 - 1.0
    out = _PREDICTORS[model].predict_array(x, tile_size=tile_size)
    return images.to_uint8(out) if is_uint8 else (out + 1.0) / 2.0


class OutputClashError(ValueError):
    """A prediction would be written onto one of the inputs."""


def output_files(out_dir: Path, stem: str, task: str) -> list[Path]:
    """The files `predict_file` writes for output stem `stem`."""
    return get_task(task).output_files(out_dir, stem)


def output_stems(paths: list[Path], out_dir: Path, task: str, overwrite: bool = False) -> list[str]:
    """One output stem per input: its file stem, or STEM_EXT (then STEM_EXT_2, ...) for inputs whose
    stems (or output files) would collide, so no result overwrites another. OutputClashError when an
    output file would be one of the inputs (its path, a link to it or a hard link of it) or, unless
    `overwrite`, when it exists already."""
    paths = [Path(p) for p in paths]
    counts: dict[str, int] = {}
    for p in paths:
        counts[p.stem] = counts.get(p.stem, 0) + 1
    stems, taken = [], set()
    for p in paths:
        base = p.stem if counts[p.stem] == 1 else f"{p.stem}_{p.suffix.lstrip('.').lower() or 'file'}"
        stem, n = base, 1
        while any(f in taken for f in output_files(out_dir, stem, task)):
            n += 1
            stem = f"{base}_{n}"
        taken.update(output_files(out_dir, stem, task))
        stems.append(stem)
    inputs = {p.resolve(): p for p in paths}
    for p, stem in zip(paths, stems):
        for f in output_files(out_dir, stem, task):
            same = inputs.get(f.resolve()) or next((q for q in paths if _same_file(f, q)), None)
            if same is not None:
                raise OutputClashError(
                    f"the result of {p} would overwrite the input {same}: "
                    "choose an --output folder that holds none of the inputs")
            if not overwrite and os.path.lexists(f):
                raise OutputClashError(f"{f} exists already: pass --overwrite to replace it, or choose "
                                       "another --output folder")
    return stems


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # a missing file or a dangling link
        return False


def predict_files(predictor: Predictor, paths: list[Path], out_dir: Path, *, skip_bad: bool = False,
                  tile_size: int | None = None, overlap: int = 64, report=print,
                  overwrite: bool = False) -> tuple[list[Path], list[Path]]:
    """Predicts a batch of files into `out_dir` under unique names (`output_stems`), reporting the
    written files of each input. An unreadable input stops the batch with an ImageFileError that says
    how many were done, or with skip_bad=True is reported, skipped and the batch goes on.
    Returns (done, skipped) inputs."""
    stems = output_stems(paths, out_dir, predictor.task, overwrite)
    done, skipped = [], []
    for path, stem in zip(paths, stems):
        try:
            written = predictor.predict_file(path, out_dir, tile_size=tile_size, overlap=overlap, stem=stem)
        except images.ImageFileError as e:
            if not skip_bad:
                raise images.ImageFileError(
                    f"{e}; {len(done)} of {len(paths)} inputs done (results in {out_dir}); "
                    "--skip-bad skips unreadable inputs, --overwrite replaces the results written") from None
            skipped.append(path)
            print(f"skipped: {e}", file=sys.stderr)
            continue
        done.append(path)
        report(" ".join(str(p) for p in written))
    return done, skipped

