"""Knowledge distillation on digits: the digits CNN teacher, a student of at most 1/10 of its
parameters trained from scratch, and the same student distilled from the teacher, on the same budget.

    python benchmarks/distill.py [--seeds 5] [--teacher RUN] [--threads 1] [--set group.field=value ...]

The teacher is trained once from recipes/digits_cnn.toml (or reused with --teacher). The student is
recipes/digits_distill.toml: trained with `zerotune train` (its `distill` group is then ignored) and
with `zerotune distill`, each with seeds 0..N-1 (one seed moves test accuracy on digits' 360 test
images by about a point). --set applies to both students. Prints test accuracy (mean ± std over
seeds), parameters, weights on disk and latency of the first seed's model as `export --compare`
measures them (safetensors bytes, eager PyTorch, p50 ms at batch 1 and 32).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
QUIET = ["log.progress=false", "log.graph=false", "log.embeddings=false"]


def train_run(recipe: Path, overrides: list[str], teacher: Path | None = None) -> tuple[Path, dict]:
    """Train (or distill, with a teacher) one run; its directory and metrics."""
    from zerotune.config import load_config
    from zerotune.pipeline.distill import distill
    from zerotune.pipeline.train import train

    if teacher is not None:
        result = distill(recipe, teacher=teacher, overrides=overrides)
    else:
        result = train(load_config(recipe, overrides))
    return result.run_dir, result.metrics


def footprint(run_dir: Path, threads: int) -> dict:
    """Parameters, weights on disk (KB) and eager latency p50 (ms) at batch 1 and 32, as `export --compare` measures."""
    from zerotune.export.compare import compare_run
    from zerotune.runload.load import load_run

    row = compare_run(run_dir, variants=[], iters=200, threads=threads).rows[0]
    params = sum(p.numel() for p in load_run(run_dir).model.parameters())
    return {"params": params, "kb": row.bytes / 1024, "b1": row.p50_b1, "b32": row.p50_b32}


def summary(name: str, accs: list[float], fp: dict) -> str:
    mean = statistics.mean(accs)
    std = statistics.stdev(accs) if len(accs) > 1 else 0.0
    return (f"| {name} | {fp['params']:,} | {fp['kb']:.1f} | {fp['b1']:.3f} | {fp['b32']:.3f} | "
            f"{mean:.2f} ± {std:.2f} | {', '.join(f'{a:.2f}' for a in accs)} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--teacher", type=Path, help="reuse this teacher run instead of training one")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--set", action="append", default=[], help="override for both students (repeatable)")
    p.add_argument("--runs-dir", type=Path, help="keep the runs here (default: a temporary directory)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs = args.runs_dir or Path(tmp)
        common = [f"log.dir={runs}", f"train.threads={args.threads}", *QUIET]
        teacher = args.teacher
        if teacher is None:
            teacher, _ = train_run(RECIPES / "digits_cnn.toml", common + ["log.name=teacher"])
        from zerotune.run.files import RunDir, read_json

        teacher_acc = 100 * read_json(RunDir(teacher).metrics)["test"]["accuracy"]
        student = RECIPES / "digits_distill.toml"
        rows = {"scratch": ([], None), "distilled": ([], None)}
        for seed in range(args.seeds):
            for name, t in (("scratch", None), ("distilled", teacher)):
                run, m = train_run(student, common + [f"train.seed={seed}", *args.set], t)
                accs, first = rows[name]
                accs.append(100 * m["test"]["accuracy"])
                rows[name] = (accs, first or run)
                print(f"seed {seed} {name}: test accuracy {accs[-1]:.2f}", flush=True)
        print(f"\n| model | parameters | weights KB | p50 ms batch 1 | p50 ms batch 32 | test accuracy % "
              f"(mean ± std, {args.seeds} seeds) | per seed |\n|---|---|---|---|---|---|---|")
        print(summary("teacher: digits CNN", [teacher_acc], footprint(teacher, args.threads)))
        for name, (accs, first) in rows.items():
            print(summary(f"student, {name}", accs, footprint(first, args.threads)))
        gain = statistics.mean(rows["distilled"][0]) - statistics.mean(rows["scratch"][0])
        gap = teacher_acc - statistics.mean(rows["distilled"][0])
        print(f"\ndistilled - scratch: {gain:+.2f} points; teacher - distilled: {gap:+.2f} points")


if __name__ == "__main__":
    main()
