"""zerotune's GPT trainer against a nanoGPT-style reference loop, same size and token budget.

    python benchmarks/gpt_vs_nanogpt.py [--recipe recipes/shakespeare_char_gpt.toml] [--threads 2]

The reference is nanoGPT's documented CPU run on Tiny Shakespeare (4 layers, 4 heads, 128
channels, context 64, batch 12, 2,000 iterations, dropout 0): its architecture (learned position
embeddings, no biases, tied weights), its optimizer settings (AdamW lr 1e-3, betas 0.9/0.99,
weight decay 0.1 on matrices, 100 warmup iterations, cosine to 1e-4, clipping at 1.0), its batch
sampling (random windows of a memory-mapped array) and its evaluation (every 250 iterations, 20
batches each of train and val), written as a plain loop. zerotune trains the recipe through
``zerotune.train``, with TensorBoard logging, checkpoints and evaluation on.

Both are timed in this process, alternately (``--repeats`` pairs, since the speed of a shared
machine drifts by tens of percent over minutes): tokens/s over the whole training (evaluation
included, start-up and the final exact evaluation excluded), and the validation loss of the final
model over every validation token. The ratio printed is the median over pairs of zerotune's
tokens/s over the reference's in the same pair: the throughput target (>= 1.2) is checked on it. nanoGPT's own figures on this machine kind (67 s,
validation loss 1.886 estimated on 20 batches, about 23,000 tokens/s) are printed beside them.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import zerotune
from zerotune.config import load_config
from zerotune.models import create_model
from zerotune.train.callbacks import Callback

NANOGPT_TOKENS_PER_SEC = 23_000
NANOGPT_SECONDS = 67
NANOGPT_VAL_LOSS = 1.886


def char_splits(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    text = path.read_text(encoding="utf-8")
    chars = sorted(set(text))
    lookup = {c: i for i, c in enumerate(chars)}
    ids = np.array([lookup[c] for c in text], dtype=np.uint16)
    n = int(0.9 * len(ids))
    return ids[:n], ids[n:], len(chars)


@torch.no_grad()
def exact_loss(model, tokens: np.ndarray, block: int) -> float:
    """Mean next-token loss over every token, in consecutive windows (as zerotune's final metric)."""
    model.eval()
    total, count = 0.0, 0
    t = torch.from_numpy(tokens.astype(np.int64))
    for start in range(0, len(t) - 1, block * 64):
        chunk = t[start:start + block * 64 + 1]
        n = (len(chunk) - 1) // block * block
        if n == 0:
            x, y = chunk[:-1][None], chunk[1:][None]
        else:
            x, y = chunk[:n].view(-1, block), chunk[1:n + 1].view(-1, block)
        total += float(F.cross_entropy(model(x).flatten(0, 1), y.flatten(), reduction="sum"))
        count += y.numel()
        if n and len(chunk) - 1 > n:  # the tail that does not fill a window
            x, y = chunk[n:-1][None], chunk[n + 1:][None]
            total += float(F.cross_entropy(model(x).flatten(0, 1), y.flatten(), reduction="sum"))
            count += y.numel()
    return total / count


def reference(train: np.ndarray, val: np.ndarray, vocab: int, steps: int) -> dict:
    """nanoGPT's train.py for this configuration, as a plain loop (no logging, no checkpoints)."""
    block, batch, lr, min_lr, warmup = 64, 12, 1e-3, 1e-4, 100
    torch.manual_seed(1337)
    model = create_model("gpt", input_shape=(block,), num_outputs=vocab, n_layer=4, n_head=4, n_embd=128,
                         dropout=0.0, bias=False, positions="learned")
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.99))

    def get_batch(data):
        ix = torch.randint(len(data) - block, (batch,))
        x = torch.stack([torch.from_numpy(data[i:i + block].astype(np.int64)) for i in ix])
        y = torch.stack([torch.from_numpy(data[i + 1:i + 1 + block].astype(np.int64)) for i in ix])
        return x, y

    def get_lr(it):
        if it < warmup:
            return lr * (it + 1) / (warmup + 1)
        ratio = (it - warmup) / (steps - warmup)
        return min_lr + 0.5 * (1.0 + math.cos(math.pi * min(ratio, 1.0))) * (lr - min_lr)

    @torch.no_grad()
    def estimate(data):
        model.eval()
        losses = [float(F.cross_entropy(model(x).flatten(0, 1), y.flatten())) for x, y in (get_batch(data) for _ in range(20))]
        model.train()
        return sum(losses) / len(losses)

    start = time.perf_counter()
    model.train()
    x, y = get_batch(train)
    estimated = None
    for it in range(steps + 1):
        for g in opt.param_groups:
            g["lr"] = get_lr(it)
        if it % 250 == 0:
            estimated = (estimate(train), estimate(val))
        if it == steps:
            break
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        x, y = get_batch(train)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "tokens_per_sec": steps * batch * block / seconds,
            "val_estimate": estimated[1], "val_exact": exact_loss(model, val, block)}


class Clock(Callback):
    def on_fit_start(self, state):
        self.start = time.perf_counter()

    def on_fit_end(self, state):
        self.end = time.perf_counter()


def run_zerotune(recipe: Path, extra: list[str], root: str) -> dict:
    cfg = load_config(recipe, [f"log.dir={root}", "log.name=zerotune", "log.progress=false", *extra])
    clock = Clock()
    start = time.perf_counter()
    result = zerotune.train(cfg, callbacks=[clock])
    wall = time.perf_counter() - start
    seconds = clock.end - clock.start
    tokens = result.steps * cfg.train.batch_size * cfg.train.accumulate * cfg.data.block_size
    return {"seconds": seconds, "wall": wall, "tokens_per_sec": tokens / seconds, "tokens": tokens,
            "val_exact": result.metrics["val"]["loss"], "best_estimate": result.metrics["training"]["best"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", type=Path, default=Path("recipes/shakespeare_char_gpt.toml"))
    p.add_argument("--data", type=Path, default=Path("data/tinyshakespeare.txt"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=2000, help="reference iterations")
    p.add_argument("--skip-reference", action="store_true")
    p.add_argument("--repeats", type=int, default=1, help="reference/zerotune pairs to run alternately")
    p.add_argument("--set", action="append", default=[], help="extra zerotune overrides")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    extra = [f"data.path={args.data}", f"train.threads={args.threads}", *args.set]
    rows, ratios, ref, z = [], [], None, None
    if not args.skip_reference:
        train, val, vocab = char_splits(args.data)
    for i in range(args.repeats):
        if not args.skip_reference:
            ref = reference(train, val, vocab, args.steps)
            rows.append((f"reference loop (nanoGPT settings) #{i + 1}", ref["tokens_per_sec"], ref["seconds"],
                         ref["val_exact"], f"estimate {ref['val_estimate']:.3f}"))
        with tempfile.TemporaryDirectory() as root:
            z = run_zerotune(args.recipe, extra, root)
        rows.append((f"zerotune ({args.recipe.name}) #{i + 1}", z["tokens_per_sec"], z["seconds"], z["val_exact"],
                     f"best estimate {z['best_estimate']:.3f}; wall {z['wall']:.1f} s"))
        if ref is not None:
            ratios.append(z["tokens_per_sec"] / ref["tokens_per_sec"])
    print(f"{'trainer':44s} {'tokens/s':>9s} {'train s':>8s} {'val loss':>9s}  notes")
    for name, tps, sec, loss, note in rows:
        print(f"{name:44s} {tps:9,.0f} {sec:8.1f} {loss:9.4f}  {note}")
    print(f"{'nanoGPT, documented on this machine kind':44s} {NANOGPT_TOKENS_PER_SEC:9,.0f} {NANOGPT_SECONDS:8.1f} "
          f"{NANOGPT_VAL_LOSS:9.4f}  estimate on 20 batches")
    if ratios:
        print(f"zerotune / reference loop tokens/s, median of {len(ratios)} pairs: {statistics.median(ratios):.2f} "
              f"(each: {', '.join(f'{r:.2f}' for r in ratios)}; target >= 1.2)")
    # Only meaningful on a machine that runs the reference at about the documented speed.
    print(f"zerotune / nanoGPT's documented 23,000 tokens/s: {z['tokens_per_sec'] / NANOGPT_TOKENS_PER_SEC:.2f}"
          + (f"  (the reference here: {ref['tokens_per_sec'] / NANOGPT_TOKENS_PER_SEC:.2f})" if ref else ""))
    print(f"zerotune val loss {z['val_exact']:.3f} (target <= 1.80)")


if __name__ == "__main__":
    main()
