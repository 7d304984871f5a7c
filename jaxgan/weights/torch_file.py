"""Reading a PyTorch checkpoint file safely: `torch.load(weights_only=True)` (tensors and plain
containers only; a pickle that would run code is refused), torch imported only here and only when a
file is read. The result is a flat {key: float32 numpy array} state dict."""

from __future__ import annotations

from pathlib import Path

import numpy as np


class WeightsError(ValueError):
    """A weights file that cannot be used; the message is one line naming the file and the culprit."""


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def load_state_dict(path: str | Path, unwrap: tuple[str, ...] = ("model", "state_dict")) -> dict[str, np.ndarray]:
    """{key: array} of a torch state-dict file. A dict holding a state dict under one of `unwrap`
    (DeblurGAN-v2 saves {'model': state_dict}) is unwrapped; a 'module.' prefix on every key
    (nn.DataParallel) is removed; `num_batches_tracked` counters are dropped."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such file")
    try:
        import torch
    except ImportError:
        raise WeightsError(f"{path}: reading PyTorch checkpoints needs torch (pip install torch)") from None
    import pickle

    with open(path, "rb") as f:
        magic = f.read(4)
    if magic.startswith(b"\x89HDF"):
        raise WeightsError(f"{path}: an HDF5 (Keras) file, not a PyTorch checkpoint (DeblurGAN-v2's .h5 "
                           "files are torch.save files despite their name)")
    if not (magic.startswith(b"PK\x03\x04") or magic[:1] == b"\x80"):  # torch zip or legacy pickle
        raise WeightsError(f"{path}: not a PyTorch checkpoint (neither a torch.save zip nor a pickle)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights only" in str(e).lower() or "weights_only" in str(e):
            raise WeightsError(f"{path}: refused: the pickle holds Python objects other than tensors "
                               "(only plain state dicts are read, nothing else is unpickled)") from None
        raise WeightsError(f"{path}: not a PyTorch checkpoint ({_first_line(e)})") from None
    except Exception as e:  # torch raises RuntimeError / EOFError / zipfile errors for foreign files
        raise WeightsError(f"{path}: not a PyTorch checkpoint ({type(e).__name__}: {_first_line(e)})") from None
    for key in unwrap:
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj:
        raise WeightsError(f"{path}: holds a {type(obj).__name__}, not a state dict of tensors")
    state = {}
    for key, value in obj.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise WeightsError(f"{path}: entry {key!r} is a {type(value).__name__}, not a tensor "
                               "(expected a state dict)")
        if key.endswith("num_batches_tracked"):
            continue
        state[key] = value.detach().to(torch.float32).numpy()
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state
