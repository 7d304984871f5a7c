"""`jaxgan train | evaluate | predict | export`: the command line.

    jaxgan train --config experiments/configs/deblur_quick.py --workdir runs/deblur [--config.train.steps=100]
    jaxgan evaluate --workdir runs/deblur [--split test] [--no-lpips]
    jaxgan predict --workdir runs/deblur photo.jpg folder/ --output out/
    jaxgan export --workdir runs/deblur --format savedmodel --output deblur_savedmodel
    jaxgan score results/ gopro/test/sharp/ --convention matlab --crop-border 4 --json scores.json
    jaxgan import-weights --format deblurgan latest_net_G.pth --workdir runs/deblurgan_original

Mistakes a user can make (a bad config key, a workdir without a checkpoint, an unreadable image, an
output folder that cannot be written) end with one line on stderr and exit status 2; `--debug`
(anywhere on the line) or JAXGAN_DEBUG=1 shows the traceback instead. Heavy imports (JAX, TensorFlow) happen inside the
commands, so `jaxgan --help` is instant and `predict` never loads TensorFlow.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import warnings
from pathlib import Path

EXIT_USER_ERROR = 2


class UsageError(ValueError):
    """A command-line mistake; the message is shown to the user as is."""


def _parse_overrides(extra: list[str]) -> dict[str, str]:
    """Collects `--config.a.b=value` / `--config.a.b value` arguments."""
    overrides: dict[str, str] = {}
    i = 0
    while i < len(extra):
        arg = extra[i]
        if not arg.startswith("--config."):
            raise UsageError(f"unrecognised argument {arg!r} (overrides look like --config.train.steps=10)")
        key = arg[len("--config."):]
        if "=" in key:
            key, value = key.split("=", 1)
        elif i + 1 < len(extra):
            value = extra[i + 1]
            i += 1
        else:
            raise UsageError(f"{arg} needs a value")
        overrides[key] = value
        i += 1
    return overrides


def _cmd_train(args, extra) -> int:
    from jaxgan import config_io  # deferred (JAX): `jaxgan --help` stays instant

    overrides = _parse_overrides(extra)
    workdir = Path(args.workdir)
    if args.config:
        config = config_io.load_config(args.config, overrides)
    else:
        saved = workdir / "config.json"
        if not saved.is_file():
            raise UsageError(f"--config is required: {workdir} holds no config.json of an earlier run")
        config = config_io.config_from_json(saved.read_text())
        for key, text in overrides.items():
            config_io.apply_override(config, key, text)
        config_io.check_values(config)
    if args.init_from:
        config.train.init_from = args.init_from
    if args.dry_run:
        return _dry_run(config)
    from jaxgan.train import train_and_evaluate  # deferred (JAX): `jaxgan --help` stays instant

    metrics = train_and_evaluate(config, str(workdir))
    if metrics:
        print(json.dumps({k: v for k, v in metrics.items() if isinstance(v, (int, float))}, indent=1))
    return 0


def _dry_run(config) -> int:
    """Prints the resolved config and G's and D's parameter counts (shapes only, nothing computed or written)."""
    from jaxgan.train.build import build  # deferred (JAX): `jaxgan --help` stays instant
    from jaxgan.trees import count_params  # deferred (JAX): `jaxgan --help` stays instant

    shapes = build(config, with_loss_nets=False).abstract_state()
    print(config)
    print(f"generator {config.generator.name}: {count_params(shapes.g.params):,} parameters")
    print(f"discriminator {config.discriminator.name}: {count_params(shapes.d.params):,} parameters")
    return 0


EVAL_OVERRIDABLE = ("data.", "eval.")  # what evaluation reads from the config; the model is the checkpoint's


def _cmd_evaluate(args, extra) -> int:
    from jaxgan import bundle, config_io  # deferred (JAX): `jaxgan --help` stays instant

    overrides = _parse_overrides(extra)
    bad = [k for k in overrides if not k.startswith(EVAL_OVERRIDABLE)]
    if bad:
        raise UsageError(f"evaluate takes --config.data.* and --config.eval.* overrides only "
                         f"(the model comes from the checkpoint), got --config.{bad[0]}")
    generator = bundle.load_generator(args.workdir)  # the run's newest generator and its config
    config = generator.config
    for key, text in overrides.items():
        config_io.apply_override(config, key, text)
    if overrides:
        config_io.check_values(config)
    if args.convention != "jaxgan":  # 8-bit images scored as that paper's code does (jaxgan.score)
        from jaxgan import score  # deferred (JAX): `jaxgan --help` stays instant

        results = score.evaluate_in_convention(args.workdir, config, args.split, args.convention, args.crop_border)
    else:
        from jaxgan.train.evaluation import run_evaluation  # deferred (JAX): `jaxgan --help` stays instant

        results, _ = run_evaluation(config, generator.module(), generator.variables, args.split, lpips=args.lpips)
    text = json.dumps(results, indent=1, sort_keys=True)
    print(text)
    suffix = "" if args.convention == "jaxgan" else f"_{args.convention}"
    out = Path(args.output) if args.output else Path(args.workdir) / f"eval_{args.split}{suffix}.json"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
    except OSError as e:
        raise UsageError(f"cannot write {out}: {e.strerror or e}") from None
    print(f"wrote {out}", file=sys.stderr)
    return 0


def _check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"output folder {folder} cannot be created: {e.strerror or e}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"output folder {folder} is not writable")


MIN_TILE_SIZE = 32  # smaller tiles see too little of the image (a 1-pixel tile: all background)


def _check_tiling(tile_size: int | None, overlap: int) -> None:
    if tile_size is not None and tile_size != 0 and tile_size < MIN_TILE_SIZE:
        raise UsageError(f"--tile-size {tile_size}: expected 0 (never tile) or at least {MIN_TILE_SIZE} pixels")
    if overlap < 0:  # (above half a tile it is clamped to half: jaxgan.infer)
        raise UsageError(f"--overlap {overlap}: expected 0 or more pixels")


def _cmd_predict(args, extra) -> int:
    if extra:
        raise UsageError(f"unrecognised arguments: {' '.join(extra)}")
    from jaxgan import images, infer, predict  # deferred (JAX): `jaxgan --help` stays instant

    if bool(args.workdir) == bool(args.pretrained):
        raise UsageError("give exactly one of --workdir DIR or --pretrained NAME")
    _check_tiling(args.tile_size, args.overlap)
    paths = images.list_images(args.inputs)
    out_dir = Path(args.output)
    _check_writable(out_dir)
    predictor = (predict.Predictor.from_workdir(args.workdir) if args.workdir
                 else predict.Predictor.from_pretrained(args.pretrained))
    if args.buckets:
        predictor.buckets = infer.BUCKET_SIDES
    if args.flip_views is not None:
        predictor.flip_views = args.flip_views
    with _predict_progress(len(paths), args.quiet) as report:
        start = time.perf_counter()
        done, skipped = predict.predict_files(predictor, paths, out_dir, skip_bad=args.skip_bad,
                                              tile_size=args.tile_size, overlap=args.overlap,
                                              overwrite=args.overwrite, report=report)
    if len(skipped) == len(paths):
        raise UsageError(f"all {len(paths)} input(s) were unreadable: nothing was written")
    if skipped:
        print(f"jaxgan predict: skipped {len(skipped)} unreadable input(s) of {len(paths)}", file=sys.stderr)
    if not args.quiet:
        seconds = time.perf_counter() - start
        print(f"jaxgan predict: {len(done)} image(s) in {seconds:.1f} s ({len(done) / max(seconds, 1e-9):.2f} "
              f"images/s), results in {out_dir}", file=sys.stderr)
    return 0


@contextlib.contextmanager
def _predict_progress(total: int, quiet: bool):
    """report(line) for predict_files: nothing when quiet; else the line on stdout and, for more than one
    input on a terminal, a bar with images/s on stderr (tqdm; the lines go above it)."""
    if quiet:
        yield lambda line: None
        return
    import tqdm

    shown = total > 1 and sys.stderr.isatty()  # a log file or a pipe gets the lines and the summary only
    with tqdm.tqdm(total=total, desc="predict", unit="img", disable=not shown, dynamic_ncols=True,
                   file=sys.stderr) as bar:
        def report(line: str) -> None:
            bar.write(line, file=sys.stdout)
            bar.update(1)

        yield report


def _pretrained_help() -> str:
    from jaxgan import pretrained  # deferred like the commands' imports (numpy only: cheap)

    names = pretrained.available()
    return ("a model shipped with jaxgan: " + ", ".join(names) if names
            else "a model shipped with jaxgan (this install ships none)")


def _cmd_import_weights(args, extra) -> int:
    if extra:
        raise UsageError(f"unrecognised arguments: {' '.join(extra)}")
    from jaxgan.weights.workdir import import_checkpoint  # deferred (JAX): `jaxgan --help` stays instant

    summary = import_checkpoint(args.format, args.file, args.workdir, args.config or None)
    print(json.dumps(summary, indent=1))
    return 0


def _add_import_weights(sub) -> None:
    from jaxgan.weights.formats import FORMATS  # deferred (JAX): `jaxgan --help` stays instant

    im = sub.add_parser("import-weights",
                        help="turn an original repository's generator checkpoint into a workdir (a generator bundle)")
    im.add_argument("file", help="latest_net_G.pth (pix2pix, DeblurGAN) or fpn_*.h5 (DeblurGAN-v2)")
    im.add_argument("--format", required=True, help=f"one of: {', '.join(sorted(FORMATS))}")
    im.add_argument("--workdir", required=True, help="new workdir for `jaxgan predict / evaluate --workdir`")
    im.add_argument("--config", default="", help="experiment file whose data / loss sections to keep")
    im.set_defaults(run=_cmd_import_weights)


def build_parser() -> argparse.ArgumentParser:
    from jaxgan.infer import FLIPS  # deferred like the commands' imports (numpy only: cheap)

    parser = argparse.ArgumentParser(prog="jaxgan", description=__doc__.split("\n\n")[0])
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an error (also JAXGAN_DEBUG=1; allowed anywhere)")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train (or resume) a GAN; overrides: --config.KEY=VALUE")
    train.add_argument("--config", help="experiment file with get_config() (default: the workdir's saved config)")
    train.add_argument("--workdir", required=True, help="checkpoints, logs, samples; resumes from it")
    train.add_argument("--init-from", default="",
                       help="initialise from another run's workdir or pretrained:NAME")
    train.add_argument("--dry-run", action="store_true",
                       help="print the resolved config and the parameter counts of G and D, then exit")
    train.set_defaults(run=_cmd_train)

    ev = sub.add_parser("evaluate", help="metrics of a trained run on a split; prints and writes JSON")
    ev.add_argument("--workdir", required=True)
    ev.add_argument("--split", default="test")
    # --config.data.KEY=VALUE / --config.eval.KEY=VALUE: evaluate on other data than the run's
    ev.add_argument("--output", default="", help="JSON file (default WORKDIR/eval_SPLIT.json)")
    ev.add_argument("--lpips", action=argparse.BooleanOptionalAction, default=True,
                    help="deblurring: also LPIPS (VGG16) of the output and the baselines (default: on)")
    ev.add_argument("--convention", choices=CONVENTIONS, default="jaxgan",
                    help=CONVENTION_HELP + "; other than jaxgan: PSNR / SSIM of the 8-bit outputs (deblurring)")
    ev.add_argument("--crop-border", type=int, default=0, help="with --convention: pixels shaved off each side")
    ev.set_defaults(run=_cmd_evaluate)

    pr = sub.add_parser("predict", help="run a trained generator on image files or folders")
    pr.add_argument("inputs", nargs="+", help="image files or folders of images, any size")
    pr.add_argument("--workdir", default="",
                    help="a training run's workdir (uses EMA params if kept) or a generator bundle folder")
    pr.add_argument("--pretrained", default="", help=_pretrained_help())
    pr.add_argument("--output", required=True, help="folder for the results")
    pr.add_argument("--tile-size", type=int, default=None,
                    help="process larger images in overlapping tiles of this size (0: never tile; default: the "
                         "model's, 768 for a trained run, the whole image for imported weights)")
    pr.add_argument("--overlap", type=int, default=64, help="tile overlap in pixels")
    pr.add_argument("--buckets", action="store_true",
                    help="pad each whole image to one of a few sizes (sides 256, 512, 768; larger ones in tiles of "
                         "one shape) so that many sizes compile a handful of programs; the padding changes results "
                         "(image statistics, borders) except where the bucket is the model's own padding")
    pr.add_argument("--flip-views", type=int, choices=tuple(FLIPS), default=None,
                    help="average G's outputs over the image and its flips (2: + left-right, 4: + up-down and "
                         "both; default: the run's config.eval.flip_views, 1 for most)")
    pr.add_argument("--overwrite", action="store_true",
                    help="replace result files that exist already in --output (refused otherwise)")
    pr.add_argument("--skip-bad", action="store_true",
                    help="skip unreadable or corrupt inputs (each reported) instead of stopping the batch")
    pr.add_argument("--quiet", action="store_true",
                    help="print errors only (no progress bar, written files or summary): for scripts")
    pr.set_defaults(run=_cmd_predict)
    _add_export_command(sub)
    _add_score_command(sub)
    _add_import_weights(sub)
    _add_verbose_flag(sub)
    return parser


# Errors shown as one line: every user-facing error of jaxgan is a ValueError subclass, plus OS
# errors (a full disk, a missing permission) and a diverged run (DivergenceError).
USER_ERRORS = (ValueError, OSError, FloatingPointError)


def _pop_debug(argv: list[str]) -> tuple[list[str], bool]:
    """Removes `--debug` wherever it stands; True when it was there or JAXGAN_DEBUG is set."""
    debug = bool(os.environ.get("JAXGAN_DEBUG")) and os.environ.get("JAXGAN_DEBUG") != "0"
    return [a for a in argv if a != "--debug"], debug or "--debug" in argv


def _one_line_warnings() -> None:
    """jaxgan's own warnings (a skipped damaged checkpoint, a first frame used) as one line each."""
    if getattr(warnings.formatwarning, "jaxgan_one_line", False):
        return
    package = os.path.dirname(os.path.abspath(__file__))
    default = warnings.formatwarning

    def formatwarning(message, category, filename, lineno, line=None):
        if os.path.abspath(filename).startswith(package):
            return f"jaxgan: warning: {message}\n"
        return default(message, category, filename, lineno, line)

    formatwarning.jaxgan_one_line = True
    warnings.formatwarning = formatwarning


def _cmd_export(args, extra) -> int:
    if extra:
        raise UsageError(f"unrecognised arguments: {' '.join(extra)}")
    from jaxgan import export  # deferred (JAX): `jaxgan --help` stays instant

    return export.main_export(args)


def _add_export_command(sub) -> None:
    ex = sub.add_parser("export", help="write a trained generator as a SavedModel, TFLite, StableHLO or ONNX model")
    ex.add_argument("--workdir", required=True,
                    help="a training run's workdir (uses EMA params if kept) or a generator bundle folder")
    ex.add_argument("--format", required=True, choices=("savedmodel", "tflite", "stablehlo", "onnx"),
                    help="onnx: opset 17, via TFLite and tf2onnx")
    ex.add_argument("--output", required=True, help="the model's path (never overwritten)")
    ex.add_argument("--size", default="", help="fixed input size HxW (tflite, onnx, and runs with an input prior)")
    ex.set_defaults(run=_cmd_export)


def _cmd_score(args, extra) -> int:
    if extra:
        raise UsageError(f"unrecognised arguments: {' '.join(extra)}")
    from jaxgan import score  # deferred (JAX): `jaxgan --help` stays instant

    return score.main_score(args)


CONVENTIONS = ("jaxgan", "matlab", "basicsr", "deblurganv2")  # jaxgan.score.CONVENTIONS
CONVENTION_HELP = ("how PSNR / SSIM are computed: jaxgan (RGB, jaxgan evaluate's), matlab (Y of YCbCr rounded to "
                   "8 bits, MATLAB's psnr / ssim), basicsr (BasicSR's Y-channel calculate_psnr / calculate_ssim), "
                   "deblurganv2 (its test_metrics.py: RGB PSNR and CW-SSIM)")


def _add_score_command(sub) -> None:
    sc = sub.add_parser("score", help="score any method's output images against ground truth (matched by file name)")
    sc.add_argument("pred_dir", help="folder of results (any method's)")
    sc.add_argument("target_dir", help="folder of ground-truth images or masks, same file names")
    sc.add_argument("--task", choices=("deblur", "segment"), default="deblur",
                    help="deblur: PSNR / SSIM / LPIPS; segment: IoU / Dice of label masks")
    sc.add_argument("--convention", choices=CONVENTIONS, default="jaxgan", help=CONVENTION_HELP)
    sc.add_argument("--crop-border", type=int, default=0, help="pixels shaved off each side before scoring")
    sc.add_argument("--lpips", action=argparse.BooleanOptionalAction, default=True,
                    help="deblurring: also LPIPS (VGG16) (default: on)")
    sc.add_argument("--json", default="", help="also write the per-image scores and means as JSON (never overwritten)")
    sc.add_argument("--csv", default="", help="also write the per-image scores as CSV (never overwritten)")
    sc.set_defaults(run=_cmd_score)


def _add_verbose_flag(sub) -> None:
    for command in sub.choices.values():
        command.add_argument("--verbose", action="store_true",
                             help="also show the libraries' own log lines (TensorFlow, absl, tfds)")


def _check_xla_flags() -> None:
    """XLA_FLAGS whose items are not --xla_* flags refused in one line: XLA itself aborts the process
    with a fatal log line on an unknown flag when the backend starts. XLA's list of flags is not
    exposed, so a misspelt --xla_* flag still meets XLA's own fatal line."""
    import shlex

    text = os.environ.get("XLA_FLAGS", "")
    try:
        items = shlex.split(text)
    except ValueError:  # unbalanced quotes: left to XLA's parser
        return
    bad = [item for item in items if not item.startswith("--xla_") or len(item.split("=")[0]) <= len("--xla_")]
    if bad:
        raise UsageError(f"XLA_FLAGS={text!r}: {bad[0]!r} is not an XLA flag (XLA takes only --xla_NAME[=VALUE] "
                         "items and stops the process on any other); fix or unset XLA_FLAGS")


def _check_environment() -> None:
    """A bad JAXGAN_CONV_IMPL named at once (later it fails inside a restore, blaming the checkpoints),
    as are XLA_FLAGS and JAX_PLATFORMS that would stop JAX's backend."""
    _check_xla_flags()
    value = os.environ.get("JAXGAN_CONV_IMPL")
    if value:
        from jaxgan import ops  # deferred (JAX): `jaxgan --help` stays instant

        ops.check_impl(value, "the environment variable JAXGAN_CONV_IMPL")
    platforms = os.environ.get("JAX_PLATFORMS")
    if platforms:  # a platform this machine lacks ends in a bare AssertionError deep in jax
        import jax

        try:
            jax.devices()
        except Exception as e:
            detail = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
            raise UsageError(f"JAX cannot start a backend for JAX_PLATFORMS={platforms!r} ({detail}): "
                             "unset it or install that platform's jax plugin") from None


def _attach_dashed_values(argv: list[str]) -> list[str]:
    """`--size -5x3` -> `--size=-5x3`: argparse takes a value starting with '-' for an option (and
    stops with 'expected one argument') unless it reads as a number; attached, the check names it."""
    out = []
    for arg in argv:
        if out and out[-1] in ("--size", "--tile-size", "--overlap") and arg.startswith("-") and arg != "--":
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def main(argv: list[str] | None = None) -> int:
    argv, debug = _pop_debug(list(sys.argv[1:] if argv is None else argv))
    argv = _attach_dashed_values(argv)
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if not debug:
        _one_line_warnings()
    from jaxgan import logs  # deferred (JAX): `jaxgan --help` stays instant

    logs.configure(verbose_output=getattr(args, "verbose", False))
    try:
        _check_environment()
        return args.run(args, extra)
    except KeyboardInterrupt:
        print("jaxgan: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as e:
        if debug:
            raise
        print(f"jaxgan {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
