"""Write the preference-tuning demo's pairs: the same date question, a house style for the answer.

    python scripts/make_preference_data.py     # writes data/sft_dates/preference.jsonl

It follows the instruction-tuning demo (`python scripts/make_sft_data.py`, docs/llm-finetune.md),
whose tuned model answers "Rewrite the date 2043-11-05 as day/month/year." with "05/11/2043".
Each pair here asks the same kind of question; the chosen answer writes the date with dots
("05.11.2043", day, month and year in the same order), the rejected one with slashes, as the model
does now. Preference tuning (recipes/dpo_demo.toml) should move the model to dots without
breaking the dates. The dates are of the twenty-first century and none is one of the instruction
records', so every prompt is new to the model.
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


def seen_dates(sft_records: Path) -> set[str]:
    """The ISO dates the instruction records ask about."""
    if not sft_records.is_file():
        sys.exit(f"error: {sft_records} does not exist; run `python scripts/make_sft_data.py` first")
    prompts = (json.loads(line)["prompt"] for line in sft_records.read_text(encoding="utf-8").splitlines() if line)
    return {p.split()[3] for p in prompts}


def pair(d: datetime.date) -> dict:
    return {"prompt": PROMPT.format(d.isoformat()), "chosen": f"{d:%d.%m.%Y}", "rejected": f"{d:%d/%m/%Y}"}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "data" / "sft_dates", help="folder of the instruction data")
    p.add_argument("--pairs", type=int, default=1000, help="preference pairs")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    seen = seen_dates(args.out / "train.jsonl")
    start, end = datetime.date(2000, 1, 1).toordinal(), datetime.date(2099, 12, 31).toordinal()
    fresh = [d for d in map(datetime.date.fromordinal, range(start, end + 1)) if d.isoformat() not in seen]
    dates = random.Random(args.seed).sample(fresh, args.pairs)
    path = args.out / "preference.jsonl"
    path.write_text("".join(json.dumps(pair(d)) + "\n" for d in dates), encoding="utf-8")
    print(f"wrote {path} ({len(dates)} pairs)")


if __name__ == "__main__":
    main()
