"""jaxgan.train.parallel.prefetch_to_mesh: the batches in order, placed with the batch sharding,
never more than `size` pulled ahead of what the loop consumed."""

import jax
import numpy as np

from jaxgan.train import parallel


def test_prefetch_to_mesh_yields_every_batch_in_order_sharded_and_at_most_size_ahead():
    mesh = parallel.make_mesh()
    rows = len(jax.devices())
    batches = [{"input": np.full((2 * rows, 3, 3, 1), n, np.float32), "id": np.full((2 * rows,), n)} for n in range(6)]
    pulled = []

    def source():
        for n, batch in enumerate(batches):
            pulled.append(n)
            yield batch

    consumed = []
    for batch in parallel.prefetch_to_mesh(source(), mesh, size=2):
        consumed.append(int(np.asarray(batch["id"])[0]))
        assert batch["input"].sharding == parallel.batch_sharding(mesh)
        np.testing.assert_array_equal(np.asarray(batch["input"]), batches[consumed[-1]]["input"])
        assert len(pulled) - len(consumed) <= 2 - 1  # the one in hand and one more already placed
        assert parallel.shard_batch(batch, mesh)["input"] is batch["input"]  # placed once, not again
    assert consumed == list(range(6))
    host = list(parallel.prefetch_to_mesh(iter(batches), mesh, size=0))  # size 0: the host batches as they are
    assert all(a is b for a, b in zip(host, batches, strict=True))


def test_progressive_switch_with_batches_placed_ahead_resumes_exactly(tmp_path, monkeypatch):
    """A size switch without a fade (batches placed two ahead): the batches of the old size pulled
    ahead are dropped, the new size starts at the switch's batch, and a run stopped at the switch
    and resumed ends bit-identical to one run through."""
    from jaxgan.train import train_and_evaluate
    from jaxgan.train.restore import restore_run
    from test_variants_progressive import _config
    from train_helpers import fake_train_iterator, patch_engine

    made = []

    def iterator(config, *, start_step=0, **kwargs):
        made.append((int(config.data.crop_resize or config.data.crop_size), start_step))
        return fake_train_iterator(config, start_step=start_step, **kwargs)

    patch_engine(monkeypatch.setattr, train_iterator=iterator)
    train_and_evaluate(_config(history_size=3), str(tmp_path / "full"))
    assert made == [(16, 0), (32, 2)]  # (the 16 x 16 batches pulled ahead of the switch are dropped)
    made.clear()
    train_and_evaluate(_config(steps=2, history_size=3), str(tmp_path / "resumed"))
    train_and_evaluate(_config(history_size=3), str(tmp_path / "resumed"))
    assert made == [(16, 0), (32, 2)]
    full, resumed = restore_run(str(tmp_path / "full"))[3], restore_run(str(tmp_path / "resumed"))[3]
    for a, b in zip(jax.tree.leaves(full), jax.tree.leaves(resumed), strict=True):
        np.testing.assert_array_equal(a, b)
