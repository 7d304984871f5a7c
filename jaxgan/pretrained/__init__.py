"""Generators shipped inside the package: plain .npz arrays (loaded without pickle) + a JSON card.

Each shipped model NAME is two files in this package's folder, jaxgan/pretrained/:
    NAME.npz    the generator's variables, one array per flattened path ('params/Conv_0/kernel')
    NAME.json   {"sha256": <of the .npz>, "config": <the run's config>, "card": {...}}
`load(NAME)` checks the checksum before reading a single array, so a truncated or altered file fails
with a message instead of producing garbage. `export_generator(workdir, NAME)` writes both files
from a training run (EMA params when kept).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

PRETRAINED_DIR = Path(__file__).resolve().parent
SEPARATOR = "/"


class PretrainedError(ValueError):
    """A shipped model that is unknown, missing or corrupt."""


def available() -> list[str]:
    """Names of the shipped models (those with both files present)."""
    return sorted(p.stem for p in PRETRAINED_DIR.glob("*.json") if p.with_suffix(".npz").is_file())


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def flatten(tree: dict, prefix: str = "") -> dict[str, np.ndarray]:
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{SEPARATOR}{key}" if prefix else str(key)
        if isinstance(value, dict):
            flat.update(flatten(value, name))
        else:
            flat[name] = np.asarray(value)
    return flat


def unflatten(flat: dict[str, np.ndarray]) -> dict:
    tree: dict = {}
    for name, value in flat.items():
        node = tree
        *parents, leaf = name.split(SEPARATOR)
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return tree


def _paths(name: str, directory: Path | None) -> tuple[Path, Path]:
    directory = Path(directory) if directory else PRETRAINED_DIR
    return directory / f"{name}.npz", directory / f"{name}.json"


def read_card(name: str, directory: Path | None = None) -> dict:
    """The JSON card of a shipped model; PretrainedError listing the available ones if unknown."""
    npz_path, json_path = _paths(name, directory)
    if not json_path.is_file() or not npz_path.is_file():
        names = available() if directory is None else sorted(p.stem for p in Path(directory).glob("*.json"))
        raise PretrainedError(f"no pretrained model named {name!r}; available: {', '.join(names) or 'none'}")
    try:
        return json.loads(json_path.read_text())
    except json.JSONDecodeError as e:
        raise PretrainedError(f"{json_path}: corrupt model card ({e})") from None


def load_variables(name: str, directory: Path | None = None) -> tuple[dict, dict]:
    """(card, variables) of a shipped model after verifying the .npz checksum."""
    card = read_card(name, directory)
    npz_path, _ = _paths(name, directory)
    actual = sha256_of(npz_path)
    if actual != card.get("sha256"):
        raise PretrainedError(f"{npz_path}: checksum mismatch (sha256 {actual[:12]}..., expected "
                              f"{str(card.get('sha256'))[:12]}...): the file is corrupt; reinstall jaxgan")
    with np.load(npz_path, allow_pickle=False) as data:
        variables = unflatten({k: data[k] for k in data.files})
    return card, variables


def load(name: str, directory: Path | None = None):
    """(config, g_module, g_variables) of a shipped model, ready for `module.apply(variables, x)`."""
    from jaxgan import config_io
    from jaxgan.train.state import make_modules

    card, variables = load_variables(name, directory)
    config = config_io.config_from_json(json.dumps(card["config"]))
    g_module, _ = make_modules(config)
    return config, g_module, variables


def export_generator(workdir: str, name: str, directory: Path | None = None, card: dict | None = None) -> Path:
    """Writes NAME.npz + NAME.json from a run's latest checkpoint; returns the .npz path."""
    import jax

    from jaxgan.train import restore_generator
    from jaxgan.train.checkpoint import config_dict

    config, _, variables = restore_generator(workdir)
    npz_path, json_path = _paths(name, directory)
    npz_path.parent.mkdir(parents=True, exist_ok=True)
    flat = flatten(jax.tree.map(np.asarray, jax.device_get(dict(variables))))
    np.savez_compressed(npz_path, **flat)
    json_path.write_text(json.dumps(
        {"sha256": sha256_of(npz_path), "config": config_dict(config), "card": card or {}},
        indent=1, sort_keys=True) + "\n")
    return npz_path


_PREDICTORS: dict = {}


def deblur(image: np.ndarray, *, model: str = "deblur", tile_size: int = 768) -> np.ndarray:
    """Deblurs one photo of any size with a shipped model.

    image: uint8 (H, W, 3) or float in [0, 1]; returns the same dtype and range.
    """
    from jaxgan import images
    from jaxgan.predict import Predictor

    if model not in _PREDICTORS:
        _PREDICTORS[model] = Predictor.from_pretrained(model)
    image = np.asarray(image)
    is_uint8 = image.dtype == np.uint8
    x = images.to_float(image) if is_uint8 else np.asarray(image, np.float32) * 2.0 - 1.0
    out = _PREDICTORS[model].predict_array(x, tile_size=tile_size)
    return images.to_uint8(out) if is_uint8 else (out + 1.0) / 2.0
