"""Preference tuning: peak memory of the two ways zerotune gets the reference model's log-probs.

    python benchmarks/preference_memory.py                      # random 128M Llama, 2 pairs x 128 tokens
    python benchmarks/preference_memory.py --batch 4 --length 256

- LoRA: the reference is the model itself with its adapters switched off, run on each batch
  without gradients (one more forward pass per step, no second model);
- full fine-tuning: the reference's log-probs of every pair are computed once before the first step
  and cached (``reference_logps.safetensors``); no copy of the model is kept.

Each variant trains 3 AdamW steps in a subprocess of its own, as `benchmarks/sft_memory.py` does:
peak RSS is the kernel's mark (``VmHWM``). "load + reference" is the peak when training starts
(weights loaded, adapters attached, under full fine-tuning the reference cached); the mark is then
reset, and "training" is the peak over the steps, "added by training" the part above the resident
size at the start. A second model in memory, the naive reference, would add the weights again
(printed for scale).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import importlib.util

QUIET = ["log.progress=false", "log.tensorboard=false", "finetune.baseline=false"]
def _sft_memory():
    """benchmarks/sft_memory.py, for its random Llama and its reading of /proc/self/status."""
    spec = importlib.util.spec_from_file_location("sft_memory", Path(__file__).with_name("sft_memory.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


VARIANTS = {
    "lora r=8, reference = adapters off": ["finetune.strategy=lora"],
    "full, reference = cached log-probs": ["finetune.strategy=full"],
}


def child(overrides: list[str]) -> None:
    """Train one variant in this process; print its figures as one JSON line."""
    import zerotune
    from zerotune.config import load_config
    from zerotune.train.callbacks import Callback

    status_mb = _sft_memory()._status_mb

    class Probe(Callback):
        def on_fit_start(self, state):
            self.load_peak = status_mb("VmHWM")  # loading, and under full fine-tuning the cached reference
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # the peak-RSS mark starts again from the current size
            self.start = status_mb("VmRSS")

        def on_step_end(self, state):
            self.peak = status_mb("VmHWM")

    probe = Probe()
    zerotune.train(load_config(None, overrides), callbacks=[probe])
    print(json.dumps({"load_peak_mb": probe.load_peak, "start_mb": probe.start, "peak_mb": probe.peak}))


def run_child(overrides: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps(overrides)], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=2, help="pairs per step")
    p.add_argument("--length", type=int, default=128, help="tokens per sequence")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(json.loads(args.child))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        records = [{"prompt": f"Count on from {n}.", "chosen": " ".join(str(n + i) for i in range(1, 120)),
                    "rejected": " ".join(str(n + 2 * i) for i in range(1, 120))} for n in range(40)]
        (tmp / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        _sft_memory().build_llama(tmp / "llama", [r["prompt"] + " " + r["chosen"] for r in records])
        weights_mb = (tmp / "llama" / "model.safetensors").stat().st_size / 2**20
        base = ["data.name=preference", f"data.path={tmp / 'pairs.jsonl'}", f"data.max_length={args.length}",
                f"train.batch_size={args.batch}", "train.max_steps=3", "train.epochs=1", "optim.name=adamw",
                f"train.threads={args.threads}", "preference.board_prompts=0", f"finetune.source={tmp / 'llama'}",
                f"log.dir={tmp / 'runs'}", *QUIET]
        rows = {name: run_child(base + extra) for name, extra in VARIANTS.items()}
    print(f"random Llama, 128M parameters ({weights_mb:.0f} MiB of weights), {args.batch} pairs x {args.length} "
          f"tokens per step, {args.threads} threads")
    print(f"{'variant':36s} {'load + reference MiB':>20s} {'training peak MiB':>18s} {'added by training MiB':>22s}")
    for name, r in rows.items():
        print(f"{name:36s} {r['load_peak_mb']:20.0f} {r['peak_mb']:18.0f} {r['peak_mb'] - r['start_mb']:22.0f}")
    lora, full = rows.values()
    print(f"LoRA / full: training peak {lora['peak_mb'] / full['peak_mb']:.2f}; "
          f"a second model as the reference would add about {weights_mb:.0f} MiB to either")


if __name__ == "__main__":
    main()
