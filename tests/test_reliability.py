"""Fault injection: what a run's files survive. Checkpoints truncated, bytes flipped, the trainer
killed with SIGKILL while saving, a second trainer on the same workdir, a full disk; each checks that
nothing is lost and nothing wrong is read (restores compared bitwise with an uninterrupted run)."""

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from PIL import Image

from jaxgan import bundle, cli
from jaxgan.train import checkpoint, train_and_evaluate
from jaxgan.train.checkpoint import CheckpointError, DamagedCheckpointWarning
from jaxgan.train.restore import restore_run
from train_helpers import enable_compilation_cache, loop_test_config, patch_engine, train_on_fake_data
from cli_helpers import error_line

ROOT = Path(__file__).parents[1]
CACHE_ENV = enable_compilation_cache()
STEPS = 8


def _config(steps=STEPS):
    config = loop_test_config()  # the program of test_train_loop: a compilation cache hit there
    config.train.steps = steps
    config.train.checkpoint_every = 1  # with max_to_keep 3: checkpoints 6, 7, 8
    return config


def _leaves(state):
    return jax.tree.leaves(jax.device_get(state))


def _assert_same_state(a, b):
    for x, y in zip(_leaves(a), _leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


def _tmp_folders(workdir: Path) -> list[Path]:
    return [p for p in workdir.rglob(f"*{checkpoint.TMP_MARK}*")]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted 8-step run, checkpointing every step."""
    workdir = tmp_path_factory.mktemp("reference")
    train_on_fake_data(_config(), workdir)
    return workdir


def _copy(reference: Path, tmp_path: Path) -> Path:
    shutil.copytree(reference, tmp_path / "w")
    return tmp_path / "w"


def _largest_file(step_dir: Path) -> Path:
    return max((p for p in step_dir.rglob("*") if p.is_file() and p.name != checkpoint.MANIFEST),
               key=lambda p: p.stat().st_size)


def _flip_bytes(path: Path, count: int = 4096) -> None:
    data = bytearray(path.read_bytes())
    start = max(len(data) // 2 - count // 2, 0)
    for i in range(start, min(start + count, len(data))):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def test_every_checkpoint_has_a_manifest_that_verifies(reference):
    steps = sorted(int(p.name) for p in (reference / "checkpoints").iterdir() if p.name.isdigit())
    assert steps == [6, 7, 8]
    for s in steps:
        step_dir = reference / "checkpoints" / str(s)
        entries = json.loads((step_dir / checkpoint.MANIFEST).read_text())["files"]
        assert any(name.startswith("state/") for name in entries)
        assert checkpoint.verify_manifest(step_dir) is None


def test_truncated_latest_is_skipped_by_evaluate_predict_and_resume(reference, tmp_path, monkeypatch, capsys):
    workdir = _copy(reference, tmp_path)
    victim = _largest_file(workdir / "checkpoints" / "8")
    os.truncate(victim, victim.stat().st_size // 2)
    # evaluate / predict: the newest good checkpoint (7), exactly as saved, and one warning naming 8
    with pytest.warns(DamagedCheckpointWarning, match=r"checkpoint 8 in .* is damaged \(file .* bytes"):
        *_, state, step = restore_run(str(workdir))
    *_, expected, _ = restore_run(str(reference), step=7)
    assert step == 7
    _assert_same_state(state, expected)
    image = tmp_path / "a.png"
    from PIL import Image
    Image.fromarray(np.full((20, 24, 3), 90, np.uint8)).save(image)
    # (predict reads G's bundle, WORKDIR/generator/8, beside the checkpoint: intact here)
    code = cli.main(["predict", "--workdir", str(workdir), str(image), "--output", str(tmp_path / "out")])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "out" / "a.png").is_file()
    # resume: 8 is moved aside (kept), the run resumes from 7 and step 8 comes out bitwise the same
    patch_engine(monkeypatch.setattr)
    with pytest.warns(DamagedCheckpointWarning, match="moved the damaged checkpoint 8"):
        train_and_evaluate(_config(), str(workdir))
    assert (workdir / checkpoint.DAMAGED_DIR / "8").is_dir()
    *_, resumed, step = restore_run(str(workdir))
    *_, final, _ = restore_run(str(reference))
    assert step == 8
    _assert_same_state(resumed, final)


def test_flipped_bytes_are_detected_and_never_restored(reference, tmp_path, capsys, monkeypatch):
    workdir = _copy(reference, tmp_path)
    for s in (8, 7):
        _flip_bytes(_largest_file(workdir / "checkpoints" / str(s)))
    with pytest.warns(DamagedCheckpointWarning) as record:
        *_, state, step = restore_run(str(workdir))
    assert step == 6 and len(record) == 2 and "does not match its checksum" in str(record[0].message)
    _assert_same_state(state, restore_run(str(reference), step=6)[3])
    # every checkpoint damaged: one line, exit 2, nothing restored
    _flip_bytes(_largest_file(workdir / "checkpoints" / "6"))
    with pytest.raises(CheckpointError, match="no usable checkpoint, 3 damaged"):
        restore_run(str(workdir))
    patch_engine(monkeypatch.setattr)  # (evaluate and predict read G's bundle beside the checkpoint)
    code = cli.main(["train", "--workdir", str(workdir)])
    assert code == 2
    assert "no usable checkpoint" in error_line(capsys.readouterr().err)
    # a resuming run neither starts afresh nor moves anything: the user decides
    with pytest.raises(CheckpointError, match="no usable checkpoint"):
        train_and_evaluate(_config(), str(workdir))
    assert not (workdir / checkpoint.DAMAGED_DIR).exists()
    assert sorted(p.name for p in (workdir / "checkpoints").iterdir()) == ["6", "7", "8"]


def test_checkpoint_without_manifest_still_restores(reference, tmp_path):
    """Checkpoints written before manifests existed restore as before (unverified)."""
    workdir = _copy(reference, tmp_path)
    for manifest in (workdir / "checkpoints").glob(f"*/{checkpoint.MANIFEST}"):
        manifest.unlink()
    *_, state, step = restore_run(str(workdir))
    assert step == 8
    _assert_same_state(state, restore_run(str(reference))[3])


@pytest.fixture(scope="module")
def killed_run(reference, tmp_path_factory):
    """A trainer in a subprocess: while it holds its workdir a second trainer is started on it, then it
    is killed with SIGKILL during the save of checkpoint 6."""
    workdir = tmp_path_factory.mktemp("killed")
    env = dict(os.environ, JAX_PLATFORMS="cpu", CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3", **CACHE_ENV)
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "train_subprocess.py"), "killed", str(workdir), "6"],
                            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 240
        while not (workdir / "started").exists():
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.time() < deadline, "the run never started"
            time.sleep(0.1)
        metrics_before = (workdir / "metrics.jsonl").read_bytes()
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = cli.main(["train", "--workdir", str(workdir)])
        metrics_after = (workdir / "metrics.jsonl").read_bytes()
        (workdir / "go").touch()
        _, proc_err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    return dict(workdir=workdir, pid=proc.pid, returncode=proc.returncode, proc_err=proc_err, code=code,
                err=err.getvalue(), metrics_before=metrics_before, metrics_after=metrics_after)


def test_second_trainer_on_a_workdir_is_refused(killed_run):
    assert killed_run["code"] == 2
    line = error_line(killed_run["err"])
    assert "is in use by another jaxgan run" in line and f"pid {killed_run['pid']}" in line
    assert killed_run["metrics_after"] == killed_run["metrics_before"]  # the refused one wrote nothing


def test_kill9_during_a_save_resumes_exactly(killed_run, reference, monkeypatch):
    workdir = killed_run["workdir"]
    assert killed_run["returncode"] == -9, killed_run["proc_err"][-3000:]
    logged = [json.loads(line)["step"] for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert max(logged) == 6  # the killed run logged step 6 before its checkpoint was finished
    # the kill came during the save of checkpoint 6: orbax's temporary folder, not yet renamed to 6
    at_kill = json.loads((workdir / "at_kill.json").read_text())
    assert "5" in at_kill and "6" not in at_kill, at_kill
    assert any(name.startswith(f"6{checkpoint.TMP_MARK}") for name in at_kill), at_kill
    patch_engine(monkeypatch.setattr)
    with pytest.warns(UserWarning, match="took over the stale lock"):
        train_and_evaluate(_config(), str(workdir))
    assert not _tmp_folders(workdir)
    assert not (workdir / "jaxgan.lock").exists()
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    train_steps = [r["step"] for r in rows if r["split"] == "train"]
    assert train_steps == list(range(1, STEPS + 1))  # truncated to the restored step, then continued
    *_, resumed, step = restore_run(str(workdir))
    *_, final, _ = restore_run(str(reference))
    assert step == STEPS
    _assert_same_state(resumed, final)


@contextlib.contextmanager
def _tmpfs(folder: Path, size: str):
    if os.geteuid() != 0:
        pytest.skip("the disk-full test mounts a small tmpfs, which needs root")
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.fixture
def small_disk(tmp_path):
    """A 64 KiB tmpfs (a checkpoint of the tiny run needs ~170 KiB)."""
    with _tmpfs(tmp_path / "small", "64k") as mnt:
        yield mnt


def test_disk_full_at_the_second_checkpoint_keeps_the_first(tmp_path, monkeypatch, capsys):
    """400 KiB: checkpoint 1 fits, checkpoint 2 does not (its arrays + the save margin exceed what
    is left): one line naming what was kept, and checkpoint 1 restores."""
    with _tmpfs(tmp_path / "disk", "400k") as disk:
        patch_engine(monkeypatch.setattr)
        config = _config(steps=3)
        config.train.max_to_keep = 3
        config.train.num_samples = 0
        with pytest.raises(CheckpointError) as info:
            train_and_evaluate(config, str(disk / "w"))
        message = str(info.value)
        assert "disk full while saving checkpoint 2" in message and "the checkpoints kept: 1" in message
        assert not _tmp_folders(disk)
        *_, state, step = restore_run(str(disk / "w"))
        assert step == 1 and int(state.step) == 1


def test_disk_full_during_a_checkpoint_is_one_line_and_leaves_no_temporary_folders(reference, small_disk,
                                                                                     monkeypatch, capsys):
    config_file = small_disk.parent / "tiny.py"
    config_file.write_text(f"import sys\nsys.path.insert(0, {str(ROOT / 'tests')!r})\n"
                           "from train_helpers import loop_test_config\n\n"
                           "def get_config():\n    c = loop_test_config()\n    c.train.steps = 2\n"
                           "    c.train.checkpoint_every = 1\n    return c\n")
    patch_engine(monkeypatch.setattr)
    code = cli.main(["train", "--config", str(config_file), "--workdir", str(small_disk / "w")])
    err = capsys.readouterr().err
    assert code == 2
    line = err.strip().splitlines()[-1]
    assert "disk full while saving checkpoint" in line and "Traceback" not in err, err[-3000:]
    assert not _tmp_folders(small_disk)


def test_disk_full_in_a_real_process_prints_only_the_error_line(small_disk):
    """The command line's whole stderr (not pytest's capture, which also swallows library logging)
    on a disk too small for a checkpoint: the progress bar and jaxgan's one line, nothing of orbax."""
    script = small_disk.parent / "run.py"
    config_file = small_disk.parent / "tiny.py"
    config_file.write_text(f"import sys\nsys.path.insert(0, {str(ROOT / 'tests')!r})\n"
                           "from train_helpers import loop_test_config\n\n"
                           "def get_config():\n    c = loop_test_config()\n    c.train.steps = 2\n"
                           "    c.train.checkpoint_every = 1\n    return c\n")
    script = small_disk.parent / "run.py"
    script.write_text(f"import sys\nsys.path.insert(0, {str(ROOT / 'tests')!r})\n"
                      "from train_helpers import patch_engine\npatch_engine(setattr)\nfrom jaxgan import cli\n"
                      f"sys.exit(cli.main(['train', '--config', {str(config_file)!r}, "
                      f"'--workdir', {str(small_disk / 'w')!r}]))\n")
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                         env={**os.environ, **CACHE_ENV})
    lines = [line for line in run.stderr.replace("\r", "\n").splitlines() if line.strip()
             and not line.startswith("train:")]
    assert run.returncode == 2, run.stderr[-3000:]
    assert len(lines) == 1 and "disk full while saving checkpoint 1" in lines[0], run.stderr[-3000:]
    assert "needs" in lines[0] and "free" in lines[0]
    assert not _tmp_folders(small_disk)


def _cli_script(folder: Path) -> Path:
    """A script running `jaxgan ARGS...` on the fake data of the engine tests (a real process: its
    whole stderr is seen, the libraries' own lines and what they print at exit included)."""
    script = folder / "jaxgan_cli.py"
    script.write_text(f"import sys\nsys.path.insert(0, {str(ROOT / 'tests')!r})\n"
                      "from train_helpers import patch_engine\npatch_engine(setattr)\nfrom jaxgan import cli\n"
                      "sys.exit(cli.main(sys.argv[1:]))\n")
    return script


@pytest.mark.parametrize("command", ["train", "predict"])
def test_truncated_checkpoints_without_manifests_end_in_one_line(reference, tmp_path, command):
    """Every checkpoint's array files cut in half and no manifest to catch it: orbax and
    TensorStore fail reading it (and print thousands of lines of their own, some at exit, from their
    threads too); the command line prints jaxgan's one line naming the folder and the checkpoints, exit
    status 2. Predict reads G from the checkpoints as for a workdir an older jaxgan wrote (no bundles)."""
    workdir = _copy(reference, tmp_path)
    for step_dir in (workdir / "checkpoints").iterdir():
        (step_dir / checkpoint.MANIFEST).unlink()
        # every array file (predict reads G's arrays only: wherever orbax put them, they are cut)
        for victim in (p for p in (step_dir / "state").rglob("*") if p.is_file() and p.parent.name == "d"):
            os.truncate(victim, victim.stat().st_size // 2)
    args = ["train", "--workdir", str(workdir)]
    if command == "predict":
        shutil.rmtree(workdir / bundle.LATEST_DIR)
        image = tmp_path / "in.png"
        Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(image)
        args = ["predict", "--workdir", str(workdir), str(image), "--output", str(tmp_path / "out")]
    run = subprocess.run([sys.executable, str(_cli_script(tmp_path)), *args],
                         capture_output=True, text=True, timeout=300, env={**os.environ, **CACHE_ENV})
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert run.returncode == 2 and len(lines) == 1, run.stderr[-3000:]
    assert f"{workdir / 'checkpoints'}: no usable checkpoint, 3 damaged (checkpoint 8: " in lines[0]
    assert "TensorStore details" not in lines[0]


def test_export_onto_a_full_disk_is_one_line_and_leaves_nothing(reference, tmp_path, capsys):
    """A 16 KiB disk: the StableHLO export (~24 KiB program + ~7 KiB weights) cannot fit. One line,
    exit 2, and no partial output (a retry elsewhere or after freeing space is not told it "exists")."""
    with _tmpfs(tmp_path / "disk", "16k") as disk:
        code = cli.main(["export", "--workdir", str(reference), "--format", "stablehlo",
                         "--output", str(disk / "model")])
        line = error_line(capsys.readouterr().err)
        assert code == 2 and f"disk full while writing {disk / 'model'}" in line, line
        assert list(disk.iterdir()) == []


def test_free_space_for_the_checkpoint_but_not_its_generator_bundle_is_refused_before_writing(tmp_path,
                                                                                            monkeypatch):
    """The bundle written beside each checkpoint (G's variables) counts in the free-space check: with room
    for the checkpoint's arrays alone, the save is refused in one error before anything is written."""
    import collections

    from jaxgan.train import state as state_lib
    from train_helpers import tiny_config

    config = tiny_config("deblur")
    config.train.ema_decay = 0.5
    g, d = state_lib.make_modules(config)
    state = state_lib.create_state(config, g, d, {"input": np.zeros((1, 16, 16, 3), np.float32)},
                                   jax.random.PRNGKey(0))
    bundle_bytes = sum(leaf.nbytes for leaf in jax.tree.leaves(state.generator_variables()))
    free = checkpoint._bytes_written_here(state) + checkpoint.SAVE_MARGIN_BYTES + bundle_bytes // 2
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(checkpoint.shutil, "disk_usage", lambda path: usage(10 * free, 9 * free, free))
    ckpt = checkpoint.Checkpointer(tmp_path, config)
    with pytest.raises(CheckpointError, match="disk full while saving checkpoint 1 .* it needs"):
        ckpt.save(1, state)
    ckpt.close()
    assert not (tmp_path / bundle.LATEST_DIR).exists() and ckpt.latest_step() is None
