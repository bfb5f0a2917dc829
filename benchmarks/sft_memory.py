"""Instruction tuning: peak training memory and step time of LoRA, full fine-tuning and gradient
checkpointing; and the demo's comparison table (exact match, trainable share, prompt masking).

    python benchmarks/sft_memory.py                                   # memory, on a random 128M Llama
    python benchmarks/sft_memory.py --batch 4 --length 256            # longer batches: activations weigh more
    python benchmarks/sft_memory.py --demo runs/sft-demo-gpt          # the table of docs/llm-finetune.md

How memory is measured: each variant trains in a subprocess of its own. When training starts (the
model loaded, adapters attached) a callback resets the kernel's peak-RSS mark (writing 5 to
``/proc/self/clear_refs``) and notes the resident size; after each optimizer step it reads the peak
(``VmHWM`` in ``/proc/self/status``), so the copy of the weights a checkpoint takes at the end and
the final evaluation's second model do not count.
"Peak RSS" includes Python, torch and the weights (the same for every variant); "added by
training" is the peak above the resident size at the start: gradients, optimizer state and
activations. torch's CPU allocator keeps no statistics and tracemalloc does not see tensor memory,
so the kernel's figure is used (Linux only).

The memory run builds a randomly initialised Llama (hidden 1024, 10 layers: 128M parameters,
about 510 MB in float32) with a BPE tokenizer trained on its data, and trains 3 steps of `--batch`
sequences of `--length` tokens per variant (AdamW; default 2 x 128). Prints one row per variant
and the ratios LoRA/full and checkpointing/none.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUIET = ["log.progress=false", "log.tensorboard=false", "finetune.baseline=false"]
MEMORY_VARIANTS = {
    "full": ["finetune.strategy=full"],
    "full + grad checkpointing": ["finetune.strategy=full", "train.grad_checkpointing=true"],
    "lora r=8": ["finetune.strategy=lora"],
    "lora r=8 + grad checkpointing": ["finetune.strategy=lora", "train.grad_checkpointing=true"],
}
DEMO_VARIANTS = {
    "lora r=8 (recipe)": [],
    "full fine-tuning": ["finetune.strategy=full", "optim.lr=1e-3"],
    "lora r=8, prompt not masked": ["sft.mask_prompt=false"],
    "full, prompt not masked": ["finetune.strategy=full", "optim.lr=1e-3", "sft.mask_prompt=false"],
}


def child(spec: dict) -> None:
    """Train one variant in this process; print its figures as one JSON line."""
    import time

    import zerotune
    from zerotune.config import load_config
    from zerotune.train.callbacks import Callback

    class Probe(Callback):
        def on_fit_start(self, state):
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # the peak-RSS mark starts again from the current size
            self.start_rss = _status_mb("VmRSS")

        def on_step_end(self, state):
            if state.step == 1:
                self.t1 = time.perf_counter()
            self.last_step, self.t_last = state.step, time.perf_counter()
            self.peak = _status_mb("VmHWM")  # after each step: checkpoint copies at epoch ends do not count

    probe = Probe()
    result = zerotune.train(load_config(spec["recipe"], spec["overrides"]), callbacks=[probe])
    m = result.metrics
    print(json.dumps({"peak_mb": probe.peak, "start_mb": probe.start_rss,
                      "step_s": (probe.t_last - probe.t1) / max(probe.last_step - 1, 1),
                      "trainable_percent": m["finetune"]["trainable_percent"],
                      "exact_match": m["test"].get("exact_match"), "val_exact_match": m["val"].get("exact_match")}))


def _status_mb(field: str) -> float:
    """A memory figure of /proc/self/status (VmRSS, VmHWM) in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise SystemExit(f"no {field} in /proc/self/status: this benchmark needs Linux")


def run_child(recipe: str | None, overrides: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps({"recipe": recipe, "overrides": overrides})],
                         capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def build_llama(directory: Path, texts: list[str]) -> None:
    """A random Llama of 128M parameters with a BPE tokenizer trained on `texts`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer, tok.decoder = pre_tokenizers.ByteLevel(add_prefix_space=False), decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=400, special_tokens=["<pad>", "<unk>", "</s>"],
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", eos_token="</s>")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(hf_tok), hidden_size=1024, intermediate_size=2816, num_hidden_layers=10,
                      num_attention_heads=16, num_key_value_heads=16, max_position_embeddings=512,
                      pad_token_id=0, eos_token_id=2, tie_word_embeddings=False)
    LlamaForCausalLM(cfg).save_pretrained(str(directory))
    hf_tok.save_pretrained(str(directory))


def memory(threads: int, batch: int, length: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        records = [{"prompt": f"Count on from {n}.", "response": " ".join(str(n + i) for i in range(1, 120))}
                   for n in range(40)]
        (tmp / "count.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        build_llama(tmp / "llama", [r["prompt"] + " " + r["response"] for r in records])
        base = ["data.name=sft", f"data.path={tmp / 'count.jsonl'}", f"data.max_length={length}",
                f"train.batch_size={batch}", "train.max_steps=3", "train.epochs=1", "optim.name=adamw",
                f"train.threads={threads}", "sft.eval_prompts=0", "sft.board_prompts=0",
                f"finetune.source={tmp / 'llama'}", f"log.dir={tmp / 'runs'}", *QUIET]
        rows = {name: run_child(None, base + extra) for name, extra in MEMORY_VARIANTS.items()}
    print(f"random Llama, 128M parameters, {batch} x {length} tokens per step, {threads} threads")
    print(f"{'variant':32s} {'peak RSS MiB':>12s} {'added by training MiB':>21s} {'step s':>8s} {'trainable %':>12s}")
    for name, r in rows.items():
        print(f"{name:32s} {r['peak_mb']:12.0f} {r['peak_mb'] - r['start_mb']:21.0f} {r['step_s']:8.2f} "
              f"{r['trainable_percent']:12.2f}")
    full, lora = rows["full"], rows["lora r=8"]
    def added(r):
        return r["peak_mb"] - r["start_mb"]

    print(f"LoRA / full: peak RSS {lora['peak_mb'] / full['peak_mb']:.2f}, added by training "
          f"{added(lora) / added(full):.2f}")
    for name, plain in (("full", full), ("lora r=8", lora)):
        ck = rows[f"{name} + grad checkpointing"]
        print(f"grad checkpointing / none, {name}: peak RSS {ck['peak_mb'] / plain['peak_mb']:.2f}, "
              f"added by training {added(ck) / added(plain):.2f}")


def demo(source: str, threads: int) -> None:
    recipe = str(ROOT / "recipes" / "sft_demo.toml")
    with tempfile.TemporaryDirectory() as tmp:
        base = [f"finetune.source={source}", f"train.threads={threads}", f"log.dir={tmp}", *QUIET]
        rows = {name: run_child(recipe, base + extra + [f"log.name=variant-{i}"])
                for i, (name, extra) in enumerate(DEMO_VARIANTS.items())}
    print("| variant | test exact match | trainable share | step time | peak RSS |")
    print("|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {100 * r['exact_match']:.1f}% | {r['trainable_percent']:.2f}% | "
              f"{1000 * r['step_s']:.0f} ms | {r['peak_mb']:.0f} MiB |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--demo", metavar="GPT_RUN", help="the demo's comparison table, tuning this pretrained run")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=2, help="memory run: sequences per step")
    p.add_argument("--length", type=int, default=128, help="memory run: tokens per sequence")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(json.loads(args.child))
    elif args.demo:
        demo(str(Path(args.demo).resolve()), args.threads)
    else:
        memory(args.threads, args.batch, args.length)


if __name__ == "__main__":
    main()
