"""Write a task of one's own for docs/llm-finetune.md's "your own data": phone numbers to format.

    python scripts/make_phone_data.py            # writes data/phone/{pretrain.txt,train.jsonl,prompts.jsonl}

The task: "Format the phone number 5550123456." -> "(555) 012-3456". Three files:

- ``pretrain.txt``: plain sentences with phone numbers already formatted (``For the office, the
  phone number is (555) 012-3456; call before noon.``), nothing in the chat format: a corpus as one has it;
- ``train.jsonl``: instruction records (prompt/response), numbers that are not in the corpus;
- ``prompts.jsonl``: 50 more records, for scoring the pretrained model before any tuning
  (``zerotune eval RUN --prompts``).

``--task copy`` writes a copying task instead ("Repeat exactly: 4821309517" -> "4821309517").
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLACES = ("the office", "the front desk", "my sister", "the clinic", "the shop", "the school", "room service")
TIMES = ("before noon", "after six", "on weekdays", "at any hour", "today", "tomorrow morning")


def formatted(digits: str) -> str:
    return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"


def numbers(rng: random.Random, n: int) -> list[str]:
    """`n` distinct ten-digit numbers."""
    return [f"{v:010d}" for v in rng.sample(range(10 ** 9, 10 ** 10), n)]


def records(task: str, items: list[str]) -> list[dict]:
    if task == "copy":
        return [{"prompt": f"Repeat exactly: {d}", "response": d} for d in items]
    return [{"prompt": f"Format the phone number {d}.", "response": formatted(d)} for d in items]


def corpus_line(task: str, rng: random.Random, digits: str) -> str:
    if task == "copy":
        return f"Repeat after me, {digits}; yes, exactly {digits}.\n"
    return f"For {rng.choice(PLACES)}, the phone number is {formatted(digits)}; call {rng.choice(TIMES)}.\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "data" / "phone", help="output folder")
    p.add_argument("--task", choices=("phone", "copy"), default="phone", help="what the records ask")
    p.add_argument("--pretrain", type=int, default=20000, help="pretraining lines")
    p.add_argument("--records", type=int, default=2000, help="instruction records")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    rng = random.Random(args.seed)
    items = numbers(rng, args.pretrain + args.records + 50)
    args.out.mkdir(parents=True, exist_ok=True)
    corpus = "".join(corpus_line(args.task, rng, d) for d in items[:args.pretrain])
    (args.out / "pretrain.txt").write_text(corpus, encoding="utf-8")
    for name, part in (("train.jsonl", items[args.pretrain:-50]), ("prompts.jsonl", items[-50:])):
        (args.out / name).write_text("".join(json.dumps(r) + "\n" for r in records(args.task, part)), encoding="utf-8")
    print(f"wrote {args.out / 'pretrain.txt'} ({args.pretrain} lines), {args.out / 'train.jsonl'} "
          f"({args.records} records) and {args.out / 'prompts.jsonl'} (50 records)")


if __name__ == "__main__":
    main()
