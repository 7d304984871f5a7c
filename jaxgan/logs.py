"""What the libraries under jaxgan may print: quiet by default, everything with `--verbose`.

The one place that sets the third-party log levels (TensorFlow's C++ log, absl's Python logger, the
tfds progress bars) and the one importer of TensorFlow (`import_tensorflow`), so that the settings
hold before TensorFlow first loads. Only log levels change, never a library's numerics (oneDNN stays
on). `configure(verbose)` is called by the command line before any heavy import; library users get
the quiet TensorFlow import and can set JAXGAN_VERBOSE=1 to see everything.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import sys
import tempfile
import threading
import traceback

VERBOSE_ENV = "JAXGAN_VERBOSE"
TF_LOG_LEVEL_ENV = "TF_CPP_MIN_LOG_LEVEL"  # read once, when TensorFlow's C++ library loads


def verbose() -> bool:
    """Whether the libraries' own log lines are wanted (--verbose or JAXGAN_VERBOSE=1)."""
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


def _quiet_tensorflow_cpp() -> None:
    """TensorFlow's (and XLA's) C++ log: fatal lines only. Its ERROR lines are notices too: tf.data's uint8
    transposes print "E0000 ... oneDNN supports DT_UINT8 only on platforms with AVX-512" on CPUs without
    AVX-512; a failing op raises a Python exception, which jaxgan reports. Set, not defaulted: `import jax`
    has already defaulted it to 1 (warnings and errors); --verbose is the switch back."""
    os.environ[TF_LOG_LEVEL_ENV] = "3"


def configure(verbose_output: bool = False) -> None:
    """Sets the libraries' log levels for this process (and its children, through the environment)."""
    if verbose_output or verbose():
        os.environ[VERBOSE_ENV] = "1"
        os.environ[TF_LOG_LEVEL_ENV] = "0"
        return
    _quiet_tensorflow_cpp()
    # tfds and orbax log through absl ("Using custom data configuration", "Variant folder ... has no
    # dataset_info.json" for the datasets jaxgan generates itself); errors still come through
    logging.getLogger("absl").setLevel(logging.ERROR)
    # orbax's background save threads log each failure of a save (a disk filling up during one) at
    # ERROR, dozens of lines, and asyncio adds "exception was never retrieved" for its futures; jaxgan
    # turns that failure into its own one-line error, so those lines are only for --verbose
    absl = logging.getLogger("absl")
    if not any(isinstance(f, _DropOrbaxRecords) for f in absl.filters):
        absl.addFilter(_DropOrbaxRecords())
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)


class _DropOrbaxRecords(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return f"{os.sep}orbax{os.sep}" not in record.pathname


@contextlib.contextmanager
def _stderr_held(replay_on_error: bool = True):
    """Holds what is written to file descriptor 2 (C++ code included); replays it on an exception when
    replay_on_error, else drops it (the caller reports the failure itself)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            if replay_on_error:
                os.dup2(saved, 2)
                held.seek(0)
                sys.stderr.write(held.read().decode(errors="replace"))
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


@contextlib.contextmanager
def quiet_checkpoint_read():
    """Drops what orbax and TensorStore print while a checkpoint is read and after a failed read (unless
    verbose): C++ lines and their reading threads' tracebacks ("Event loop is closed", "Exception ignored
    in <coroutine ...>" with TensorStore's spec dump: thousands of lines, some at exit) go to file
    descriptor 2 and sys.unraisablehook; jaxgan reports the failure in one line of its own."""
    if verbose():
        yield
        return
    if not getattr(sys.unraisablehook, "drops_orbax", False):
        sys.unraisablehook = _drop_orbax_unraisables(sys.unraisablehook)
    with _stderr_held(replay_on_error=False):
        try:
            yield
        finally:
            gc.collect()  # most of a failed read's coroutines are finalised here, while fd 2 is held


def _closed_loop_callback(unraisable) -> bool:
    """TensorStore's reading threads finishing a future after orbax closed its event loop: a
    RuntimeError of asyncio's call_soon_threadsafe, reported with no object, from a thread of theirs."""
    tb = unraisable.exc_traceback
    frames = [f.f_code.co_name for f, _ in traceback.walk_tb(tb)] if tb is not None else []
    return (unraisable.object is None and isinstance(unraisable.exc_value, RuntimeError)
            and "call_soon_threadsafe" in frames and threading.current_thread() is not threading.main_thread())


def _drop_orbax_unraisables(previous):
    """A sys.unraisablehook dropping the complaints of orbax's reading coroutines, finalised whenever
    the garbage collector gets to them (at exit too) after a failed read, and of TensorStore's threads
    calling back into orbax's closed loop; others go to `previous`."""
    def hook(unraisable):
        code = getattr(unraisable.object, "cr_code", None)
        if code is not None and f"{os.sep}orbax{os.sep}" in code.co_filename:
            return
        if _closed_loop_callback(unraisable):
            return
        previous(unraisable)

    hook.drops_orbax = True
    return hook


@contextlib.contextmanager
def quiet_native_output():
    """Holds what native code (and Python) writes to stderr inside the block, unless verbose; shown if the
    block fails. For libraries that print from C++ (TFLite's "INFO: Created TensorFlow Lite XNNPACK
    delegate for CPU.") and warn from Python (tf.lite.Interpreter's deprecation notice)."""
    import warnings

    if verbose():
        yield
        return
    with _stderr_held(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def import_tensorflow():
    """`import tensorflow`, quietly unless verbose. TensorFlow 2.21 prints "oneDNN custom operations
    are on ..." and absl's pre-initialisation notice from C++ while loading, before any log level
    applies; the only other switch (TF_ENABLE_ONEDNN_OPTS=0) would change its numerics, so the
    import's stderr is held instead (and shown if the import fails)."""
    if "tensorflow" in sys.modules or verbose():
        import tensorflow as tf

        return tf
    _quiet_tensorflow_cpp()
    with _stderr_held():
        import tensorflow as tf
    return tf
