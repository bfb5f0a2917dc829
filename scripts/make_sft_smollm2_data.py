"""Write the data of recipes/sft_smollm2.toml: order dates found in customer messages, written as YYYY-MM-DD.

    python scripts/make_sft_smollm2_data.py     # writes data/sft_orders/orders.jsonl

Each record asks when an order was placed. The message around the date has one to six sentences,
so examples differ in length (about 80 to 180 tokens in SmolLM2's chat format), as instruction
data does; the date is written in words ("on 5 March 2031", "on March 5, 2031") and the answer
is the ISO form alone ("2031-03-05"). SmolLM2-135M-Instruct answers in sentences or gets the
month wrong (low exact match); a few minutes of LoRA teach it the format.

Licence: the records are generated from the templates below and carry no third-party text;
they are released with this repository under its licence.
"""

from __future__ import annotations

import argparse
import datetime
import json
import random
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NAMES = ["Ana", "Ben", "Chloe", "Dev", "Elif", "Farid", "Greta", "Hiro", "Ines", "Jonas", "Kemi", "Luca"]
ITEMS = ["a desk lamp", "two chairs", "a blue kettle", "running shoes", "a phone case", "a rain jacket",
         "a coffee grinder", "three notebooks", "a bike lock", "a wool blanket", "a toaster", "garden gloves"]
FILLER = ["The parcel has not arrived yet.", "The tracking page shows no update.", "I would like a refund.",
          "Could you check what happened?", "The box arrived damaged.", "One item is missing from the box.",
          "I was charged twice for it.", "Please send a replacement.", "The colour is not the one I chose.",
          "I have already written to you once.", "My address has not changed.", "Thank you for your help.",
          "I need it before the weekend.", "The invoice shows the wrong amount."]
STYLES = ["on {d.day} {month} {d.year}", "on {month} {d.day}, {d.year}", "on the {nth} of {month} {d.year}"]
PROMPT = "When was the order in this message placed? Answer with the date as YYYY-MM-DD.\n\n{message}"


def ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def record(rng: random.Random, day: datetime.date) -> dict:
    """One prompt/response pair: a message of 1-6 sentences with the order's date in words."""
    when = rng.choice(STYLES).format(d=day, month=day.strftime("%B"), nth=ordinal(day.day))
    sentences = rng.sample(FILLER, rng.randint(0, 5))
    sentences.insert(rng.randint(0, len(sentences)), f"I ordered {rng.choice(ITEMS)} {when}.")
    message = f"Hello, this is {rng.choice(NAMES)}. " + " ".join(sentences)
    return {"prompt": PROMPT.format(message=message), "response": day.isoformat()}


def records(n: int, seed: int = 0) -> list[dict]:
    """`n` records with distinct dates of 2000-2099."""
    rng = random.Random(seed)
    start = datetime.date(2000, 1, 1).toordinal()
    days = rng.sample(range(start, datetime.date(2099, 12, 31).toordinal() + 1), n)
    return [record(rng, datetime.date.fromordinal(d)) for d in days]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "data" / "sft_orders", help="output folder")
    p.add_argument("--records", type=int, default=1200, help="records to write")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = records(args.records, args.seed)
    (args.out / "orders.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    print(f"wrote {args.out / 'orders.jsonl'} ({len(rows)} records)")


if __name__ == "__main__":
    main()
