"""jaxgan.train: the training engine.

- state:      `GANState` (G and D TrainStates with batch_stats, EMA params, RNG key), `create_state`,
              `make_modules`.
- optim:      optax optimizers, learning-rate schedules and freezing (`with_freezing`).
- step_parts: `StepConfig` (what the steps read of the config) and the pieces every step is made of.
- steps:      the plain pure `d_step`, `g_step`, `train_step` `(state, batch, loss_nets) -> (state, metrics)`
              via `make_step_fns(config)`; `make_loss_nets(config)` for the VGG weights.
- parallel:   mesh over all devices, shardings, `jit_step`, multi-host helpers.
- build:      `build(config, mesh)` -> a `Setup`: modules, abstract / initial state, jitted step, loss nets.
- checkpoint: orbax checkpoints of the state + config.
- loop:       `train_and_evaluate(config, workdir)`.
- restore:    `restore_run(workdir)` (a `RestoredRun`), `restore_generator(workdir)`.
- evaluation: `evaluate(config, workdir, split, state)`, `run_evaluation`.
- variants (config.variants, all off by default): hooks into the plain step (`multistage`,
  `image_history` over the pool of `history`, `semi_supervised`); `progressive` (crop-size schedule,
  fade-in); `transfer` (load by path where shapes match, report; freezing is optim's).
"""

from jaxgan.train.build import Setup, build
from jaxgan.train.checkpoint import Checkpointer, CheckpointError, NoCheckpointError
from jaxgan.train.evaluation import evaluate, run_evaluation
from jaxgan.train.loop import DivergenceError, train_and_evaluate
from jaxgan.train.optim import make_optimizer, make_schedule
from jaxgan.train.restore import RestoredGenerator, RestoredRun, restore_generator, restore_run
from jaxgan.train.state import GANState, ModelState, create_state, make_modules
from jaxgan.train.steps import StepConfig, StepFns, make_loss_nets, make_step_fns

__all__ = [
    "Setup", "build",
    "GANState", "ModelState", "create_state", "make_modules", "make_optimizer", "make_schedule",
    "StepConfig", "StepFns", "make_loss_nets", "make_step_fns",
    "Checkpointer", "CheckpointError", "NoCheckpointError",
    "train_and_evaluate", "DivergenceError",
    "evaluate", "run_evaluation", "RestoredRun", "RestoredGenerator", "restore_run", "restore_generator",
]
