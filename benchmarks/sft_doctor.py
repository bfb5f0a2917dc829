"""The runs behind the doctor's instruction-tuning thresholds (sft_not_learning, sft_overfit).

    python benchmarks/sft_doctor.py                        # phone numbers (scripts/make_phone_data.py)
    python benchmarks/sft_doctor.py --task copy --out /tmp/sft-doctor-copy

A character GPT is pretrained on a corpus of one's own (the demo's recipe on
scripts/make_phone_data.py's text, ``data.chat_chars=true``), then tuned on the records in several
ways, each a `zerotune finetune` of its own: LoRA with recipes/sft_demo.toml's settings, LoRA at
a higher rate for longer, full fine-tuning at a learning rate of 2e-3 for 20 epochs, and full
fine-tunes of a part of the records for many epochs (300, 100 or 40 records to train on). For each run it prints the
exact match at each evaluation, the answer loss (train per epoch, val) first/best/last, the test
exact match, and what `zerotune doctor` finds. Runs that exist already in --out are read again,
not retrained.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUIET = ["--no-progress", "--set", "log.graph=false", "--set", "log.embeddings=false"]
VARIANTS = {
    "lora-recipe": [],
    "lora-1e-2-20ep": ["--set", "optim.lr=1e-2", "--set", "train.epochs=20"],
    "full-2e-3-20ep": ["--strategy", "full", "--set", "optim.lr=2e-3", "--set", "train.epochs=20"],
    "full-2e-3-300rec-60ep": ["--strategy", "full", "--set", "optim.lr=2e-3", "--set", "train.epochs=60",
                             "--set", "data.val_fraction=0.75", "--set", "data.test_fraction=0.1"],
    # 40 training records of the first 100 (first-100.jsonl), 50 held out for val, 10 for test
    "full-2e-3-40rec-100ep": ["--strategy", "full", "--set", "optim.lr=2e-3", "--set", "train.epochs=100",
                              "--set", "data.path={data}/first-100.jsonl", "--set", "data.val_fraction=0.5",
                              "--set", "data.test_fraction=0.1"],
    # 100 training records of the first 250, 125 for val, 25 for test
    "full-2e-3-100rec-150ep": ["--strategy", "full", "--set", "optim.lr=2e-3", "--set", "train.epochs=150",
                               "--set", "data.path={data}/first-250.jsonl", "--set", "data.val_fraction=0.5",
                               "--set", "data.test_fraction=0.1"],
}


def zerotune(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "zerotune", *args], check=True, cwd=ROOT)


def series(run: Path, tag: str) -> list[float]:
    from zerotune.track.events import read_run_events

    return [round(v, 4) for _, v in read_run_events(run).scalars.get(tag, [])]


def describe(run: Path) -> dict:
    from zerotune.doctor import diagnose

    metrics = json.loads((run / "metrics.json").read_text())
    loss, val = series(run, "train/epoch_loss"), series(run, "val/loss")
    return {"val/exact_match": series(run, "val/exact_match"),
            "train/epoch_loss": [loss[0], min(loss), loss[-1]], "val/loss": [val[0], min(val), val[-1]],
            "test exact_match": metrics["test"].get("exact_match"),
            "doctor": [(f.id, f.severity) for f in diagnose(run)]}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", choices=("phone", "copy"), default="phone", help="the records' task")
    p.add_argument("--out", type=Path, default=Path("/tmp/sft-doctor"), help="data and runs")
    p.add_argument("--only", nargs="*", default=list(VARIANTS), help="variants to run")
    args = p.parse_args(argv)
    data, runs = args.out / "data", args.out / "runs"
    if not (data / "train.jsonl").is_file():
        subprocess.run([sys.executable, "scripts/make_phone_data.py", "--out", str(data), "--task", args.task],
                       check=True, cwd=ROOT)
    lines = (data / "train.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    for n in (100, 250):
        (data / f"first-{n}.jsonl").write_text("".join(lines[:n]), encoding="utf-8")
    gpt = runs / "gpt"
    if not (gpt / "metrics.json").is_file():
        zerotune("train", "recipes/sft_demo_pretrain.toml", "--runs-dir", str(runs), "--name", "gpt", *QUIET,
                 "--set", f"data.path={data / 'pretrain.txt'}", "--set", "data.chat_chars=true",
                 "--set", "log.sample_prompt=For")
    for name in args.only:
        run = runs / name
        if not (run / "metrics.json").is_file():
            zerotune("finetune", "recipes/sft_demo.toml", "--from", str(gpt), "--runs-dir", str(runs), "--name", name,
                     *QUIET, "--set", f"data.path={data / 'train.jsonl'}", "--set", "sft.max_new_tokens=16",
                     *(a.format(data=data) for a in VARIANTS[name]))
        print(name, json.dumps(describe(run)), flush=True)


if __name__ == "__main__":
    main()
