"""Data path: zerotune's in-memory batching (slicing tensors with a shuffled index) against
torch.utils.data.DataLoader with default collation, on digits, in one process.

    python benchmarks/data_path.py [--epochs 20] [--batch-size 64] [--threads 1]

Prints the time per epoch of each, for fetching batches alone and for a full training epoch of
the digits CNN, and the DataLoader / in-memory ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from zerotune.config import DataConfig
from zerotune.data import build_data
from zerotune.data.batches import epoch_permutation, iter_batches
from zerotune.models import create_model


def in_memory_batches(split, batch_size, epoch):
    return iter_batches(split, batch_size, epoch_permutation(len(split), 0, epoch, "cpu"))


def dataloader_batches(loader, batch_size, epoch):
    return iter(loader)


def time_epochs(batches, epochs: int, step=None) -> float:
    times = []
    for epoch in range(epochs):
        start = time.perf_counter()
        for x, y in batches(epoch):
            if step is not None:
                step(x, y)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    split = build_data(DataConfig(name="digits")).train
    loader = DataLoader(TensorDataset(split.x, split.y), batch_size=args.batch_size, shuffle=True)
    ours = lambda e: in_memory_batches(split, args.batch_size, e)  # noqa: E731
    theirs = lambda e: dataloader_batches(loader, args.batch_size, e)  # noqa: E731

    torch.manual_seed(0)
    model = create_model("cnn", input_shape=(1, 8, 8), num_outputs=10)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def train_step(x, y):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    print(f"digits: {len(split)} training images, batch {args.batch_size}, median of {args.epochs} epochs, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'workload':<22}{'in-memory ms':>14}{'DataLoader ms':>15}{'ratio':>8}")
    for name, step in (("batches only", None), ("CNN training epoch", train_step)):
        time_epochs(ours, 2, step), time_epochs(theirs, 2, step)  # warm-up
        a = time_epochs(ours, args.epochs, step)
        b = time_epochs(theirs, args.epochs, step)
        print(f"{name:<22}{a * 1000:>14.2f}{b * 1000:>15.2f}{b / a:>8.1f}x")


if __name__ == "__main__":
    main()
