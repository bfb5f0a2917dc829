"""Instruction tuning, zerotune against Hugging Face TRL (`SFTTrainer` + PEFT LoRA), on SmolLM2-135M-Instruct.

    zerotune models install smollm2-135m-instruct           # once: the model both tools tune
    python benchmarks/sft_vs_trl.py                         # 2 rounds of 30 steps each, 2 threads
    python benchmarks/sft_vs_trl.py --steps 5 --rounds 1    # a quick look

Both tools get the same model (the dequantized directory in the model cache), the same records
(scripts/make_sft_smollm2_data.py: order dates written as YYYY-MM-DD), formatted with the model's
chat template, the loss on the answer tokens only, LoRA of the same rank, alpha and targets (every
attention and MLP projection), AdamW at a constant learning rate, the same batch size, length limit,
threads and OpenMP settings, and exactly one pass over the same `steps x batch` training records, so
both see the same tokens. Gradient checkpointing is off for both (TRL turns it on by default).

zerotune trains with `sft.packing = true` (`--zerotune-set sft.packing=false` for padded batches).

Each run is a child process of this script, and the tools take turns (zerotune, TRL, zerotune,
TRL, ...), so a change in the machine's load falls on both. A child reports its training time
(from the start of training to the end of the last step) and the CPU time it used meanwhile
(`time.process_time`, steadier than wall time on a shared machine), its mean loss over the last 5
steps, its peak resident memory during training (the kernel's VmHWM, reset when training starts; it
starts from the resident size of the loaded model) and over the whole child (ru_maxrss), and the
held-out exact match. Tokens are counted once with the model's tokenizer. Exact match is scored the
same way for both: the LoRA adapters merged, then transformers' greedy `generate` on held-out prompts.
TRL's answer tokens include the newline its chat template puts after `<|im_end|>`; zerotune's stop
at `<|im_end|>`, so TRL's mean loss is over one easy token more per answer.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = "smollm2-135m-instruct"
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
sys.path.insert(0, str(ROOT / "scripts"))


def settings(args) -> dict:
    """What both tools are given."""
    return {"steps": args.steps, "batch": args.batch, "lr": args.lr, "rank": 8, "alpha": 16.0, "max_length": 256,
            "threads": args.threads, "max_new_tokens": 12, "zerotune": ["sft.packing=true", *args.zerotune_set]}


def write_data(folder: Path, steps: int, batch: int, heldout: int) -> tuple[Path, Path]:
    """train.jsonl (exactly `steps x batch` records: one pass is the run) and heldout.jsonl."""
    from make_sft_smollm2_data import records

    rows = records(steps * batch + heldout, seed=0)
    train, test = folder / "train.jsonl", folder / "heldout.jsonl"
    for path, part in ((train, rows[:steps * batch]), (test, rows[steps * batch:])):
        path.write_text("".join(json.dumps(r) + "\n" for r in part), encoding="utf-8")
    return train, test


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def count_tokens(model_dir: Path, train: Path) -> tuple[int, int]:
    """(all tokens, answer tokens) of the training records in the model's chat format."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    total = answer = 0
    for r in read_jsonl(train):
        prompt = tok.apply_chat_template([{"role": "user", "content": r["prompt"]}], add_generation_prompt=True,
                                         tokenize=False)
        full = tok.apply_chat_template([{"role": "user", "content": r["prompt"]},
                                        {"role": "assistant", "content": r["response"]}], tokenize=False)
        n_prompt, n_full = (len(tok(t, add_special_tokens=False)["input_ids"]) for t in (prompt, full))
        total, answer = total + n_full, answer + n_full - n_prompt
    return total, answer


def exact_match(model, tok, heldout: Path, max_new_tokens: int) -> float:
    """Share of held-out prompts whose greedy answer (transformers `generate`, batches of 16) is the reference."""
    import torch

    rows = read_jsonl(heldout)
    tok.padding_side = "left"
    hits = 0
    model.eval()
    for i in range(0, len(rows), 16):
        part = rows[i:i + 16]
        texts = [tok.apply_chat_template([{"role": "user", "content": r["prompt"]}], add_generation_prompt=True,
                                         tokenize=False) for r in part]
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
        answers = tok.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        hits += sum(a.strip() == r["response"].strip() for a, r in zip(answers, part))
    return hits / len(rows)


def zerotune_child(spec: dict) -> dict:
    """Train with zerotune's `finetune` (LoRA on the model by name); score the merged model."""
    from transformers import AutoTokenizer

    from zerotune.pipeline.finetune import finetune
    from zerotune.runload.load import load_run
    from zerotune.train.callbacks import Callback

    s = spec["settings"]

    class Clock(Callback):
        losses: list = []

        def on_fit_start(self, state):
            reset_peak()
            self.t0, self.c0 = time.perf_counter(), time.process_time()

        def on_step_end(self, state):
            self.losses.append(float(state.loss))
            self.t1, self.c1, self.peak = time.perf_counter(), time.process_time(), training_peak_mib()

    clock = Clock()
    overrides = ["data.name=sft", f"data.path={spec['train']}", f"data.max_length={s['max_length']}",
                 "data.val_fraction=0", "data.test_fraction=0", "finetune.strategy=lora",
                 f"finetune.lora_rank={s['rank']}", f"finetune.lora_alpha={s['alpha']}",
                 f"finetune.lora_targets={json.dumps(TARGETS)}", "finetune.baseline=false", "optim.name=adamw",
                 f"optim.lr={s['lr']}", "optim.weight_decay=0", "optim.clip_norm=1.0", "schedule.name=constant",
                 f"train.batch_size={s['batch']}", "train.epochs=1", f"train.threads={s['threads']}",
                 "sft.eval_prompts=0", "sft.board_prompts=0", "log.progress=false", "log.tensorboard=false",
                 f"log.dir={spec['out']}", "log.name=zerotune", *s["zerotune"]]
    result = finetune(None, source=MODEL, overrides=overrides, callbacks=[clock])
    model = load_run(result.run_dir, "last").model.hf_model.merge_and_unload()
    tok = AutoTokenizer.from_pretrained(spec["model"])
    return {"train_s": clock.t1 - clock.t0, "cpu_s": clock.c1 - clock.c0, "steps": len(clock.losses), "loss": statistics.mean(clock.losses[-5:]),
            "train_peak_mib": clock.peak,
            "exact_match": exact_match(model, tok, Path(spec["heldout"]), s["max_new_tokens"])}


def trl_child(spec: dict) -> dict:
    """Train with TRL's `SFTTrainer` and a PEFT LoRA config; score the merged model."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    s = spec["settings"]
    torch.set_num_threads(s["threads"])

    class Clock(TrainerCallback):
        losses: list = []

        def on_train_begin(self, args, state, control, **kw):
            reset_peak()
            self.t0, self.c0 = time.perf_counter(), time.process_time()

        def on_step_end(self, args, state, control, **kw):
            self.t1, self.c1, self.peak = time.perf_counter(), time.process_time(), training_peak_mib()

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                self.losses.append(float(logs["loss"]))

    rows = read_jsonl(Path(spec["train"]))
    data = Dataset.from_list([{"prompt": [{"role": "user", "content": r["prompt"]}],
                               "completion": [{"role": "assistant", "content": r["response"]}]} for r in rows])
    tok = AutoTokenizer.from_pretrained(spec["model"])
    model = AutoModelForCausalLM.from_pretrained(spec["model"], torch_dtype=torch.float32)
    config = SFTConfig(output_dir=str(Path(spec["out"]) / "trl"), use_cpu=True, bf16=False,
                       per_device_train_batch_size=s["batch"], max_steps=s["steps"], num_train_epochs=1,
                       learning_rate=s["lr"], lr_scheduler_type="constant", weight_decay=0.0, max_grad_norm=1.0,
                       max_length=s["max_length"], completion_only_loss=True, gradient_checkpointing=False,
                       logging_steps=1, save_strategy="no", report_to=[], seed=0, dataloader_num_workers=0,
                       disable_tqdm=True)
    lora = LoraConfig(r=s["rank"], lora_alpha=s["alpha"], lora_dropout=0.0, target_modules=TARGETS, bias="none",
                      task_type="CAUSAL_LM")
    clock = Clock()
    trainer = SFTTrainer(model=model, args=config, train_dataset=data, processing_class=tok, peft_config=lora,
                         callbacks=[clock])
    trainer.train()
    merged = trainer.model.merge_and_unload()
    return {"train_s": clock.t1 - clock.t0, "cpu_s": clock.c1 - clock.c0, "steps": len(clock.losses), "loss": statistics.mean(clock.losses[-5:]),
            "train_peak_mib": clock.peak,
            "exact_match": exact_match(merged, tok, Path(spec["heldout"]), s["max_new_tokens"])}


BEFORE_TRAINING = {"peak_mib": 0.0}  # the process's peak until `reset_peak` (which clears ru_maxrss too)


def reset_peak() -> None:
    """Start the kernel's peak-RSS mark (VmHWM) again from the current size: training's own peak follows."""
    BEFORE_TRAINING["peak_mib"] = peak_mib()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def training_peak_mib() -> float:
    """VmHWM of /proc/self/status in MiB: the peak since `reset_peak`."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmHWM:"))


def peak_mib() -> float:
    """This process's peak resident memory so far (ru_maxrss, KiB on Linux), in MiB."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(tool: str, spec: dict, env: dict) -> dict:
    """One training run in a child process: the JSON line it prints last."""
    out = subprocess.run([sys.executable, __file__, "--child", tool, json.dumps(spec)], capture_output=True, text=True,
                         env=env)
    if out.returncode:
        raise SystemExit(f"{tool} run failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def child(tool: str, spec: dict) -> None:
    result = (zerotune_child if tool == "zerotune" else trl_child)(spec)
    result["peak_mib"] = max(peak_mib(), BEFORE_TRAINING["peak_mib"])
    print(json.dumps(result))


def versions() -> str:
    import peft
    import torch
    import transformers
    import trl

    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return (f"zerotune {rev.stdout.strip() or '?'}, trl {trl.__version__}, peft {peft.__version__}, "
            f"transformers {transformers.__version__}, torch {torch.__version__}")


def table(rows: dict[str, list[dict]], tokens: tuple[int, int]) -> None:
    """One line per tool (medians over rounds), then zerotune / TRL."""
    med = {tool: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for tool, runs in rows.items()}
    print("| tool | tokens/s | answer tokens/s | tokens per CPU-second | peak RSS MiB (training) | "
          "peak RSS MiB (child) | final loss | held-out exact match |")
    print("|---|---|---|---|---|---|---|---|")
    for tool, m in med.items():
        print(f"| {tool} | {tokens[0] / m['train_s']:.1f} | {tokens[1] / m['train_s']:.2f} | {tokens[0] / m['cpu_s']:.1f} | "
              f"{m['train_peak_mib']:.0f} | {m['peak_mib']:.0f} | {m['loss']:.4f} | {100 * m['exact_match']:.1f}% |")
    z, t = med["zerotune"], med["trl"]
    print(f"zerotune / TRL: tokens/s {t['train_s'] / z['train_s']:.2f}x, tokens per CPU-second "
          f"{t['cpu_s'] / z['cpu_s']:.2f}x, peak RSS (training) {z['train_peak_mib'] / t['train_peak_mib']:.2f}, "
          f"peak RSS (child) {z['peak_mib'] / t['peak_mib']:.2f}")
    for tool, runs in rows.items():
        print(f"{tool} rounds: training s " + ", ".join(f"{r['train_s']:.1f}" for r in runs) + "; CPU s "
              + ", ".join(f"{r['cpu_s']:.1f}" for r in runs))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=30, help="optimizer steps per run (one pass over steps x batch)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=2, help="runs per tool, taken in turns")
    p.add_argument("--heldout", type=int, default=64, help="held-out prompts scored by exact match")
    p.add_argument("--zerotune-set", action="append", default=[], metavar="FIELD=VALUE",
                   help="extra zerotune overrides (e.g. sft.packing=false)")
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args.child[0], json.loads(args.child[1]))
    from zerotune.models.hf import resolve_pretrained

    model_dir = resolve_pretrained(MODEL)
    env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE"), "HF_HUB_OFFLINE": "1",
           "OMP_NUM_THREADS": str(args.threads), "TOKENIZERS_PARALLELISM": "false"}
    load = f"{os.getloadavg()[0]:.1f}"
    with tempfile.TemporaryDirectory() as tmp:
        train, heldout = write_data(Path(tmp), args.steps, args.batch, args.heldout)
        tokens = count_tokens(model_dir, train)
        rows: dict[str, list[dict]] = {"zerotune": [], "trl": []}
        for i in range(args.rounds):
            for tool in rows:
                spec = {"settings": settings(args), "train": str(train), "heldout": str(heldout),
                        "model": str(model_dir), "out": str(Path(tmp) / f"{tool}-{i}")}
                rows[tool].append(run_child(tool, spec, env))
                print(f"round {i + 1} {tool}: {json.dumps(rows[tool][-1])}", file=sys.stderr, flush=True)
    print(f"{versions()}; {args.steps} steps x {args.batch} records, {tokens[0]} tokens ({tokens[1]} answer tokens), "
          f"{args.threads} threads, {args.rounds} rounds (medians); load average {load} before, "
          f"{os.getloadavg()[0]:.1f} after")
    table(rows, tokens)


if __name__ == "__main__":
    main()
