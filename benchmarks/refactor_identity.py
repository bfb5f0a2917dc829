"""Whether two revisions of zerotune train bit-identical runs: the check a behaviour-preserving change must pass.

    python benchmarks/refactor_identity.py BASE [OTHER] [--keep DIR]

Each revision (a commit, branch or tag; OTHER defaults to the working tree) is checked out into a
temporary git worktree, and the same four short runs are trained with its source, one thread each:
the digits CNN, the character-level GPT (with dropout), a LoRA instruction-tuning run of that GPT,
and the digits CNN on 2 ranks (DDP, gloo). It prints, per run, whether the final `best` and `last`
weights are byte-identical and whether every TensorBoard scalar (tag, step, value) is the same, and
exits 1 when any differs. Scalars of the clock (step time, throughput, MFU, DDP's collective times) are left out. It also
compares what `zerotune generate` writes from the GPT (sampled with a seed, with and without the KV
cache, and greedy) and from the instruction-tuned run (greedy, and sampled with top-p).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUIET = ["--no-progress", "--set", "train.threads=1"]
CNN = ["--set", "train.epochs=2", "--set", "model.channels=[8,16]", "--set", "model.dense=32"]
GPT = ["--set", "train.max_steps=40", "--set", "train.epochs=1", "--set", "data.windows_per_epoch=480",
       "--set", "model.dropout=0.1", "--set", "log.views_min_seconds=0"]


def runs(workdir: Path, out: Path) -> list[tuple[str, list[str]]]:
    """(name, zerotune arguments) of the four runs, in order (the SFT run tunes the GPT)."""
    sft_data = out / "sft_dates"
    return [
        ("cnn", ["train", "recipes/digits_cnn.toml", *CNN]),
        ("gpt", ["train", "recipes/sft_demo_pretrain.toml", "--set", f"data.path={sft_data}/pretrain.txt", *GPT]),
        ("sft-lora", ["finetune", "recipes/sft_demo.toml", "--from", str(out / "gpt"), "--set",
                      f"data.path={sft_data}/train.jsonl", "--set", "train.epochs=1", "--set", "train.max_steps=30"]),
        ("ddp", ["train", "recipes/digits_cnn.toml", "--nproc", "2", *CNN]),
    ]


def texts(out: Path) -> list[tuple[str, list[str]]]:
    """(name, zerotune arguments) of the generations compared, from the trained runs."""
    gpt, sft = str(out / "gpt"), str(out / "sft-lora")
    return [
        ("gpt sampled", ["generate", gpt, "--prompt", "Rewritten, the date", "--temperature", "0.8", "--top-k", "20", "--seed", "3",
                         "--max-tokens", "120"]),
        ("gpt sampled, no cache", ["generate", gpt, "--prompt", "Rewritten, the date", "--temperature", "0.8", "--top-k", "20",
                                   "--seed", "3", "--no-cache", "--max-tokens", "120"]),
        ("gpt greedy", ["generate", gpt, "--prompt", "User: Which year is 19", "--temperature", "0", "--max-tokens", "120"]),
        ("sft greedy", ["generate", sft, "--prompt", "Rewrite the date 2051-10-27 as day/month/year.",
                        "--temperature", "0", "--max-tokens", "24"]),
        ("sft top-p", ["generate", sft, "--prompt", "Rewrite the date 2085-06-19 as day/month/year.",
                       "--top-p", "0.9", "--seed", "5", "--max-tokens", "24"]),
    ]


def train_all(source: Path, out: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(source / "src"), "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "scripts/make_sft_data.py", "--out", str(out / "sft_dates")], cwd=source,
                   env=env, check=True, capture_output=True)
    for name, args in runs(source, out):
        done = subprocess.run([sys.executable, "-m", "zerotune", *args, "--runs-dir", str(out), "--name", name, *QUIET],
                              cwd=source, env=env, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"{source}: {name} failed:\n{done.stderr[-2000:]}")
    for i, (name, args) in enumerate(texts(out)):
        done = subprocess.run([sys.executable, "-m", "zerotune", *args, "--no-stream"], cwd=source, env=env,
                              capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"{source}: generate ({name}) failed:\n{done.stderr[-2000:]}")
        (out / f"text-{i}.txt").write_text(done.stdout)


def scalars(run: Path) -> dict:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def timed(tag: str) -> bool:
    """Scalars that measure the clock (step time, throughput, MFU, collective and slowest-rank times) differ
    between any two runs."""
    return any(part in tag for part in ("perf/", "per_sec", "mfu", "seconds", "time", "_ms", "collective_share",
                                        "slowest_"))


def compare(a: Path, b: Path) -> bool:
    same = True
    for name, _ in runs(a, a):
        weights = all((a / name / "checkpoints" / c / "model.safetensors").read_bytes()
                      == (b / name / "checkpoints" / c / "model.safetensors").read_bytes() for c in ("best", "last"))
        sa, sb = scalars(a / name), scalars(b / name)
        differ = sorted(t for t in sa.keys() | sb.keys() if sa.get(t) != sb.get(t) and not timed(t))
        print(f"{name:9} weights {'identical' if weights else 'DIFFER'}; {len(sa)} scalar tags, "
              + ("all identical" if not differ else f"{len(differ)} differ: {', '.join(differ[:6])}"), flush=True)
        same &= weights and not differ
    for i, (name, _) in enumerate(texts(a)):
        equal = (a / f"text-{i}.txt").read_text() == (b / f"text-{i}.txt").read_text()
        print(f"generate ({name}): {'identical' if equal else 'DIFFERS'}", flush=True)
        same &= equal
    return same


def worktree(rev: str, where: Path) -> Path:
    subprocess.run(["git", "worktree", "add", "--detach", "-q", str(where), rev], cwd=ROOT, check=True)
    return where


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="the revision to compare against, e.g. main~3")
    parser.add_argument("other", nargs="?", default=None, help="another revision (default: the working tree)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the runs under this folder")
    args = parser.parse_args()
    tmp = Path(args.keep or tempfile.mkdtemp(prefix="zerotune-identity-"))
    trees = []
    try:
        sources = [worktree(args.base, tmp / "base-src")]
        trees.append(sources[0])
        if args.other:
            sources.append(worktree(args.other, tmp / "other-src"))
            trees.append(sources[1])
        else:
            sources.append(ROOT)
        for source, out in zip(sources, (tmp / "base", tmp / "other")):
            train_all(source, out)
        ok = compare(tmp / "base", tmp / "other")
    finally:
        for tree in trees:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)
    print("bit-identical" if ok else "DIFFERENT")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
