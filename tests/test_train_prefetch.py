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
