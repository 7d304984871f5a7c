"""jaxgan.train: the training engine.

- state:      `GANState` (G and D TrainStates with batch_stats, EMA params, RNG key), `create_state`,
              `make_modules`, optax optimizers and schedules.
- steps:      pure `d_step`, `g_step`, `train_step` `(state, batch, aux) -> (state, metrics)` via
              `make_step_fns(config)`; `make_aux(config)` for the VGG weights.
- parallel:   mesh over all devices, shardings, `jit_step`, multi-host helpers.
- checkpoint: orbax checkpoints of the state + config.
- loop:       `train_and_evaluate(config, workdir)`.
- evaluate:   `evaluate(config, workdir, split, state)`, `restore_generator(workdir)`.
- variants (config.variants, all off by default): `progressive` (crop-size schedule, fade-in),
  `history` (image pool for D, in GANState.pool), `transfer` (load by path where shapes match,
  report, freezing via optax.multi_transform); the multi-stage G and the semi-supervised losses
  hook into `steps`.
"""

from jaxgan.train.checkpoint import Checkpointer, CheckpointError, NoCheckpointError
from jaxgan.train.evaluate import evaluate, restore_generator, run_evaluation
from jaxgan.train.loop import DivergenceError, train_and_evaluate
from jaxgan.train.state import GANState, ModelState, create_state, make_modules, make_optimizer, make_schedule
from jaxgan.train.steps import LossSettings, StepFns, make_aux, make_step_fns

__all__ = [
    "GANState", "ModelState", "create_state", "make_modules", "make_optimizer", "make_schedule",
    "LossSettings", "StepFns", "make_aux", "make_step_fns",
    "Checkpointer", "CheckpointError", "NoCheckpointError",
    "train_and_evaluate", "DivergenceError",
    "evaluate", "restore_generator", "run_evaluation",
]
