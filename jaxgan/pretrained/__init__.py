"""Generators shipped inside the package: plain .npz arrays (loaded without pickle) + a JSON card.

Each shipped model NAME is two files in this package's folder, jaxgan/pretrained/:
    NAME.npz    the generator's variables, one array per flattened path ('params/Conv_0/kernel')
    NAME.json   {"sha256": <of the .npz>, "config": <the run's config>, "card": {...}}
`load_variables(NAME)` checks the checksum before reading a single array, so a truncated or altered
file fails with a message instead of producing garbage; `write(NAME, variables, config, card)` writes
both files. This package knows the format only (numpy and JSON, nothing else of jaxgan): the model
ready to apply is `jaxgan.predict.load_pretrained(NAME)`, and `jaxgan.export.export_generator(workdir,
NAME)` writes one from a training run (EMA params when kept).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from flax import traverse_util

PRETRAINED_DIR = Path(__file__).resolve().parent
SEPARATOR = "/"


class PretrainedError(ValueError):
    """A shipped model that is unknown, missing or corrupt."""


def available() -> list[str]:
    """Names of the shipped models (those with both files present)."""
    return sorted(p.stem for p in PRETRAINED_DIR.glob("*.json") if p.with_suffix(".npz").is_file())


def sha256_of(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def flatten(tree: dict) -> dict[str, np.ndarray]:
    """{'params/Conv_0/kernel': array} of a nested dict of arrays."""
    return {name: np.asarray(value) for name, value in traverse_util.flatten_dict(tree, sep=SEPARATOR).items()}


def unflatten(flat: dict[str, np.ndarray]) -> dict:
    return traverse_util.unflatten_dict(flat, sep=SEPARATOR)


def model_files(name: str, directory: Path | None = None) -> tuple[Path, Path]:
    """(NAME.npz, NAME.json) in `directory` (default: this package's folder)."""
    directory = Path(directory) if directory else PRETRAINED_DIR
    return directory / f"{name}.npz", directory / f"{name}.json"


def read_card(name: str, directory: Path | None = None) -> dict:
    """The JSON card of a shipped model; PretrainedError listing the available ones if unknown."""
    npz_path, json_path = model_files(name, directory)
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
    npz_path, _ = model_files(name, directory)
    actual = sha256_of(npz_path)
    if actual != card.get("sha256"):
        raise PretrainedError(f"{npz_path}: checksum mismatch (sha256 {actual[:12]}..., expected "
                              f"{str(card.get('sha256'))[:12]}...): the file is corrupt; reinstall jaxgan")
    with np.load(npz_path, allow_pickle=False) as data:
        variables = unflatten({k: data[k] for k in data.files})
    return card, variables


def write(name: str, variables: dict, config: dict, card: dict | None = None,
          directory: Path | None = None) -> Path:
    """Writes NAME.npz (the variables, a nested dict of arrays) + NAME.json (checksum, `config` as a
    JSON-ready dict, `card`); returns the .npz path."""
    npz_path, json_path = model_files(name, directory)
    npz_path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(npz_path, **flatten(variables))
    json_path.write_text(json.dumps(
        {"sha256": sha256_of(npz_path), "config": config, "card": card or {}},
        indent=1, sort_keys=True) + "\n")
    return npz_path
