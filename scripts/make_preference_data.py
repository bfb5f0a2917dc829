"""Write the preference-tuning demo's pairs: the same date question, a house style for the answer.

    python scripts/make_preference_data.py     # writes data/sft_dates/preference.jsonl
    python scripts/make_preference_data.py --pairs 150 --flip 0.25 --flip-seed 3 --file noisy.jsonl   # doctor's example

It follows the instruction-tuning demo (`python scripts/make_sft_data.py`, docs/llm-finetune.md),
whose tuned model answers "Rewrite the date 2043-11-05 as day/month/year." with "05/11/2043".
Each pair here asks the same kind of question; the chosen answer writes the date with dots
("05.11.2043", day, month and year in the same order), the rejected one with slashes, as the model
does now. Preference tuning (recipes/dpo_demo.toml) should move the model to dots without
breaking the dates. The dates are of the twenty-first century and none is one of the instruction
records', so every prompt is new to the model. ``--flip`` swaps the answers of a share of the pairs
(mislabelled preferences), which `zerotune doctor`'s ``dpo_overoptimized`` example trains on.
"""

from __future__ import annotations

import argparse
import datetime
import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "Rewrite the date {} as day/month/year."


def fail(message: str) -> None:
    """One line on stderr and exit code 2, as zerotune's own commands answer bad input."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def seen_dates(sft_records: Path) -> set[str]:
    """The ISO dates the instruction records ask about."""
    if not sft_records.is_file():
        fail(f"{sft_records} does not exist; run `python scripts/make_sft_data.py` first")
    prompts = (json.loads(line)["prompt"] for line in sft_records.read_text(encoding="utf-8").splitlines() if line)
    return {p.split()[3] for p in prompts}


def pair(d: datetime.date) -> dict:
    return {"prompt": PROMPT.format(d.isoformat()), "chosen": f"{d:%d.%m.%Y}", "rejected": f"{d:%d/%m/%Y}"}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "data" / "sft_dates", help="folder of the instruction data")
    p.add_argument("--pairs", type=int, default=1000, help="preference pairs")
    p.add_argument("--flip", type=float, default=0.0, help="share of pairs whose answers are swapped (0 to 1)")
    p.add_argument("--flip-seed", type=int, default=0, help="seed of the draw of the pairs --flip swaps")
    p.add_argument("--file", default="preference.jsonl", help="file name inside --out")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    if not 0 <= args.flip <= 1:
        fail(f"--flip {args.flip} is not a share; allowed: 0 to 1")
    seen = seen_dates(args.out / "train.jsonl")
    start, end = datetime.date(2000, 1, 1).toordinal(), datetime.date(2099, 12, 31).toordinal()
    fresh = [d for d in map(datetime.date.fromordinal, range(start, end + 1)) if d.isoformat() not in seen]
    if not 1 <= args.pairs <= len(fresh):
        fail(f"--pairs {args.pairs}: allowed 1 to {len(fresh)} (the century's dates the instruction records leave)")
    pairs = [pair(d) for d in random.Random(args.seed).sample(fresh, args.pairs)]
    draw = random.Random(args.flip_seed)
    flipped = [draw.random() < args.flip for _ in pairs]
    pairs = [{**p, "chosen": p["rejected"], "rejected": p["chosen"]} if f else p for p, f in zip(pairs, flipped)]
    path = args.out / args.file
    path.write_text("".join(json.dumps(p) + "\n" for p in pairs), encoding="utf-8")
    print(f"wrote {path} ({len(pairs)} pairs, {sum(flipped)} with their answers swapped)")


if __name__ == "__main__":
    main()
