"""Write the instruction-tuning demo's data: date rewriting with exact answers.

    python scripts/make_sft_data.py            # writes data/sft_dates/{pretrain.txt,train.jsonl}

The task: "Rewrite the date 2043-11-05 as day/month/year." -> "05/11/2043". Two files:

- ``pretrain.txt``: plain text a GPT learns from zero first (recipes/sft_demo_pretrain.toml):
  sentences such as ``Rewritten, the date 1987-04-12 reads 12/04/1987 as day/month/year.``
  and, one line in ten, a different question in the chat format (``User: Which year is
  1987-04-12 in?`` / ``Assistant: 1987``), with dates of the twentieth century only;
- ``train.jsonl``: instruction records (prompt/response) with dates of the twenty-first century,
  so no prompt the tuned model is scored on (the run's val and test splits) was seen in pretraining
  or in tuning. Records are unique, so the val/test split holds prompts never seen in training.
"""

from __future__ import annotations

import argparse
import datetime
import json
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def random_dates(rng: random.Random, first_year: int, n: int) -> list[datetime.date]:
    """`n` distinct dates of the century that starts at `first_year`."""
    start = datetime.date(first_year, 1, 1).toordinal()
    days = rng.sample(range(start, datetime.date(first_year + 99, 12, 31).toordinal() + 1), n)
    return [datetime.date.fromordinal(d) for d in days]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "data" / "sft_dates", help="output folder")
    p.add_argument("--pretrain", type=int, default=20000, help="pretraining lines")
    p.add_argument("--records", type=int, default=2000, help="instruction records")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    rng = random.Random(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    lines = [f"User: Which year is {d.isoformat()} in?\nAssistant: {d.year}\n" if i % 10 == 0 else
             f"Rewritten, the date {d.isoformat()} reads {d:%d/%m/%Y} as day/month/year.\n"
             for i, d in enumerate(random_dates(rng, 1900, args.pretrain))]
    (args.out / "pretrain.txt").write_text("".join(lines), encoding="utf-8")
    records = [{"prompt": f"Rewrite the date {d.isoformat()} as day/month/year.", "response": f"{d:%d/%m/%Y}"}
               for d in random_dates(rng, 2000, args.records)]
    (args.out / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    print(f"wrote {args.out / 'pretrain.txt'} ({len(lines)} lines) and {args.out / 'train.jsonl'} "
          f"({len(records)} records)")


if __name__ == "__main__":
    main()
