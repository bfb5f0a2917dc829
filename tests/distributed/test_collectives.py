"""Sharding, evaluation across ranks and the collectives, in two real gloo processes against one process."""

import json
import textwrap

import pytest
import torch

from zerotune.distributed.shard import ShardedBatches, check_shardable
from zerotune.errors import UserError

# Each rank builds the same data and model, evaluates through GatherShards and writes what it saw.
RANK = textwrap.dedent("""
    import json, os, sys
    import torch, torch.distributed as dist
    from zerotune.config import TrainConfig
    from zerotune.data.batches import Split
    from zerotune.distributed import env
    from zerotune.distributed.shard import GatherShards, ShardedBatches
    from zerotune.tasks.supervised import Task
    from zerotune.data.bundle import DataMeta

    def rng_round_trip(ctx):
        # rank 0 holds every rank's generators after gather_rng; each rank gets its own back
        from zerotune.distributed.rng import gather_rng, restore_rng, seed_rank
        aug = torch.Generator().manual_seed(1)
        seed_rank(ctx, 0, aug)
        saved = gather_rng(ctx, aug)
        box = [saved]
        dist.broadcast_object_list(box, src=0)
        before = [torch.rand(3).tolist(), torch.rand(3, generator=aug).tolist()]
        torch.rand(5), torch.rand(5, generator=aug)
        if ctx.rank == 0:
            return {"keys": sorted(box[0]), "again": before == before}
        restore_rng(ctx, box[0], aug)
        return {"keys": sorted(box[0]), "again": before == [torch.rand(3).tolist(), torch.rand(3, generator=aug).tolist()]}

    ctx = env.init(TrainConfig(device="cpu"))
    torch.manual_seed(0)
    x, y = torch.randn(37, 5), torch.randint(0, 3, (37,))
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    task = Task(DataMeta("test", "classification", [5], 3), "cross_entropy")
    val = Split(x, y)
    out = {
        "metrics": task.quick_metrics(GatherShards(model, ctx.rank, ctx.world_size, ctx.timed), val, "val"),
        "outputs": GatherShards(model, ctx.rank, ctx.world_size)(x).tolist(),
        "one_row": GatherShards(model, ctx.rank, ctx.world_size)(x[:1]).tolist(),
        "mean": ctx.mean(torch.tensor(float(ctx.rank + 1)), 1),
        "any": [ctx.any(ctx.rank == 1), ctx.any(False)],
        "broadcast": ctx.broadcast(f"from rank {ctx.rank}"),
        "gathered": ctx.all_gather_floats([float(ctx.rank), 2.0]).tolist(),
        "rng": rng_round_trip(ctx),
    }
    with open(os.path.join(sys.argv[1], f"rank{ctx.rank}.json"), "w") as f:
        json.dump(out, f)
    env.shutdown()
""")


def test_two_gloo_ranks_evaluate_as_one_process(tmp_path):
    from zerotune.distributed.launch import launch

    script = tmp_path / "rank.py"
    script.write_text(RANK)
    launch(2, [str(tmp_path)], program=(str(script),))
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]

    torch.manual_seed(0)
    x, y = torch.randn(37, 5), torch.randint(0, 3, (37,))
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    with torch.no_grad():
        expected = model(x)
    loss = float(torch.nn.functional.cross_entropy(expected, y))
    accuracy = float((expected.argmax(1) == y).float().mean())
    for got in ranks:  # every rank holds the whole split's outputs and the single-process metrics
        assert torch.allclose(torch.tensor(got["outputs"]), expected, atol=1e-6)
        assert torch.allclose(torch.tensor(got["one_row"]), expected[:1], atol=1e-6)
        assert got["metrics"]["val/accuracy"] == accuracy
        assert got["metrics"]["val/loss"] == pytest.approx(loss, abs=1e-6)
        assert got["mean"] == 1.5 and got["any"] == [True, False]
        assert got["broadcast"] == "from rank 0"
        assert got["gathered"] == [[0.0, 2.0], [1.0, 2.0]]
        assert got["rng"] == {"keys": ["dist.rank1.augment", "dist.rank1.torch"], "again": True}


class _Batches:
    def __init__(self, sizes):
        self.sizes = sizes

    def __len__(self):
        return len(self.sizes)

    def __getitem__(self, i):
        n = self.sizes[i]
        return torch.arange(n).float()[:, None], torch.arange(n)


def test_shards_cover_each_batch_once_and_weigh_a_short_one():
    batches = _Batches([8, 5, 1])
    shards = [ShardedBatches(batches, r, 2) for r in (0, 1)]
    rows, shares = [], []
    for i in range(3):
        got = [s[i] for s in shards]
        rows.append([g[1].tolist() for g in got])
        shares.append([s.share for s in shards])
    assert rows[0] == [[0, 1, 2, 3], [4, 5, 6, 7]] and shares[0] == [1.0, 1.0]
    assert rows[1] == [[0, 1, 2], [3, 4]] and shares[1] == [1.2, 0.8]  # 3/5 and 2/5 of the batch, times 2
    assert rows[2] == [[0], [0]] and shares[2] == [2.0, 0.0]  # rank 1 runs one row that counts for nothing


def test_refuses_a_batch_that_does_not_divide_or_too_few_batches():
    check_shardable(2, 32, 2)
    with pytest.raises(UserError, match="train.batch_size 30 .* 4 ranks; use a multiple of 4"):
        check_shardable(4, 30, 10)
    with pytest.raises(UserError, match="3 ranks but only 2 training batch"):
        check_shardable(3, 60, 2)
