import os

import pytest

# Tests run on the CPU; TensorFlow (tf.data) never takes an accelerator.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

# The tests compile hundreds of tiny programs, and LLVM's optimisation of the code XLA generates for
# them dominates their time (an eager `jax.random.normal`: 2.6 s at the default level, 0.3 s at 0),
# while convolutions and GEMMs run in library kernels at any level. The whole suite on 2 cores:
# 13 min 20 s -> 7 min 11 s. Subprocesses inherit it (tests/test_train_parallel.py passes it on).
TEST_XLA_FLAG = "--xla_backend_optimization_level=0"
if "--xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {TEST_XLA_FLAG}".strip()


# CI (.ci/run) sets JAXGAN_TEST_NO_SKIP=1: every test there must run (torch, h5py and root for the
# disk-full tmpfs are all present), so a skipped test or module fails instead of passing unnoticed.
NO_SKIP_ENV = "JAXGAN_TEST_NO_SKIP"


def _fail_a_skip(report) -> None:
    if os.environ.get(NO_SKIP_ENV) and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped, but {NO_SKIP_ENV}=1 says this test must run: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _fail_a_skip(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _fail_a_skip(outcome.get_result())


@pytest.fixture(scope="session")
def builtin_data_dir(tmp_path_factory) -> str:
    """One tfds data_dir for the built-in datasets (photo_blur, shapes_seg), shared by the modules and
    the xdist workers: each variant is built once (prepare_builtin's file lock makes the others wait)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the session's folder above the workers' own
    path = root / "builtin-tfds"
    path.mkdir(exist_ok=True)
    return str(path)
