"""Loading experiment configs: `get_config()` files plus `--config.a.b=value` overrides.

Configs are locked ml_collections ConfigDicts (see jaxgan.config), so a mistyped key is an error
that lists the valid keys at that level instead of a silently ignored setting.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import math
from pathlib import Path

import ml_collections

from jaxgan.config import base_config


class ConfigError(ValueError):
    """A config file or override that cannot be used; the message says which and why."""


def load_config_file(path: str | Path) -> ml_collections.ConfigDict:
    """Imports a Python file and returns its `get_config()`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    spec = importlib.util.spec_from_file_location(f"jaxgan_config_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SystemExit as e:
        raise ConfigError(f"config file {path} called sys.exit({e.code!r}) while loading") from None
    except Exception as e:  # a user's file: report which file broke, then the cause
        raise ConfigError(f"config file {path} failed to load: {e.__class__.__name__}: {e}") from e
    if not hasattr(module, "get_config"):
        raise ConfigError(f"config file {path} has no get_config() function")
    try:
        config = module.get_config()
    except SystemExit as e:  # a sys.exit() in the user's file: say so instead of exiting silently
        raise ConfigError(f"config file {path}: get_config() called sys.exit({e.code!r})") from None
    except Exception as e:  # e.g. an AttributeError of a locked ConfigDict: a key the schema lacks
        raise ConfigError(f"config file {path}: get_config() failed: {e.__class__.__name__}: "
                          f"{str(e).splitlines()[0] if str(e) else ''}") from e
    if not isinstance(config, ml_collections.ConfigDict):
        raise ConfigError(f"{path}: get_config() must return an ml_collections.ConfigDict")
    return config


def _parse_value(text: str, current):
    """Parses `text` into the type of the value it replaces."""
    if isinstance(current, bool):
        low = text.lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
        raise ValueError(f"expected true or false, got {text!r}")
    if isinstance(current, int):
        return int(text)
    if isinstance(current, float):
        return float(text)
    if isinstance(current, str):
        return text
    if isinstance(current, (tuple, list)):
        value = ast.literal_eval(text) if text.strip()[:1] in "([" else tuple(
            _parse_item(t) for t in text.split(",") if t.strip())
        return tuple(value) if isinstance(current, tuple) else list(value)
    return ast.literal_eval(text)


def _parse_item(text: str):
    text = text.strip()
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def apply_override(config: ml_collections.ConfigDict, dotted_key: str, text: str) -> None:
    """Sets config[dotted_key] from a command-line string, keeping the existing value's type."""
    parts = dotted_key.split(".")
    node = config
    for depth, name in enumerate(parts):
        where = ".".join(parts[:depth]) or "config"
        if (depth == len(parts) - 1 and depth > 0 and parts[depth - 1] == "options"
                and isinstance(node, ml_collections.ConfigDict) and name not in node):
            # `options` sections are free-form keyword arguments of a factory, which itself
            # rejects unknown names with the list of valid ones.
            with node.unlocked():
                node[name] = _parse_item(text)
            return
        if not isinstance(node, ml_collections.ConfigDict) or name not in node:
            valid = sorted(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
            raise ConfigError(f"unknown config key '{dotted_key}': '{name}' is not in {where}; "
                              f"valid keys there: {', '.join(valid)}")
        if depth < len(parts) - 1:
            node = node[name]
    current = node[parts[-1]]
    if isinstance(current, ml_collections.ConfigDict):
        raise ConfigError(f"config key '{dotted_key}' is a section; set one of its keys: "
                          f"{', '.join(sorted(current.keys()))}")
    try:
        value = _parse_value(text, current)
    except (ValueError, SyntaxError) as e:
        raise ConfigError(f"bad value for config key '{dotted_key}' "
                          f"({type(current).__name__} expected): {e}") from None
    node[parts[-1]] = value


def load_config(path: str | Path, overrides: dict[str, str] | None = None) -> ml_collections.ConfigDict:
    """`get_config()` of a file with overrides applied and values checked; the result is locked."""
    config = load_config_file(path)
    config.lock()
    for key, text in (overrides or {}).items():
        apply_override(config, key, text)
    check_values(config)
    return config


# Every value a config can hold that a run cannot check cheaply later is checked here, when the
# config is read (load_config, and the command line after its overrides), before any work.
POSITIVE_INTS = ("data.crop_size", "data.batch_size", "data.eval_batch_size", "data.num_classes",
                 "train.max_to_keep", "train.steps", "train.log_every", "train.eval_every",
                 "train.checkpoint_every", "optim.schedule_period", "loss.n_critic")
NON_NEGATIVE_INTS = ("data.eval_size", "data.num_eval_examples", "data.num_train_examples",
                     "optim.warmup_steps", "optim.decay_steps", "variants.progressive_fade_steps",
                     "variants.history_size")
NON_NEGATIVE_FLOATS = ("optim.g_lr", "optim.d_lr", "optim.min_lr")  # and every *_weight of loss / variants
FRACTIONS = {"train.ema_decay": (0.0, 1.0, "[0, 1)"), "variants.labelled_fraction": (0.0, 1.0, "(0, 1]")}
# the names each implementing module accepts (a test holds them equal: tests/test_config_io.py)
CHOICES = {"train.best_mode": ("max", "min"), "train.compute_dtype": ("float32", "bfloat16"),
           "loss.gradient_penalty": ("none", "wgan_gp", "wgan_gp_deblurgan", "r1"),
           "loss.perceptual_net": ("vgg16", "vgg19"), "loss.perceptual_input": ("imagenet", "raw"),
           "loss.pixel_input": ("imagenet", "raw"), "loss.relativistic_centres": ("pool", "batch"),
           "discriminator.mask_input": ("signed", "probabilities"),
           "variants.transfer_model": ("generator", "discriminator"),
           "variants.unfreeze_restart": ("unfrozen", "model"),
           "optim.schedule": ("constant", "linear_decay", "cosine"),
           "variants.progressive_mode": ("resolution", "patch"), "eval.flip_views": (1, 2, 4)}
RELATIVISTIC = ("ragan", "ragan_ls")  # adversarial kinds that need D's output on the real batch


def _value(config: ml_collections.ConfigDict, dotted: str):
    node = config
    for name in dotted.split("."):
        node = node.get(name) if isinstance(node, ml_collections.ConfigDict) else None
    return node


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def check_values(config: ml_collections.ConfigDict) -> None:
    """ConfigError naming the first value that no run can use (module constants above)."""
    for dotted in POSITIVE_INTS + NON_NEGATIVE_INTS:
        node = _value(config, dotted)
        if node is None:
            continue
        low = 1 if dotted in POSITIVE_INTS else 0
        if not isinstance(node, int) or isinstance(node, bool) or node < low:
            what = "a positive" if low else "a non-negative"
            raise ConfigError(f"config.{dotted} must be {what} whole number, got {node!r}")
    weights = [f"{section}.{key}" for section in ("loss", "variants") if isinstance(config.get(section), ml_collections.ConfigDict)
               for key in config[section] if key.endswith("_weight")]
    for dotted in NON_NEGATIVE_FLOATS + tuple(weights):
        node = _value(config, dotted)
        if node is not None and not (_is_number(node) and math.isfinite(node) and node >= 0):
            raise ConfigError(f"config.{dotted} must be a finite number >= 0, got {node!r}")
    for dotted, (low, high, text) in FRACTIONS.items():
        node = _value(config, dotted)
        if node is None:
            continue
        inside = _is_number(node) and (low <= node < high if text.endswith(")") else low < node <= high)
        if not inside:
            raise ConfigError(f"config.{dotted} must be in {text}, got {node!r}")
    for dotted, valid in CHOICES.items():
        node = _value(config, dotted)
        if node is not None and (node not in valid or isinstance(node, bool) or type(node) is float):
            raise ConfigError(f"config.{dotted} must be one of {', '.join(map(str, valid))}, got {node!r}")
    _check_combinations(config)
    _check_progressive(config)
    _check_unet_depth(config)


def _check_unet_depth(config: ml_collections.ConfigDict) -> None:
    """ConfigError when a U-Net halves its training crop below one pixel: it pads each input to a
    multiple of 2**depth (depth 40: a 2**40-pixel side, an allocation no machine makes)."""
    if _value(config, "generator.name") != "unet":
        return
    depth, crop = _value(config, "generator.options.depth"), _value(config, "data.crop_size")
    side = _value(config, "data.crop_resize") or crop
    if isinstance(depth, int) and isinstance(side, int) and side > 0 and depth >= 1 and 2 ** depth > side:
        raise ConfigError(f"config.generator.options.depth {depth} halves the {side}-pixel training crop below "
                          f"one pixel (2**depth must be at most the crop size: depth <= {side.bit_length() - 1})")


def _check_combinations(config: ml_collections.ConfigDict) -> None:
    """ConfigError naming the first pair of values that do not go together."""
    task, loss = _value(config, "task"), config.get("loss")
    if _value(config, "variants.semi_supervised"):
        if task != "segment":
            raise ConfigError("config.variants.semi_supervised needs task 'segment'")
        if loss is not None and loss.get("adversarial") in RELATIVISTIC:
            raise ConfigError(f"config.variants.semi_supervised needs a non-relativistic loss.adversarial, got "
                              f"{loss.adversarial!r} (unlabelled images have no real counterpart)")
    mask_input = _value(config, "discriminator.mask_input")
    if mask_input not in (None, "signed") and task != "segment":
        raise ConfigError(f"config.discriminator.mask_input {mask_input!r} needs task 'segment'")
    pool_size = _value(config, "loss.relativistic_pool_size")
    if _value(config, "loss.relativistic_centres") == "pool" and pool_size is not None and pool_size < 1:
        raise ConfigError(f"config.loss.relativistic_pool_size must be >= 1, got {pool_size}")


def _check_progressive(config: ml_collections.ConfigDict) -> None:
    """ConfigError naming what is wrong with the progressive schedule (jaxgan.train.progressive)."""
    variants, data = config.get("variants"), config.get("data")
    if variants is None or "progressive_sizes" not in variants or data is None:
        return
    sizes, starts = tuple(int(s) for s in variants.progressive_sizes), tuple(int(s) for s in variants.progressive_steps)
    if not sizes:
        if starts:
            raise ConfigError("variants.progressive_steps is set but variants.progressive_sizes is empty")
        return
    if len(starts) != len(sizes) - 1:
        raise ConfigError(f"variants.progressive_steps needs one start step per size after the first: "
                          f"{len(sizes) - 1} for sizes {sizes}, got {starts}")
    if any(s < 1 for s in sizes):
        raise ConfigError(f"variants.progressive_sizes must be positive, got {sizes}")
    all_starts = (0,) + starts
    if any(b <= a for a, b in zip(all_starts, all_starts[1:])):
        raise ConfigError(f"variants.progressive_steps must be increasing and > 0, got {starts}")
    fade = int(variants.progressive_fade_steps)
    if fade and any(b % a for a, b in zip(sizes, sizes[1:])):
        raise ConfigError(f"fade-in needs every size to be a multiple of the previous one, got {sizes}")
    mode, crop = variants.progressive_mode, int(data.crop_size)
    batches = tuple(int(b) for b in variants.progressive_batch_sizes)
    if mode == "resolution":
        if sizes[-1] != crop or max(sizes) > crop:
            raise ConfigError(f"progressive_mode 'resolution' downscales the data.crop_size={crop} window: the "
                              f"sizes must be <= {crop} and end at it, got {sizes}")
        if batches:
            raise ConfigError("variants.progressive_batch_sizes is for progressive_mode 'patch'")
    else:
        if fade:
            raise ConfigError("variants.progressive_fade_steps needs progressive_mode 'resolution' (a patch "
                              "curriculum keeps the pixel scale: there is no lower resolution to fade from)")
        if sizes[-1] != crop:
            raise ConfigError(f"the last of variants.progressive_sizes {sizes} must be data.crop_size={crop}")
        if batches and (len(batches) != len(sizes) or batches[-1] != int(data.batch_size)):
            raise ConfigError(f"variants.progressive_batch_sizes needs one batch per size {sizes} ending at "
                              f"data.batch_size={data.batch_size}, got {batches}")


def config_to_json(config: ml_collections.ConfigDict) -> str:
    return config.to_json_best_effort(indent=2, sort_keys=True)


# What a key means in a config saved before the key existed, where today's default would change how
# that run trains or predicts: the behaviour it had. (A key's absence from a saved config dates the run.)
BEFORE_THE_KEY = {
    "loss.relativistic_centres": "batch",  # RaGAN centred on batch means before the pool existed
    "train.ema_batch_stats": False,  # EMA params were applied with the live batch-norm statistics
}


def config_from_json(text: str) -> ml_collections.ConfigDict:
    """Rebuilds a run's config (as saved in its workdir) on top of the current schema; keys added since
    take the behaviour the run had (BEFORE_THE_KEY), others today's defaults."""
    config = base_config()
    values = json.loads(text)
    _merge(config, values)
    for dotted, old_behaviour in BEFORE_THE_KEY.items():
        section, key = dotted.split(".")
        if key not in values.get(section, {}):
            config[section][key] = old_behaviour
    return config


def _merge(config: ml_collections.ConfigDict, values: dict) -> None:
    for key, value in values.items():
        if key not in config:
            continue  # a key from an older schema: ignore it, the defaults stand
        if isinstance(config[key], ml_collections.ConfigDict) and isinstance(value, dict):
            if key == "options":  # free-form keyword options: take them as saved
                with config.unlocked():
                    config[key] = ml_collections.ConfigDict(value)
            else:
                _merge(config[key], value)
        elif isinstance(config[key], tuple) and isinstance(value, list):
            config[key] = tuple(value)
        else:
            with config.ignore_type():
                config[key] = value
