import os

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
