"""Generators shipped inside the package: one generator bundle (jaxgan.bundle) per model.

Each shipped model NAME is the bundle folder jaxgan/pretrained/NAME/ (bundle.json: the checksum of the
variables, the run's config, how it predicts and its card; variables.npz: the arrays, read without
pickle). `load(NAME)` checks the checksum before reading a single array, so a truncated or altered file
fails with a message instead of producing garbage. `jaxgan.export.export_generator(workdir, NAME)`
writes one from a training run (EMA params when kept).
"""

from __future__ import annotations

import os
from pathlib import Path

from jaxgan import bundle

PRETRAINED_DIR = Path(__file__).resolve().parent


class PretrainedError(bundle.BundleError):
    """A shipped model that is unknown, missing or corrupt."""


def available(directory: Path | None = None) -> list[str]:
    """Names of the shipped models (the bundle folders of `directory`, default this package's folder)."""
    directory = Path(directory) if directory else PRETRAINED_DIR
    return sorted(p.name for p in directory.iterdir() if bundle.is_bundle(p)) if directory.is_dir() else []


def model_dir(name: str, directory: Path | None = None) -> Path:
    """The bundle folder of model `name` in `directory` (default: this package's folder), or the
    path `name` itself when it holds a '/' (any bundle folder: `--init-from pretrained:PATH`)."""
    if "/" in name or os.sep in name:
        return Path(name)
    return (Path(directory) if directory else PRETRAINED_DIR) / name


def _existing(name: str, directory: Path | None) -> Path:
    path = model_dir(name, directory)
    if not bundle.is_bundle(path):
        names = available(directory)
        raise PretrainedError(f"no pretrained model named {name!r}; available: {', '.join(names) or 'none'}")
    return path


def load(name: str, directory: Path | None = None) -> bundle.GeneratorBundle:
    """The shipped model `name` (see model_dir). PretrainedError listing the available models if unknown,
    or naming the file if corrupt."""
    path = _existing(name, directory)
    try:
        return bundle.GeneratorBundle.load(path)
    except bundle.BundleError as e:
        raise PretrainedError(f"{e}; reinstall jaxgan" if path.parent == PRETRAINED_DIR else str(e)) from None


def read_card(name: str, directory: Path | None = None) -> dict:
    """The card of a shipped model (metrics, limits, source), without reading its arrays."""
    return bundle.read_record(_existing(name, directory)).get("card", {})


def load_variables(name: str, directory: Path | None = None) -> tuple[dict, dict]:
    """(record, variables) of a shipped model after verifying the checksum: the record is its
    bundle.json ('config', 'card', 'inference', 'sha256'); for `jaxgan train --init-from pretrained:NAME`."""
    model = load(name, directory)
    return bundle.read_record(model_dir(name, directory)), model.variables
