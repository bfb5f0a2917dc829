"""Trainer overhead: zerotune's loop against a plain hand-written PyTorch loop (and Lightning, if
installed), same model, data, optimizer and number of steps, in one process.

    python benchmarks/trainer_overhead.py [--epochs 8] [--repeats 3] [--threads 1]

Prints each trainer's training throughput (samples/s over the optimizer steps) and its ratio to the
plain loop. zerotune runs with its defaults: TensorBoard scalars every step, checkpoints each
epoch; evaluation only at the end, so all three do the same work in the timed window.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
import torch.nn.functional as F

import zerotune
from zerotune.config import load_config
from zerotune.data import build_data
from zerotune.models import create_model
from zerotune.train.callbacks import Callback

BATCH = 64


def settings(epochs: int) -> list[str]:
    return ["data.name=digits", "model.name=cnn", "optim.name=adam", "optim.lr=1e-3", f"train.epochs={epochs}",
            f"train.batch_size={BATCH}", f"train.eval_every={epochs}", "log.progress=false", "log.scalars_every=1"]


class StepClock(Callback):
    """Times the optimizer steps: from fit start to the last step's end."""

    def on_fit_start(self, state):
        self.start, self.steps = time.perf_counter(), 0

    def on_step_end(self, state):
        self.end, self.steps = time.perf_counter(), self.steps + 1


def run_zerotune(epochs: int, root: str, i: int) -> tuple[float, int]:
    clock = StepClock()
    cfg = load_config(None, settings(epochs) + [f"log.dir={root}", f"log.name=z{i}"])
    zerotune.train(cfg, callbacks=[clock])
    return clock.end - clock.start, clock.steps


def run_plain(epochs: int, data, seed: int) -> tuple[float, int]:
    torch.manual_seed(seed)
    model = create_model("cnn", input_shape=tuple(data.meta.input_shape), num_outputs=10)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x_all, y_all = data.train.x, data.train.y
    n, steps = len(y_all), 0
    start = time.perf_counter()
    for epoch in range(epochs):
        perm = torch.randperm(n)
        for b in range(0, n, BATCH):
            idx = perm[b:b + BATCH]
            loss = F.cross_entropy(model(x_all[idx]), y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            steps += 1
    return time.perf_counter() - start, steps


def run_lightning(epochs: int, data, seed: int) -> tuple[float, int] | None:
    try:
        import lightning as L
    except ImportError:
        return None

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = create_model("cnn", input_shape=tuple(data.meta.input_shape), num_outputs=10)

        def training_step(self, batch, _):
            x, y = batch
            loss = F.cross_entropy(self.model(x), y)
            self.log("train/loss", loss)
            return loss

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-3)

    clock = {}

    class Clock(L.Callback):
        def on_train_start(self, *a):
            clock["start"] = time.perf_counter()

        def on_train_batch_end(self, *a):
            clock["end"] = time.perf_counter()
            clock["steps"] = clock.get("steps", 0) + 1

    torch.manual_seed(seed)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(data.train.x, data.train.y),
                                         batch_size=BATCH, shuffle=True)
    with tempfile.TemporaryDirectory() as d:
        trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=L.pytorch.loggers.TensorBoardLogger(d),
                            log_every_n_steps=1, enable_progress_bar=False, enable_model_summary=False,
                            enable_checkpointing=True, default_root_dir=d, callbacks=[Clock()])
        trainer.fit(Module(), loader)
    return clock["end"] - clock["start"], clock["steps"]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads for all trainers")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = build_data(load_config(None, settings(args.epochs)).data)
    n_train = len(data.train)
    results: dict[str, list[float]] = {"plain": [], "zerotune": [], "lightning": []}
    with tempfile.TemporaryDirectory() as root:
        run_plain(1, data, 0)  # warm up kernels and allocator
        for i in range(args.repeats):  # interleaved, so drift in machine load hits all alike
            for name in results:
                if name == "plain":
                    t, steps = run_plain(args.epochs, data, i)
                elif name == "zerotune":
                    t, steps = run_zerotune(args.epochs, root, i)
                else:
                    out = run_lightning(args.epochs, data, i)
                    if out is None:
                        continue
                    t, steps = out
                results[name].append(steps * BATCH / t if steps else 0.0)
    print(f"digits CNN, {n_train} training images, batch {BATCH}, {args.epochs} epochs, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads; median of {args.repeats}")
    base = statistics.median(results["plain"])
    print(f"{'trainer':<12}{'samples/s':>12}{'ratio':>9}")
    for name, vals in results.items():
        if not vals:
            print(f"{name:<12}{'not installed':>12}")
            continue
        med = statistics.median(vals)
        print(f"{name:<12}{med:>12.0f}{med / base:>9.3f}")


if __name__ == "__main__":
    main()
