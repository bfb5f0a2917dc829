"""Training-step speed of the small GPT recipe's model under variants, side by side in one process.

    python benchmarks/gpt_step_variants.py [--rounds 10] [--threads 2] [--variants baseline,learned,...]

The baseline is `recipes/shakespeare_char_gpt.toml`'s model and step: 4 layers, 4 heads, 128
channels, context 64, RoPE, squared ReLU, batch 24, bf16 autocast, fused AdamW, clipping at 1.0.
Each variant changes one thing. Every variant is built first; then each round runs 10 steps of
each in turn, so a drift in the machine's speed touches them all alike. Printed: the median
tokens/s over rounds and the ratio to the baseline. The model alone is timed, on random tokens,
without the training loop, data loading or logging.
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from zerotune.models import create_model

BASELINE = {"positions": "rope", "activation": "relu2", "batch": 24, "precision": "bf16", "fused": True,
            "attention": "default", "compile": False}
VARIANTS = {
    "baseline": {},
    "learned_positions": {"positions": "learned"},
    "gelu": {"activation": "gelu"},
    "batch_32": {"batch": 32},
    "float32": {"precision": "32"},
    "adamw_not_fused": {"fused": False},
    "sdpa_math_backend": {"attention": "math"},
    "compile": {"compile": True},
}


def make_step(opts: dict, vocab: int = 65, block: int = 64):
    torch.manual_seed(0)
    model = create_model("gpt", input_shape=(block,), num_outputs=vocab, n_layer=4, n_head=4, n_embd=128,
                         positions=opts["positions"], activation=opts["activation"])
    optimizer = torch.optim.AdamW(model.param_groups(0.1), lr=1e-3, betas=(0.9, 0.99), fused=opts["fused"])
    forward = torch.compile(model) if opts["compile"] else model
    x = torch.randint(vocab, (opts["batch"], block))
    y = torch.randint(vocab, (opts["batch"], block))

    def step():
        backend = sdpa_kernel(SDPBackend.MATH) if opts["attention"] == "math" else nullcontext()
        with backend, torch.autocast("cpu", dtype=torch.bfloat16, enabled=opts["precision"] == "bf16"):
            loss = F.cross_entropy(forward(x).flatten(0, 1), y.flatten())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    start = time.perf_counter()
    for _ in range(5):  # warm-up; compiles the compiled variant
        step()
    return step, opts["batch"] * block, time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, from: {', '.join(VARIANTS)}")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        p.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    if "baseline" not in names:
        names.insert(0, "baseline")
    steps = {n: make_step({**BASELINE, **VARIANTS[n]}) for n in names}
    rates = {n: [] for n in names}
    for _ in range(args.rounds):
        for n, (step, tokens, _) in steps.items():
            start = time.perf_counter()
            for _ in range(10):
                step()
            rates[n].append(10 * tokens / (time.perf_counter() - start))
    base = statistics.median(rates["baseline"])
    print(f"GPT 4x4x128, context 64, {args.threads} threads, torch {torch.__version__}; "
          f"median of {args.rounds} rounds of 10 steps")
    print(f"{'variant':20s} {'tokens/s':>9s} {'ratio':>6s}  warm-up (5 steps) s")
    for n in names:
        rate = statistics.median(rates[n])
        print(f"{n:20s} {rate:9,.0f} {rate / base:6.2f}  {steps[n][2]:.1f}")


if __name__ == "__main__":
    main()
